"""Write results to a folder: a Monte Carlo (per-sample table, JSON summary, one histogram per spec) and a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optiyield.montecarlo import MonteCarloResult
from optiyield.report.figures import HistogramSeries, png_bytes, spec_histogram
from optiyield.run import RunReport
from optiyield.spec import Spec
from optiyield.store import to_json


def summary_dict(spec: Spec, result: MonteCarloResult) -> dict[str, Any]:
    """The headline figures of a run as plain JSON-able data (fractions, SI units, seconds)."""
    summary = result.summary
    reasons = result.failed["reason"].value_counts()
    return {
        "spec": spec.name,
        "spec_file": str(spec.path.resolve()) if spec.path else None,
        "design": result.design,
        "samples": len(result.table),
        "seed": result.seed,
        "sampler": result.sampler,
        "confidence": summary.overall.confidence,
        "yield": summary.overall.to_dict(),
        "per_spec": {
            name: {**est.to_dict(), "min": spec.file.specs[name].min, "max": spec.file.specs[name].max,
                   "failures": summary.failures_per_spec[name]}
            for name, est in summary.per_spec.items()
        },
        "failed_simulations": summary.failed_simulations,
        "failure_reasons": {str(k): int(v) for k, v in reasons.items()},
        "retried_simulations": int((result.table["status"] == "retried").sum()),
        "wall_seconds": result.wall_seconds,
        "ngspice_seconds": result.ngspice_seconds,
        "ngspice_runs": result.runs,
        "samples_per_second": result.samples_per_second,
    }


def histogram(spec: Spec, result: MonteCarloResult, measure: str, path: Path) -> None:
    """Histogram of one measure over the successfully simulated samples, with its limits drawn."""
    values = result.table.loc[result.table["status"] != "failed", measure].to_numpy(dtype=float)
    est = result.summary.per_spec[measure]
    title = (f"{spec.name}: {measure} — spec yield {est.value * 100:.1f} % "
             f"[{est.low * 100:.1f}, {est.high * 100:.1f}]")
    figure = spec_histogram(measure, spec.file.specs[measure], spec.testbench.unit(measure),
                            HistogramSeries(values, ""), title=title)
    path.write_bytes(png_bytes(figure))


def write_outputs(spec: Spec, result: MonteCarloResult, folder: str | Path) -> dict[str, Path]:
    """Write ``samples.csv``, ``samples.parquet``, ``summary.json`` and ``hist_<measure>.png``.

    Returns the written paths by role.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {"csv": folder / "samples.csv", "parquet": folder / "samples.parquet",
               "summary": folder / "summary.json"}
    result.table.to_csv(written["csv"], index=False)
    result.table.to_parquet(written["parquet"], index=False)
    written["summary"].write_text(json.dumps(summary_dict(spec, result), indent=2, default=float) + "\n")
    for measure in spec.file.specs:
        path = folder / f"hist_{measure}.png"
        histogram(spec, result, measure, path)
        written[f"hist_{measure}"] = path
    return written


def write_run(report: RunReport, folder: str | Path) -> dict[str, Path]:
    """Write what ``optiyield run`` leaves besides its store: ``run_summary.json``, the last verification's
    Monte Carlo outputs (:func:`write_outputs`), each step's tables (``proposals.csv``) and, after a centering
    step, the statistical corners of its final design (``corners/<bound>.param``, ``corners/corners.alter``,
    ``corners/corners_ngspice.control``). Returns the written paths by role."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {"run_summary": folder / "run_summary.json"}
    for step in report.steps:
        for name, table in step.result.tables.items():
            written[name] = folder / f"{name}.csv"
            table.to_csv(written[name], index_label=table.index.name or "candidate")
    if report.verify is not None:
        written.update(write_outputs(report.spec, report.verify, folder))
    worst = report.reliability.get("worst_case")
    if worst and worst.get("corners"):
        from optiyield.reliability.corners import Corner, write_corners

        found = [Corner.from_dict(c) for c in worst["corners"]]
        written.update({f"corners:{k}": v for k, v in write_corners(folder / "corners", found,
                                                                     report.spec.name).items()})
    written["run_summary"].write_text(json.dumps(report.summary(), indent=2, default=to_json) + "\n")
    return written

