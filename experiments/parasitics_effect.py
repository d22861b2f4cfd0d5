"""What layout-like device parasitics do to shipped circuits: `parasitics: regression` on vs off.

For each spec, the testbench is loaded twice, as shipped and with ``parasitics: regression`` (the VGA
paper's Cgs/Cgd/Cds regression added to every MOSFET, optiyield/parasitics.py), and simulated through
ngspice at the spec's start point; then a Monte Carlo yield at the start point with the same outcomes
(common random numbers) both ways.

    python experiments/parasitics_effect.py [--specs lna,csva] [--samples 200] [--json FILE]

``--json`` writes, per spec, ``nominal_without`` and ``nominal_with`` (measure → value, SI) and
``yield_without``/``yield_with`` (fractions) with ``yield_samples``, plus ``added_fF`` (device →
Cgs/Cgd/Cds at the start point, fF).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.errors import load_validated  # noqa: E402
from optiyield.montecarlo import run_monte_carlo, simulate  # noqa: E402
from optiyield.netlist import spice_number  # noqa: E402
from optiyield.parasitics import parse_mosfet  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import Spec, load_spec  # noqa: E402
from optiyield.testbench import TestbenchFile, build_testbench  # noqa: E402
from optiyield.units import format_value  # noqa: E402


def with_parasitics(spec: Spec) -> Spec:
    """The same spec with its testbench loaded with ``parasitics: regression`` (default coefficients)."""
    if not isinstance(spec.file.testbench, str) or spec.path is None:
        raise SystemExit(f"{spec.name}: the experiment needs a spec whose testbench is a file")
    path = spec.path.parent / spec.file.testbench
    file = load_validated(path, TestbenchFile).model_copy(update={"parasitics": "regression"})
    return Spec(spec.file, build_testbench(file, path.parent, path), spec.model, spec.path)


def added_capacitances(spec: Spec, parasitic: Spec) -> dict[str, dict[str, float]]:
    """Cgs/Cgd/Cds (fF) the regression adds to each MOSFET at the start point (``subckt/device`` inside a
    subcircuit); geometry given as a number or a plain parameter name, NaN for other expressions."""
    point = {k.lower(): v for k, v in spec.nominal().items()}

    def value(text: str) -> float:
        number = spice_number(text)
        if number is not None:
            return number
        name = text.strip().lower()
        return point[name] if name in point else float(spec.testbench.nominal(name) or np.nan)

    out = {}
    coefficients = parasitic.testbench.parasitics
    assert coefficients is not None
    netlist = spec.testbench.netlist
    scope = ""
    for line in (*netlist.body, *netlist.hoisted):
        word = line.split()[0].lower()
        if word == ".subckt":
            scope = line.split()[1] + "/"
        elif word == ".ends":
            scope = ""
        elif word[0] == "m":
            device = parse_mosfet(line)
            n, m = value(device.nf), value(device.m)
            caps = coefficients.femtofarads(n, value(device.w) / n * 1e6, m)
            out[scope + device.name] = {k: float(v) for k, v in caps.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", default="lna,csva", help="comma-separated spec names under specs/")
    parser.add_argument("--samples", type=int, default=200, help="Monte Carlo samples per yield (0: skip)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    console = Console()
    report: dict[str, dict] = {}
    with Engine() as engine:
        for name in args.specs.split(","):
            spec = load_spec(ROOT / "specs" / f"{name}.yaml")
            parasitic = with_parasitics(spec)
            nominal = spec.nominal()
            row = np.array([[nominal[p] for p in spec.parameters]])
            before = simulate(spec, row, engine)
            after = simulate(parasitic, row, engine)
            entry: dict = {"nominal_without": {k: float(v[0]) for k, v in before.values.items()},
                           "nominal_with": {k: float(v[0]) for k, v in after.values.items()},
                           "added_fF": added_capacitances(spec, parasitic)}
            table = Table(title=f"{name}: start point without / with parasitics: regression")
            for column in ("measure", "spec", "without", "with", "change"):
                table.add_column(column, justify="left" if column in ("measure", "spec") else "right")
            for measure in spec.testbench.measure_names:
                unit = spec.testbench.unit(measure)
                b, a = before.values[measure][0], after.values[measure][0]
                bound = spec.file.specs.get(measure)
                limit = "" if bound is None else " ".join(
                    f"{s} {format_value(v, unit)}" for s, v in (("≥", bound.min), ("≤", bound.max)) if v is not None)
                change = f"{a - b:+.3g}" if unit in ("dB", "dBm", "%") else (
                    f"{(a / b - 1) * 100:+.1f} %" if b else "")
                table.add_row(measure, limit, format_value(b, unit), format_value(a, unit), change)
            console.print(table)
            added = Table(title=f"{name}: capacitances added at the start point (fF)")
            for column in ("device", "Cgs", "Cgd", "Cds"):
                added.add_column(column, justify="left" if column == "device" else "right")
            for device, caps in entry["added_fF"].items():
                added.add_row(device, *(f"{caps[k]:.1f}" for k in ("cgs", "cgd", "cds")))
            console.print(added)
            if args.samples:
                yields = {}
                for label, s in (("without", spec), ("with", parasitic)):
                    result = run_monte_carlo(s, engine, samples=args.samples)
                    overall = result.summary.overall
                    yields[label] = overall.value
                    console.print(f"{name} yield {label} parasitics: {overall.value:.1%} "
                                  f"[{overall.low:.1%}, {overall.high:.1%}] over {overall.n} samples, "
                                  f"{result.summary.failed_simulations} failed simulations", highlight=False)
                entry.update(yield_without=yields["without"], yield_with=yields["with"], yield_samples=args.samples)
            report[name] = entry
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"written to {args.json}")


if __name__ == "__main__":
    main()
