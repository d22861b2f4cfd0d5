"""PVT corners of the sky130 OTA by hand: process sections × supply × temperature, and what each way of batching
them costs in ngspice.

This script measures, by hand and outside the corner engine, the facts the engine rests on (docs/corners.md, F1-F4):

* ``per-corner``: one ngspice process per corner (section, VDD, temperature), the naive way;
* ``sibling``: one deck per (section, temperature), the supplies as copies of that deck (VDD is a ``.param``);
* ``in-process``: one deck per section; the supplies as copies, the temperatures as repeated ``run`` in one
  ngspice process (``option temp=T``), so the models are read once per section.

All three must give the same numbers (checked), so the table is printed once, with pass/fail against the spec and
the worst corner per spec. ``--json FILE`` writes the headline figures.

    python experiments/sky130_corners.py                     # 5 sections x 3 VDD x 3 temperatures = 45 corners
    python experiments/sky130_corners.py --sections tt --temps 27 --vdd 1.8   # smoke size
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.netlist import Netlist  # noqa: E402
from optiyield.pdk import with_section  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.sim.ngspice import NgspiceSimulator, NgspiceWaveforms  # noqa: E402
from optiyield.sim.ngspice.deck import render  # noqa: E402
from optiyield.sim.ngspice.runner import NgspiceRunner  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.testbench import Testbench  # noqa: E402
from optiyield.units import format_eng  # noqa: E402

SPEC = ROOT / "specs" / "sky130_ota.yaml"


def at_temperature(testbench: Testbench, temp: float) -> Testbench:
    """The testbench with its ``.temp`` line set to ``temp`` (degrees C)."""
    hoisted = [line for line in testbench.netlist.hoisted if not line.lower().startswith(".temp")]
    netlist = dataclasses.replace(testbench.netlist, hoisted=(*hoisted, f".temp {temp:g}"))
    return dataclasses.replace(testbench, netlist=netlist)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_per_corner(testbench: Testbench, names: tuple[str, ...], design: np.ndarray, sections: list[str],
                   vdds: list[float], temps: list[float], engine: Engine) -> dict[tuple[str, float, float], dict]:
    """One ngspice process per corner."""
    out = {}
    for section in sections:
        for temp in temps:
            tb = at_temperature(with_section(testbench, section), temp)
            job = dataclasses.replace(tb.job((*names, "VDD")), batch_size=1)
            rows = np.array([[*design, vdd] for vdd in vdds])
            result = engine.run(job, rows)
            for i, vdd in enumerate(vdds):
                out[(section, vdd, temp)] = {k: float(v[i]) for k, v in result.values.items()} | {
                    "status": str(result.status[i])}
    return out


def run_sibling(testbench: Testbench, names: tuple[str, ...], design: np.ndarray, sections: list[str],
                vdds: list[float], temps: list[float], engine: Engine) -> dict[tuple[str, float, float], dict]:
    """One deck per (section, temperature); the supplies are copies."""
    out = {}
    jobs = []
    for section in sections:
        for temp in temps:
            tb = at_temperature(with_section(testbench, section), temp)
            jobs.append(((section, temp), tb.job((*names, "VDD"))))
    rows = np.array([[*design, vdd] for vdd in vdds])
    for (section, temp), job in jobs:
        result = engine.run(dataclasses.replace(job, batch_size=len(vdds)), rows)
        for i, vdd in enumerate(vdds):
            out[(section, vdd, temp)] = {k: float(v[i]) for k, v in result.values.items()} | {
                "status": str(result.status[i])}
    return out


def _temperature_deck(netlist: Netlist, names: tuple[str, ...], rows: np.ndarray, raw: Path,
                      temps: list[float]) -> tuple[str, object]:
    """A copies deck whose control block runs every analysis once per temperature and writes each plot."""
    deck, layout = render(netlist, names, rows, str(raw), copies=True)
    kinds = list(dict.fromkeys(netlist.analysis_kinds))
    block = [".control", "set appendwrite"]
    for index, temp in enumerate(temps, start=1):
        block += [f"option temp={temp:g}", "run"]
        block += [line for kind in kinds for line in (f"setplot {kind}{index}", f"write {raw}")]
    block += ["quit", ".endc", ".end"]
    return deck.rstrip().removesuffix(".end").rstrip() + "\n" + "\n".join(block) + "\n", layout


def run_in_process(testbench: Testbench, names: tuple[str, ...], design: np.ndarray, sections: list[str],
                   vdds: list[float], temps: list[float],
                   runner: NgspiceRunner) -> dict[tuple[str, float, float], dict]:
    """One ngspice process per section: supplies as copies, temperatures as repeated runs of the parsed deck."""
    out = {}
    rows = np.array([[*design, vdd] for vdd in vdds])
    kinds = list(dict.fromkeys(testbench.netlist.analysis_kinds))
    for section in sections:
        tb = with_section(testbench, section)
        folder = runner.workdir()
        try:
            deck, layout = _temperature_deck(tb.netlist, (*names, "VDD"), rows, folder / "out.raw", temps)
            outcome = runner.run(deck, folder, tb.timeout, tuple(kinds), compat=tb.compat)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if not outcome.ok:
            raise RuntimeError(f"{section}: {outcome.failure}")
        for index, temp in enumerate(temps):
            plots = outcome.plots[index * len(kinds):(index + 1) * len(kinds)]
            found = tb.extract(NgspiceWaveforms(plots, layout, len(vdds), outcome.stdout), len(vdds))
            values, bad = found.values, found.bad
            for i, vdd in enumerate(vdds):
                out[(section, vdd, temp)] = {k: float(v[i]) for k, v in values.items()} | {
                    "status": "ok" if bad[i] is None else "failed"}
    return out


def _timed(label: str, function, *args) -> tuple[dict, dict]:
    cpu, wall = _children_cpu(), time.perf_counter()
    table = function(*args)
    return table, {"strategy": label, "cpu_s": _children_cpu() - cpu, "wall_s": time.perf_counter() - wall}


def main(argv: list[str] | None = None) -> dict:
    """Run the corner table three ways; print it and the costs; return the headline figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="tt,ff,ss,fs,sf")
    parser.add_argument("--vdd", default="1.62,1.8,1.98", help="supplies in V (nominal 1.8 V +-10 %%)")
    parser.add_argument("--temps", default="-40,27,125", help="temperatures in degrees C")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    vdds = [float(v) for v in args.vdd.split(",")]
    temps = [float(t) for t in args.temps.split(",")]
    spec = load_spec(SPEC)
    testbench = spec.testbench
    names = tuple(spec.file.design)
    design = np.array([spec.file.design[n].start for n in names])
    console = Console(width=150)
    runner = NgspiceRunner()
    engine = Engine(NgspiceSimulator(runner), workers=1)  # one process at a time: CPU seconds compare strategies fairly
    try:
        results = [
            _timed("per-corner", run_per_corner, testbench, names, design, sections, vdds, temps, engine),
            _timed("sibling", run_sibling, testbench, names, design, sections, vdds, temps, engine),
            _timed("in-process", run_in_process, testbench, names, design, sections, vdds, temps, runner),
        ]
    finally:
        engine.close()
        runner.close()
    reference = results[0][0]
    measures = list(testbench.measure_names)
    differences = {m: 0.0 for m in measures}  # largest |difference| between strategies, per measure
    for table, _ in results[1:]:
        for key, row in reference.items():
            for m in measures:
                differences[m] = max(differences[m], abs(row[m] - table[key][m]))
    bounds = spec.file.specs
    shown = Table(title=f"sky130 OTA at {len(reference)} corners (start design), spec limits from {SPEC.name}")
    for column in ("section", "VDD", "T (°C)", *measures, "pass"):
        shown.add_column(column, justify="right")
    worst: dict[str, tuple[float, tuple]] = {}
    passing = 0
    for key, row in reference.items():
        ok = True
        cells = []
        for m in measures:
            value = row[m]
            bound = bounds.get(m)
            margin = np.inf
            if bound is not None:
                if bound.min is not None:
                    margin = min(margin, value - bound.min)
                if bound.max is not None:
                    margin = min(margin, bound.max - value)
                ok &= bool(margin >= 0)
                scale = abs(bound.min if bound.min is not None else bound.max) or 1.0
                if m not in worst or margin / scale < worst[m][0]:
                    worst[m] = (margin / scale, key)
            cells.append(format_eng(value, 4) + ("" if margin >= 0 else " ✗"))
        passing += ok
        shown.add_row(key[0], f"{key[1]:g}", f"{key[2]:g}", *cells, "yes" if ok else "no")
    console.print(shown)
    console.print("worst corner per spec: " + ", ".join(
        f"{m} at {k[0]}/{k[1]:g} V/{k[2]:g} °C" for m, (_, k) in worst.items()))
    cost = Table(title="cost of the corner table (one ngspice process at a time)")
    for column in ("strategy", "ngspice processes", "CPU s", "wall s", "CPU vs per-corner"):
        cost.add_column(column, justify="right")
    processes = {"per-corner": len(reference), "sibling": len(sections) * len(temps), "in-process": len(sections)}
    base = results[0][1]["cpu_s"]
    for _, c in results:
        cost.add_row(c["strategy"], str(processes[c["strategy"]]), f"{c['cpu_s']:.2f}", f"{c['wall_s']:.2f}",
                     f"{c['cpu_s'] / base:.2f}")
    console.print(cost)
    console.print("largest difference between strategies: " + ", ".join(
        f"{m} {format_eng(d, 2)}" for m, d in differences.items()) + f"; corners passing every spec: "
                  f"{passing}/{len(reference)}")
    figures = {
        "corners": len(reference),
        "corners_passing": passing,
        "max_difference": differences,
        "cpu_seconds": {c["strategy"]: c["cpu_s"] for _, c in results},
        "wall_seconds": {c["strategy"]: c["wall_s"] for _, c in results},
        "table_seconds_45": results[2][1]["wall_s"] if len(reference) == 45 else None,
        "worst_corner": {m: list(k) for m, (_, k) in worst.items()},
        "table": [{"section": k[0], "vdd": k[1], "temp": k[2], **v} for k, v in reference.items()],
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
