"""What PVT corners cost: Monte Carlo samples at every corner against the same samples at one corner, and the wall
time of a 45-corner table (issue 18).

For each circuit, the same N outcomes (common random numbers) are simulated three ways at the spec's start design,
through the evaluator the optimizers use:

* ``one corner``: the spec without corners (its nominal conditions), N samples;
* ``every corner, batched``: the corner evaluator, N samples at each of the C corners: one engine call per model
  section (and temperature, where temperatures are decks of their own), supplies/process parameters as copies,
  the sky130 temperatures re-run in each ngspice process;
* ``every corner, one at a time``: the same N x C samples, one corner per engine call (one temperature per deck).

``overhead_ratio`` is the ngspice CPU per corner-sample of the batched way over the ngspice CPU per sample at one
corner (the issue's target: at most 1.3), the worst over the circuits measured. ``table_seconds_45`` is the wall
time of the nominal corners x specs table of a 45-corner product (5 processes x 3 supplies x 3 temperatures) of an
AC testbench on 2 workers: the sky130 OTA when its models are installed, else the TSVA (median of --repeat). CPU
seconds are those of the ngspice processes (getrusage of the children); the machine is shared, so compare within
one invocation.

    python benchmarks/corners_cost.py --json corners_cost.json
    python benchmarks/corners_cost.py --samples 4 --circuits csva --table tsva --repeat 1   # smoke size
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.optim.corners import CornerEvaluator, corner_table  # noqa: E402
from optiyield.optim.evaluator import Evaluator  # noqa: E402
from optiyield.pdk import sky130  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import Spec, load_spec, revise  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402

SPECS = {"csva": ROOT / "specs" / "csva_corners.yaml", "sky130": ROOT / "specs" / "sky130_ota_corners.yaml",
         "tsva": ROOT / "specs" / "tsva_corners.yaml"}
#: Outcomes per corner by default: enough ngspice CPU at one corner to measure (the CSVA's 1,000 take ~0.2 s).
SAMPLES = {"csva": 1000, "tsva": 300, "sky130": 100}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(function: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, ngspice CPU seconds, wall seconds) of a call."""
    cpu, wall = _children_cpu(), time.perf_counter()
    result = function()
    return result, _children_cpu() - cpu, time.perf_counter() - wall


def one_corner(spec: Spec, index: int) -> Spec:
    """``spec`` restricted to its corner ``index`` (same fixed parameters, hence the same rows)."""
    corners = spec.corners
    assert corners is not None
    corner = corners.corners[index]
    section = corners.sections.index(corner.section)
    single = dataclasses.replace(corners, corners=(corner,), sections=(corner.section,),
                                 testbenches=(corners.testbenches[section],))
    return Spec(spec.file, spec.testbench, spec.model, spec.path, spec.base, single)


def cost_of_corners(name: str, samples: int, engine: Engine, seed: int) -> dict[str, Any]:
    """The three ways of one circuit: CPU and wall seconds, per-sample costs, and the agreement of the numbers."""
    spec = load_spec(SPECS[name])
    assert spec.corners is not None
    plain = revise(spec, corners=None)
    outcomes = OutcomeSet.draw(spec.model, samples, spec.run.sampler, seed)
    count = len(spec.corners)
    base = Evaluator(plain, engine)
    _, cpu_1, wall_1 = measured(lambda: base.responses(base.x0, outcomes))
    evaluator = CornerEvaluator(spec, engine)
    batched, cpu_b, wall_b = measured(lambda: evaluator.responses(evaluator.x0, outcomes))

    def each() -> list[Any]:
        return [CornerEvaluator(one_corner(spec, c), engine).responses(evaluator.x0, outcomes)
                for c in range(count)]

    alone, cpu_a, wall_a = measured(each)
    difference = 0.0
    for c in range(count):
        for measure, values in alone[c].corner_values.items():
            a, b = values[0, 0], batched.corner_values[measure][0, c]
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.any():
                difference = max(difference, float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1e-30))))
    per_1 = cpu_1 / samples
    per_b = cpu_b / (samples * count)
    per_a = cpu_a / (samples * count)
    rows = samples if any(c.monte_carlo != "none" for c in spec.corners.corners) else 1
    return {"circuit": name, "spec": SPECS[name].name, "corners": count, "samples": samples,
            "samples_per_corner": rows, "simulations_batched": int(evaluator.meter.simulations),
            "cpu_seconds": {"one_corner": cpu_1, "batched": cpu_b, "one_at_a_time": cpu_a},
            "wall_seconds": {"one_corner": wall_1, "batched": wall_b, "one_at_a_time": wall_a},
            "cpu_ms_per_sample": {"one_corner": 1e3 * per_1, "batched": 1e3 * per_b, "one_at_a_time": 1e3 * per_a},
            "overhead_ratio": per_b / per_1 if per_1 > 0 else float("nan"),
            "one_at_a_time_ratio": per_a / per_1 if per_1 > 0 else float("nan"),
            "batching_gain": cpu_a / cpu_b if cpu_b > 0 else float("nan"),
            "max_relative_difference": difference}


