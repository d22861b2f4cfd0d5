"""Transient cost of the RF testbenches, before and after issue 20, and their accuracy against a reference.

For the PA, the doubler, the mixer, the VCO and the 28 GHz transmitter and receiver: the same Monte Carlo
samples (the spec's variation at its start point) through today's testbench ("after", circuits/) and the
testbench as it was before the transient-cost work ("before", benchmarks/baseline_testbenches/, run on
today's engine but writing every vector to the raw file as the engine did then), alternately in one
invocation. For each: ngspice seconds per sample — the CPU seconds (user + system) of the ngspice processes,
which other load on the shared machine barely moves; the engine's summed wall time of the ngspice processes
(the figure `optiyield run` reports) is kept too —, wall samples/s on all cores, and the largest difference
of every reported measure from a long, fine reference transient (settings in REFERENCE, documented in
docs/benchmarks.md) on the first samples.

For the PA and the doubler it also times one PAST Jacobian (the rows that dominate the flagship run and the
doubler reproduction). Its accuracy is the relative Frobenius error of each measure's Jacobian against the
Jacobian of a long 0.5 ps transient (JACOBIAN_REFERENCE). The same Jacobian is run once more with each
outcome's base row and perturbed copies in one deck (``jacobian["after, one outcome per deck"]``,
``grouped_speedup_cpu``: today's partition's CPU seconds over the grouped one's).

    python benchmarks/transient_cost.py [--testbenches pa,doubler,...] [--samples 16] [--reference-samples 4]
        [--jacobian-outcomes 4] [--workers 2] [--seed 1] [--designs] [--quick] [--json FILE]

``--designs`` also checks the accuracy, before and after, on ``--reference-samples`` samples at each design of
DESIGNS (the doubler's and the PA's optimized designs and corners of their ranges).

``--json`` writes ``{testbench: {"seconds_per_sample_before", "seconds_per_sample_after", "speedup",
"max_difference": {measure: value in the measure's unit}, ...}}`` with the keys pa, doubler, mixer, vco,
tx28, rx28 (seconds are ngspice CPU seconds); extra keys per testbench: ``wall_seconds_per_sample_*`` and
``speedup_wall`` (ngspice process wall time), ``samples_per_s_*``, ``max_difference_before``, ``reference``
(the reference transient) and, for pa and doubler, ``jacobian`` and (``--designs``)
``max_difference_by_design``: ``{design: {"after": {measure: value}, "before": {...}}}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.montecarlo import sample_matrix  # noqa: E402
from optiyield.optim.evaluator import Evaluator  # noqa: E402
from optiyield.optim.gradients import PAST  # noqa: E402
from optiyield.sim.engine import Engine, SimResults  # noqa: E402
from optiyield.sim.job import SimJob  # noqa: E402
from optiyield.spec import Spec, load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402
from optiyield.testbench import Testbench, load_testbench  # noqa: E402

BASELINE = ROOT / "benchmarks" / "baseline_testbenches"

#: testbench key -> (spec, circuit folder)
TESTBENCHES: dict[str, tuple[str, str]] = {
    "pa": ("pa_28ghz.yaml", "pa"),
    "doubler": ("doubler_5ghz.yaml", "doubler_5ghz"),
    "mixer": ("mixer.yaml", "mixer"),
    "vco": ("vco.yaml", "vco"),
    "tx28": ("tx28.yaml", "tx28"),
    "rx28": ("rx28.yaml", "rx28"),
}

#: The reference transient of each testbench: its .tran line and, for windows given in seconds, their new
#: start (the window then ends at the end of the run). Every .options of the testbench is dropped (ngspice
#: defaults: reltol 1e-3, no bypass) and there is no warm start. rx28 has no transient.
REFERENCE: dict[str, tuple[str, str | None] | None] = {
    "pa": (".tran 0.1p 1.5n 0 0.1p", None),           # 42 periods; settled to 1e-4 dB by 1.07 ns
    "doubler": (".tran 0.25p 16n 0 0.25p", None),     # 80 periods, > 10 bias time constants
    "mixer": (".tran 0.5p 32n 20n 0.5p", None),       # the IF period 22-32 ns
    "vco": (".tran 1p 30n 0 1p", "18n"),               # window 18-30 ns
    "tx28": (".tran 0.25p 2.4n 0 0.25p", "1.6n"),      # window 1.6-2.4 ns
    "rx28": None,
}


#: Other designs at which ``--designs`` checks the accuracy (the spec's start point is always checked): where an
#: optimizer ends and where the design ranges take a testbench, since a window or step that settles at the start
#: need not settle there. Values in SI units; unnamed variables keep their start values.
DESIGNS: dict[str, dict[str, dict[str, float]]] = {
    "doubler": {
        # the 500-outcome FAST and minimax designs (benchmarks/results/bandler_doubler_500_igat_fast.json)
        "fast_optimum": {"Pin": 0.5e-3, "VGB": -2.1606, "VDB": 5.1577, "L1": 5.5517e-9, "ll1": 1.8747e-3,
                         "ll2": 5.8234e-3},
        "minimax": {"Pin": 1.1138e-3, "VGB": -2.1827, "VDB": 4.5090, "L1": 6.7134e-9, "ll1": 1.8965e-3,
                    "ll2": 5.8209e-3},
        "pin_6mW": {"Pin": 6e-3},
        "vgb_-1.5": {"VGB": -1.5},
        "pin_8mW_vdb_2": {"Pin": 8e-3, "VDB": 2.0},
        "pinch_off": {"VGB": -3.0, "Pin": 0.5e-3},
    },
    "pa": {
        # the flagship's final design (docs/circuits.md, 2026-12-06) and two corners of the ranges
        "flagship": {"L1p": 343.1e-12, "L1s": 104.0e-12, "L3p": 582.0e-12, "L3s": 63.2e-12, "Lm": 221.3e-12,
                     "Wn1": 20.02e-6, "Wn2": 26.32e-6},
        "small": {"L1p": 175e-12, "L1s": 40e-12, "L3p": 238e-12, "L3s": 30e-12, "Lm": 87.5e-12, "Wn1": 16e-6,
                  "Wn2": 24e-6},
        "large": {"L1p": 525e-12, "L1s": 120e-12, "L3p": 713e-12, "L3s": 90e-12, "Lm": 263e-12, "Wn1": 28e-6,
                  "Wn2": 40e-6},
    },
}


def cpu_children() -> float:
    """CPU seconds used so far by finished child processes (the ngspice runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: The cheaper reference of the Jacobian comparison (every row of a Jacobian runs it): long, but 0.5 ps.
JACOBIAN_REFERENCE = {"pa": ".tran 0.5p 1.5n 0 0.5p", "doubler": ".tran 0.5p 8n 0 0.5p"}


def reference_testbench(key: str, folder: Path, tran: str | None = None) -> Testbench | None:
    """Today's testbench ``key`` with the reference transient (or the .tran line ``tran``), a copy in ``folder``;
    None without a transient."""
    recipe = REFERENCE[key]
    if recipe is None:
        return None
    circuit = TESTBENCHES[key][1]
    start = recipe[1]
    tran = tran or recipe[0]
    target = folder / (circuit + ("_jacobian" if tran != recipe[0] else ""))
    shutil.copytree(ROOT / "circuits" / circuit, target)
    if not (folder / "models").exists():
        (folder / "models").symlink_to(ROOT / "circuits" / "models")
    data = yaml.safe_load((target / "testbench.yaml").read_text())
    netlist = target / data["netlist"]
    netlist.write_text(re.sub(r"(?m)^\.tran .*$", tran, netlist.read_text()))
    data.pop("options", None)
    data.pop("warm_start", None)
    data.pop("linear_start", None)
    if start is not None:
        for measure in data["measures"].values():
            if "start" in measure:
                measure["start"] = start
    (target / "testbench.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_testbench(target / "testbench.yaml")


def timed_run(job: SimJob, rows: np.ndarray, workers: int) -> tuple[Any, float, float]:
    """Simulate ``rows`` on a fresh engine: (results, ngspice CPU seconds, wall seconds)."""
    with Engine(workers=workers) as engine:
        cpu, start = cpu_children(), time.perf_counter()
        result = engine.run(job, rows)
        return result, cpu_children() - cpu, time.perf_counter() - start


def max_differences(values: dict[str, np.ndarray], reference: dict[str, np.ndarray], count: int,
                    measures: tuple[str, ...]) -> dict[str, float]:
    """Largest |value - reference| of each measure over the first ``count`` samples (NaN-free pairs)."""
    out = {}
    for name in measures:
        diff = np.abs(np.asarray(values[name][:count]) - np.asarray(reference[name]))
        diff = diff[np.isfinite(diff)]
        out[name] = float(diff.max()) if diff.size else float("nan")
    return out


#: The label of the Jacobian run one outcome per deck (:class:`OutcomePerDeck`).
GROUPED = "after, one outcome per deck"


class OutcomePerDeck(Engine):
    """An engine that runs a Jacobian's rows (M design points × N outcomes, point-major, as the evaluator asks for
    them) one outcome per deck: each outcome's base row and its perturbed copies, which differ by one step and so
    step alike (issue 20's "several samples per deck"). The engine's own partition puts consecutive outcomes of one
    design point in a deck instead."""

    def __init__(self, outcomes: int, workers: int) -> None:
        super().__init__(workers=workers)
        self.outcomes = outcomes

    def run(self, job: SimJob, values: np.ndarray, progress: Any = None, sink: Any = None,
            anchors: np.ndarray | None = None) -> SimResults:
        count = len(values)
        return self.run_batches(job, values, [np.arange(i, count, self.outcomes) for i in range(self.outcomes)],
                                progress, sink)


def jacobian_cost(spec: Spec, jobs: dict[str, SimJob], outcomes: int, seed: int, workers: int
                  ) -> dict[str, Any]:
    """One PAST Jacobian at the spec's start point per job, and today's once more one outcome per deck
    (:data:`GROUPED`): ngspice seconds per simulated row, and each run's relative Frobenius error per measure
    against the ``reference`` job."""
    draw = OutcomeSet.draw(spec.model, outcomes, "sobol", seed)
    runs = [*((label, job, Engine) for label, job in jobs.items()),
            (GROUPED, jobs["after"], functools.partial(OutcomePerDeck, outcomes))]
    found: dict[str, Any] = {}
    for label, job, engine_type in runs:
        with engine_type(workers=workers) as engine:
            evaluator = Evaluator(spec, engine)
            evaluator.job = job  # the testbench under test (same parameters, measures)
            cpu = cpu_children()
            _, jac = PAST(evaluator, draw).start(evaluator.x0)
            found[label] = (jac, evaluator.meter.ngspice_seconds, cpu_children() - cpu,
                            evaluator.meter.simulations, evaluator.errors.measures)
    out: dict[str, Any] = {"outcomes": outcomes}
    for label, (jac, seconds, cpu, sims, measures) in found.items():
        entry = {"simulations": sims, "ngspice_seconds": seconds, "cpu_seconds": cpu}
        if "reference" in found and label != "reference":
            ref = found["reference"][0]
            entry["relative_error"] = {m: float(np.linalg.norm(jac[:, q] - ref[:, q]) / max(np.linalg.norm(ref[:, q]),
                                                                                            1e-300))
                                       for q, m in enumerate(measures)}
        out[label] = entry
    out["speedup"] = found["before"][1] / found["after"][1] if found["after"][1] else float("nan")
    out["speedup_cpu"] = found["before"][2] / found["after"][2] if found["after"][2] else float("nan")
    out["grouped_speedup_cpu"] = found["after"][2] / found[GROUPED][2] if found[GROUPED][2] else float("nan")
    return out


def measure(key: str, args: argparse.Namespace, scratch: Path, console: Console) -> dict[str, Any]:
    """Before/after cost and accuracy of one testbench."""
    spec_file, circuit = TESTBENCHES[key]
    spec = load_spec(ROOT / "specs" / spec_file)
    names = spec.parameters
    rows = sample_matrix(spec, OutcomeSet.draw(spec.model, args.samples, "sobol", args.seed))
    after_tb = spec.testbench
    before_tb = load_testbench(BASELINE / circuit / "testbench.yaml")
    # "before" as the engine ran it then: every vector written to the raw file
    jobs = {"before": dataclasses.replace(before_tb.job(names), vectors=()), "after": after_tb.job(names)}
    runs: dict[str, list[tuple[Any, float, float]]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for label in ("before", "after"):  # alternate, so slow spells of the shared machine hit both
            runs[label].append(timed_run(jobs[label], rows, args.workers))
    result: dict[str, Any] = {"samples": args.samples}
    for label, measured in runs.items():
        seconds = float(np.median([r.ngspice_seconds for r, _, _ in measured])) / args.samples
        cpu = float(np.median([c for _, c, _ in measured])) / args.samples
        wall = float(np.median([w for _, _, w in measured]))
        result[f"seconds_per_sample_{label}"] = cpu
        result[f"wall_seconds_per_sample_{label}"] = seconds
        result[f"samples_per_s_{label}"] = args.samples / wall
        result[f"runs_{label}"] = int(measured[0][0].runs)
        result[f"failed_{label}"] = int(measured[0][0].n_failed)
    result["speedup"] = result["seconds_per_sample_before"] / result["seconds_per_sample_after"]
    result["speedup_wall"] = result["wall_seconds_per_sample_before"] / result["wall_seconds_per_sample_after"]
    reference = reference_testbench(key, scratch)
    measures = after_tb.measure_names
    result["units"] = {m: after_tb.unit(m) for m in measures}
    if reference is None:
        result["reference"] = "none: no transient (.op/.ac/.noise only)"
        result["max_difference"] = {}
        result["max_difference_before"] = {}
    else:
        count = min(args.reference_samples, args.samples)
        ref, _, _ = timed_run(reference.job(names), rows[:count], args.workers)
        recipe = REFERENCE[key]
        result["reference"] = f"{recipe[0]}" + (f", windows from {recipe[1]}" if recipe and recipe[1] else "") + \
            f", ngspice default options, {count} samples"
        result["max_difference"] = max_differences(runs["after"][0][0].values, ref.values, count, measures)
        result["max_difference_before"] = max_differences(runs["before"][0][0].values, ref.values, count, measures)
        if key in ("pa", "doubler") and args.jacobian_outcomes > 0:
            fine = reference_testbench(key, scratch, JACOBIAN_REFERENCE[key])
            assert fine is not None
            result["jacobian"] = jacobian_cost(spec, {**jobs, "reference": fine.job(names)},
                                               args.jacobian_outcomes, args.seed, args.workers)
            result["jacobian"]["reference"] = JACOBIAN_REFERENCE[key]
        if args.designs and key in DESIGNS:
            result["max_difference_by_design"] = design_differences(spec, jobs, reference.job(names), key, measures,
                                                                    count, args)
    console.log(f"{key}: {result['seconds_per_sample_before']:.4f} -> {result['seconds_per_sample_after']:.4f} "
                f"ngspice CPU s/sample ({result['speedup']:.2f}x; process wall {result['speedup_wall']:.2f}x)")
    return result


def design_differences(spec: Spec, jobs: dict[str, SimJob], reference: SimJob, key: str,
                       measures: tuple[str, ...], count: int, args: argparse.Namespace
                       ) -> dict[str, dict[str, dict[str, float]]]:
    """Largest |before/after − reference| of each measure over ``count`` samples at each design of DESIGNS[key]
    (the same outcomes at every design): {design: {"after": {measure: value}, "before": {...}}}."""
    outcomes = OutcomeSet.draw(spec.model, count, "sobol", args.seed)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, design in DESIGNS[key].items():
        rows = sample_matrix(spec, outcomes, design)
        ref, _, _ = timed_run(reference, rows, args.workers)
        out[name] = {label: max_differences(timed_run(jobs[label], rows, args.workers)[0].values, ref.values, count,
                                            measures) for label in ("after", "before")}
    return out


def print_table(results: dict[str, dict[str, Any]], console: Console) -> None:
    """The readable summary: cost before/after and the worst differences from the reference."""
    table = Table(title="Transient testbenches: cost per sample and accuracy against the reference transient")
    for column in ("testbench", "ngspice CPU s/sample before", "after", "speedup", "wall speedup",
                   "samples/s before -> after", "max |after - reference| (before)"):
        table.add_column(column, justify="left" if column.startswith(("testbench", "max")) else "right")
    for key, r in results.items():
        diffs = ", ".join(f"{m} {v:.3g}" + (f" ({r['max_difference_before'].get(m, float('nan')):.3g})")
                          + (f" {r['units'][m]}" if r["units"].get(m) else "")
                          for m, v in r["max_difference"].items()) or r.get("reference", "")
        table.add_row(key, f"{r['seconds_per_sample_before']:.4f}", f"{r['seconds_per_sample_after']:.4f}",
                      f"{r['speedup']:.2f}x", f"{r['speedup_wall']:.2f}x",
                      f"{r['samples_per_s_before']:.1f} -> {r['samples_per_s_after']:.1f}", diffs)
    console.print(table)
    for key, r in results.items():
        by_design = r.get("max_difference_by_design")
        if not by_design:
            continue
        sub = Table(title=f"{key}: max |after - reference| (before) at other designs")
        sub.add_column("design")
        sub.add_column("differences")
        for design, diffs in by_design.items():
            sub.add_row(design, ", ".join(f"{m} {v:.3g} ({diffs['before'].get(m, float('nan')):.3g})"
                                          for m, v in diffs["after"].items()))
        console.print(sub)
    for key, r in results.items():
        jac = r.get("jacobian")
        if not jac:
            continue
        errors = {label: jac[label].get("relative_error", {}) for label in ("before", "after")}
        before, after = jac["before"]["cpu_seconds"], jac["after"]["cpu_seconds"]
        console.print(f"{key} PAST Jacobian ({jac['outcomes']} outcomes): ngspice CPU {before:.1f} s -> {after:.1f} s "
                      f"({jac['speedup_cpu']:.2f}x, process wall {jac['speedup']:.2f}x)"
                      f"; relative error vs reference before/after: "
                      + ", ".join(f"{m} {errors['before'].get(m, float('nan')):.3f}/{v:.3f}"
                                  for m, v in errors["after"].items() if np.isfinite(v) and v > 0))
        grouped = jac[GROUPED]
        console.print(f"{key} the same Jacobian, one outcome per deck: ngspice CPU {grouped['cpu_seconds']:.1f} s "
                      f"({jac['grouped_speedup_cpu']:.2f}x of after); relative error vs reference: "
                      + ", ".join(f"{m} {v:.3f}" for m, v in grouped.get("relative_error", {}).items()
                                  if np.isfinite(v) and v > 0))


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Command line: measure, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testbenches", default=",".join(TESTBENCHES), help="comma-separated keys")
    parser.add_argument("--samples", type=int, default=16, help="Monte Carlo samples per testbench")
    parser.add_argument("--reference-samples", type=int, default=4, help="samples also run with the reference")
    parser.add_argument("--jacobian-outcomes", type=int, default=4, help="outcomes of the PAST Jacobian (0: skip)")
    parser.add_argument("--repeats", type=int, default=1, help="before/after runs, alternated; medians")
    parser.add_argument("--workers", type=int, default=2, help="parallel ngspice processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--designs", action="store_true",
                        help="also check the accuracy at the other designs of DESIGNS (doubler, pa)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: doubler and PA, 2 samples, 1 reference, 1-outcome Jacobians")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.testbenches, args.samples, args.reference_samples, args.jacobian_outcomes = "doubler,pa", 2, 1, 1
        args.designs = True
    keys = [k.strip() for k in args.testbenches.split(",") if k.strip()]
    unknown = [k for k in keys if k not in TESTBENCHES]
    if unknown:
        parser.error(f"unknown testbench {', '.join(unknown)}; expected some of {', '.join(TESTBENCHES)}")
    if args.samples < 1 or args.reference_samples < 0:
        parser.error("--samples must be >= 1 and --reference-samples >= 0")
    console = Console(width=180)
    results = {}
    with tempfile.TemporaryDirectory(prefix="transient-cost-") as scratch:
        for key in keys:
            results[key] = measure(key, args, Path(scratch), console)
    print_table(results, console)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
