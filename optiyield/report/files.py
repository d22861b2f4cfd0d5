"""Write a Monte Carlo result to a folder: per-sample table, JSON summary, one histogram per spec."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from optiyield.montecarlo import MonteCarloResult  # noqa: E402
from optiyield.spec import Spec  # noqa: E402
from optiyield.yield_ import YieldEstimate  # noqa: E402


def _estimate(est: YieldEstimate) -> dict[str, Any]:
    return {"value": est.value, "low": est.low, "high": est.high, "passed": est.passed, "n": est.n}


def summary_dict(spec: Spec, result: MonteCarloResult) -> dict[str, Any]:
    """The headline figures of a run as plain JSON-able data (fractions, SI units, seconds)."""
    summary = result.summary
    reasons = result.failed["reason"].value_counts()
    return {
        "spec": spec.name,
        "spec_file": str(spec.path) if spec.path else None,
        "design": result.design,
        "samples": len(result.table),
        "seed": result.seed,
        "sampler": result.sampler,
        "confidence": summary.overall.confidence,
        "yield": _estimate(summary.overall),
        "per_spec": {
            name: {**_estimate(est), "min": spec.file.specs[name].min, "max": spec.file.specs[name].max,
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
    bound = spec.file.specs[measure]
    unit = spec.testbench.unit(measure)
    formatter = EngFormatter(unit=unit, sep=" ")
    values = result.table.loc[result.table["status"] != "failed", measure].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    if len(values):
        bins = min(60, max(10, int(math.sqrt(len(values)))))
        passing = np.ones_like(values, dtype=bool)
        if bound.min is not None:
            passing &= values >= bound.min
        if bound.max is not None:
            passing &= values <= bound.max
        edges = np.histogram_bin_edges(values, bins=bins)
        axes.hist(values[passing], bins=edges, color="#4c8cbf", label="meets spec")
        axes.hist(values[~passing], bins=edges, color="#d9534f", label="violates spec")
    for limit, label in ((bound.min, "min"), (bound.max, "max")):
        if limit is not None:
            axes.axvline(limit, color="black", linestyle="--", linewidth=1.5)
            axes.annotate(f"{label} {formatter.format_data(limit)}", (limit, 1), xycoords=("data", "axes fraction"),
                          xytext=(3, -12), textcoords="offset points", fontsize=8)
    est = result.summary.per_spec[measure]
    axes.set_title(f"{spec.name}: {measure} — spec yield {est.value * 100:.1f} % "
                   f"[{est.low * 100:.1f}, {est.high * 100:.1f}]", fontsize=10)
    axes.set_xlabel(f"{measure} ({unit})" if unit else measure)
    axes.xaxis.set_major_formatter(formatter)
    axes.set_ylabel("samples")
    axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


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