def table_time(name: str, engine: Engine, repeat: int) -> dict[str, Any]:
    """Wall and CPU seconds of the nominal corner table (evaluator built and table simulated, spec loaded
    before), median of ``repeat``, and the same table one corner at a time."""
    spec = load_spec(SPECS[name])
    assert spec.corners is not None
    runs = []
    for _ in range(repeat):
        def table() -> Any:
            evaluator = CornerEvaluator(spec, engine)
            return corner_table(evaluator, evaluator.x0)

        result, cpu, wall = measured(table)
        runs.append((wall, cpu, result))
    wall, cpu, result = sorted(runs, key=lambda r: r[0])[len(runs) // 2]

    def each() -> None:
        for c in range(len(spec.corners)):  # type: ignore[arg-type]
            evaluator = CornerEvaluator(one_corner(spec, c), engine)
            evaluator.responses(evaluator.x0)

    _, cpu_a, wall_a = measured(each)
    return {"circuit": name, "spec": SPECS[name].name, "corners": len(spec.corners),
            "wall_seconds": wall, "cpu_seconds": cpu, "ngspice_runs": result.cost.runs,
            "wall_seconds_all": [r[0] for r in runs], "passing_corners": int(result.passed.all(axis=1).sum()),
            "one_at_a_time": {"wall_seconds": wall_a, "cpu_seconds": cpu_a}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print the tables, write --json; returns the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None, help="Monte Carlo outcomes per corner (default: "
                        + ", ".join(f"{k} {v}" for k, v in SAMPLES.items()) + ")")
    parser.add_argument("--circuits", default="csva,sky130", help="of csva, sky130, tsva (sky130 skipped without "
                        "its models)")
    parser.add_argument("--table", default="auto", help="circuit of the 45-corner table: sky130, tsva or auto")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the table (median)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    have_pdk = sky130.installed()
    circuits = [c for c in args.circuits.split(",") if c and (c != "sky130" or have_pdk)]
    table_circuit = ("sky130" if have_pdk else "tsva") if args.table == "auto" else args.table
    console = Console(width=160)
    results = []
    with Engine(workers=args.workers) as engine:
        for name in circuits:
            results.append(cost_of_corners(name, args.samples or SAMPLES[name], engine, args.seed))
        table = table_time(table_circuit, engine, args.repeat)
    shown = Table(title=f"Monte Carlo at every corner vs at one corner ({args.workers} workers, ngspice CPU)")
    for column in ("circuit", "corners", "samples", "one corner ms/sample", "batched ms/corner-sample",
                   "one at a time ms/corner-sample", "overhead ratio", "batching gain", "batched wall s",
                   "max rel. difference"):
        shown.add_column(column, justify="left" if column == "circuit" else "right")
    for r in results:
        ms = r["cpu_ms_per_sample"]
        shown.add_row(r["circuit"], str(r["corners"]), str(r["samples"]), f"{ms['one_corner']:.2f}",
                      f"{ms['batched']:.2f}", f"{ms['one_at_a_time']:.2f}", f"{r['overhead_ratio']:.2f}",
                      f"{r['batching_gain']:.2f}", f"{r['wall_seconds']['batched']:.1f}",
                      f"{r['max_relative_difference']:.1e}")
    console.print(shown)
    cost = Table(title=f"nominal corner table of {table['spec']} ({table['corners']} corners, {args.workers} "
                 "workers)")
    for column in ("way", "wall s", "ngspice CPU s", "ngspice runs"):
        cost.add_column(column, justify="left" if column == "way" else "right")
    cost.add_row(f"batched (median of {len(table['wall_seconds_all'])})", f"{table['wall_seconds']:.2f}",
                 f"{table['cpu_seconds']:.2f}", str(table["ngspice_runs"]))
    cost.add_row("one corner at a time", f"{table['one_at_a_time']['wall_seconds']:.2f}",
                 f"{table['one_at_a_time']['cpu_seconds']:.2f}", str(table["corners"]))
    console.print(cost)
    figures = {
        "overhead_ratio": max((r["overhead_ratio"] for r in results), default=float("nan")),
        "table_seconds_45": table["wall_seconds"] if table["corners"] == 45 else None,
        "circuits": results,
        "table": table,
        "workers": args.workers,
    }
    console.print(f"overhead_ratio {figures['overhead_ratio']:.2f} (target <= 1.3); table of {table['corners']} "
                  f"corners {table['wall_seconds']:.2f} s wall (target < 5 s for 45)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float) + "\n")
    return figures


if __name__ == "__main__":
    main()
