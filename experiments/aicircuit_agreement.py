"""How well our ngspice testbenches agree with AICircuit's Cadence Spectre datasets.

For every circuit that has ``circuits/<name>/aicircuit.yaml`` (a mapping from the dataset's CSV columns
to our design parameters and measures), N random rows of the dataset are re-simulated with the same
PTM 45 nm card through optiyield's batched engine (statistical parameters at nominal), and the relative
disagreement per metric is reported as median and 90th percentile.

    python experiments/aicircuit_agreement.py [--data DIR] [--rows 200] [--seed 1] [--circuits csva,cva]
                                              [--json FILE]

DIR defaults to ../shared/reference/aicircuit/datasets when that folder exists. ``--json`` maps
circuit → metric → {"median": …, "p90": …} (fractions), plus "rows" per circuit.

aicircuit.yaml::

    dataset: CSVA.csv
    spec: ../../specs/csva.yaml          # relative to the yaml: testbench, parameter list, nominal values
    parameters: {VDD: VDD, Vgate: Vgate, Wn: W, Rd: Rd}       # CSV column -> design parameter
    metrics:                                                  # CSV column -> our measure
      Bandwidth: {measure: bw}
      VoltageGain: {measure: gain_db, scale: 1.0, offset: 0.0}   # theirs_SI = csv * scale + offset
      Bandwidth as sampled:                                   # their procedure applied to our response
        column: Bandwidth
        sampled_bandwidth: {out: voutp, in: vinp, step: 200e6, points: 50}

``sampled_bandwidth`` reproduces a bandwidth read off a coarse linear sweep (0, step, 2·step, …) with
|H| interpolated linearly, as Cadence Ocean's ``bandwidth()`` does on such a sweep: our AC response is
sampled at those frequencies (extra ``gain_db_at`` measures) and
:func:`optiyield.measure.sampled_bandwidth` is applied.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.measure import sampled_bandwidth  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.testbench import TestbenchFile, build_testbench  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "reference" / "aicircuit" / "datasets"


def compare(mapping_file: Path, data: Path, rows: int, seed: int, engine: Engine) -> dict[str, object]:
    """Re-simulate ``rows`` random dataset rows of one circuit; per-metric disagreement statistics."""
    mapping = yaml.safe_load(mapping_file.read_text())
    spec = load_spec(mapping_file.parent / mapping["spec"])
    table = pd.read_csv(data / mapping["dataset"])
    chosen = table.sample(n=min(rows, len(table)), random_state=seed)
    nominal = spec.nominal()
    params = mapping["parameters"]
    values = np.array([[row[col] if (col := _column_for(params, name)) else nominal[name] for name in spec.parameters]
                       for _, row in chosen.iterrows()], dtype=float)
    testbench = _with_sampling_measures(spec, mapping["metrics"].values())
    result = engine.run(testbench.job(spec.parameters), values)
    report: dict[str, object] = {"rows": len(chosen), "failed": result.n_failed}
    for label, metric in mapping["metrics"].items():
        column = metric.get("column", label)
        theirs = chosen[column].to_numpy(dtype=float) * metric.get("scale", 1.0) + metric.get("offset", 0.0)
        sampled = metric.get("sampled_bandwidth")
        if sampled:
            names = _grid_names(int(sampled["points"]))
            grid = np.column_stack([result.values[name] for name in names[1:]])
            ours = sampled_bandwidth(result.values[names[0]], grid, float(sampled["step"]))
        else:
            ours = result.values[metric["measure"]]
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.abs(ours - theirs) / np.abs(theirs)
        relative = relative[np.isfinite(relative)]
        report[metric.get("measure", label)] = {
            "median": float(np.median(relative)) if len(relative) else float("nan"),
            "p90": float(np.percentile(relative, 90)) if len(relative) else float("nan"),
            "median_abs": float(np.nanmedian(np.abs(ours - theirs))),
            "p90_abs": float(np.nanpercentile(np.abs(ours - theirs), 90)),  # for metrics that cross zero (PA PSAT)
            "compared": int(len(relative)),
            "column": column,
        }
    return report


def _with_sampling_measures(spec, metrics):  # noqa: ANN001, ANN202 - (Spec, metric entries) -> Testbench
    """The spec's testbench, plus ``gain_db_at`` measures on the grid of a ``sampled_bandwidth`` metric."""
    sampled = next((m["sampled_bandwidth"] for m in metrics if m.get("sampled_bandwidth")), None)
    if sampled is None:
        return spec.testbench
    source = spec.testbench.source
    data = yaml.safe_load(source.read_text())
    nodes = {"out": sampled["out"], **({"in": sampled["in"]} if sampled.get("in") else {})}
    measures = dict(data.get("measures", {}))
    names = _grid_names(int(sampled["points"]))
    if clash := sorted(set(names) & set(measures)):
        raise SystemExit(f"{source}: measure names {clash} clash with the sampled-bandwidth grid measures")
    measures[names[0]] = {"fn": "lf_gain_db", **nodes}
    for k, name in enumerate(names[1:], start=1):
        measures[name] = {"fn": "gain_db_at", "f": k * float(sampled["step"]), **nodes}
    data["measures"] = measures
    return build_testbench(TestbenchFile.model_validate(data), source.parent, source)


def _grid_names(points: int) -> list[str]:
    """Names of the grid measures: the low-frequency gain, then |H| in dB at step, 2·step, … ``points``·step.

    They are reported measures (a leading ``_`` would make them intermediates, which the engine does not return).
    """
    return [f"agreement_grid{k}" for k in range(points + 1)]


def _column_for(params: dict[str, str], name: str) -> str | None:
    return next((col for col, target in params.items() if target == name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--circuits", default="", help="comma-separated names (default: every circuit with a mapping)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.data is None or not args.data.is_dir():
        parser.error("no dataset folder: pass --data DIR (AICircuit's datasets/*.csv)")
    mappings = sorted((ROOT / "circuits").glob("*/aicircuit.yaml"))
    wanted = {c.strip() for c in args.circuits.split(",") if c.strip()}
    if wanted:
        mappings = [m for m in mappings if m.parent.name in wanted]
    engine = Engine()
    results = {m.parent.name: compare(m, args.data, args.rows, args.seed, engine) for m in mappings}
    table = Table(title=f"ngspice vs Spectre (AICircuit), {args.rows} random rows per circuit, seed {args.seed}")
    for column in ("circuit", "metric", "CSV column", "rows", "median rel.", "p90 rel.", "median |Δ|", "p90 |Δ|"):
        table.add_column(column, justify="left" if column in ("circuit", "metric", "CSV column") else "right")
    for circuit, report in results.items():
        for metric, stats in report.items():
            if isinstance(stats, dict):
                table.add_row(circuit, metric, stats["column"], str(stats["compared"]), f"{stats['median']:.2%}",
                              f"{stats['p90']:.2%}", f"{stats['median_abs']:.4g}", f"{stats['p90_abs']:.4g}")
        if report["failed"]:
            table.add_row(circuit, "(failed simulations)", "", str(report["failed"]), "", "", "", "")
    Console(width=140).print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
