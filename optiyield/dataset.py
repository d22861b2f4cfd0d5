"""Design-space datasets: sample the design variables of a spec, simulate, store rows in Parquet.

The data for inverse models (spec → parameters) and surrogates. Each row holds the design variables (SI),
every reported measure, and the simulation ``status``/``reason`` — failed points are kept, flagged, so a
model can learn where the circuit does not work. Statistical parameters stay at nominal, unless the plan
carries one Monte Carlo outcome per row (:func:`with_variation`: deviate columns ``z:0``, ``z:1``, …), the
data of a yield model (design × variation → measures, :mod:`optiyield.propose.yield_model`).

The plan (which points, in which order) is a pure function of the spec's design bounds, the method, N and
the seed, so a run is resumable: chunks are written as ``<out>.parts/part-NNNNN.parquet`` as they finish,
a restarted run skips the chunks already on disk, and the final file is their concatenation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import qmc

from optiyield.montecarlo import simulate
from optiyield.sim.protocol import Backend
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet

Method = Literal["sobol", "lhs", "grid"]
DEVIATE_PREFIX = "z:"


def deviate_columns(dims: int) -> list[str]:
    """Names of the standardized-deviate columns of a variation dataset: ``z:0`` … ``z:<dims - 1>``."""
    return [f"{DEVIATE_PREFIX}{k}" for k in range(dims)]


def with_variation(spec: Spec, plan: pd.DataFrame, seed: int = 0, sampler: str | None = None) -> pd.DataFrame:
    """The plan with one Monte Carlo outcome per row: standardized deviates (columns :func:`deviate_columns`)
    drawn with ``sampler`` (default the spec's ``run.sampler``) and ``seed``, row i pairing design i with
    outcome i. A spec without statistical parameters gets no deviate columns."""
    if spec.model.dims == 0:
        return plan.copy()
    z = OutcomeSet.draw(spec.model, len(plan), sampler or spec.run.sampler, seed).z  # type: ignore[arg-type]
    return pd.concat([plan.reset_index(drop=True), pd.DataFrame(z, columns=deviate_columns(spec.model.dims))],
                     axis=1)


def parameter_rows(spec: Spec, rows: pd.DataFrame) -> np.ndarray:
    """Per-sample values of ``spec.parameters`` (N, P), SI: each row's design variables (absent ones at
    their start), its statistical parameters moved by its deviates when the plan has them, else nominal."""
    design_names = [c for c in rows.columns if c in spec.file.design]
    deviates = [c for c in rows.columns if c.startswith(DEVIATE_PREFIX)]
    if not deviates:
        nominal = spec.nominal()
        return np.column_stack([rows[name].to_numpy(dtype=float) if name in design_names
                                else np.full(len(rows), nominal[name]) for name in spec.parameters])
    out = np.empty((len(rows), len(spec.parameters)))
    for i, (design, z) in enumerate(zip(rows[design_names].to_numpy(dtype=float),
                                        rows[deviates].to_numpy(dtype=float), strict=True)):
        nominal = spec.nominal(dict(zip(design_names, design, strict=True)))
        varied = spec.model.apply(nominal, z[None, :])
        out[i] = [float(varied[p][0]) if p in varied else nominal[p] for p in spec.parameters]
    return out


def design_plan(spec: Spec, n: int, method: Method = "sobol", seed: int = 0) -> pd.DataFrame:
    """N design points inside the spec's design bounds (columns = design variables, SI units).

    ``sobol``: scrambled Sobol' points (N rounded up to a power of two is drawn, the first N kept);
    ``lhs``: a Latin hypercube; ``grid``: a full-factorial grid with ``floor(N ** (1/d))`` levels per
    variable (at least 2), so it may hold fewer than N points.
    """
    names = list(spec.file.design)
    lower, upper = spec.design_bounds
    d = len(names)
    if method == "sobol":
        unit = qmc.Sobol(d, scramble=True, seed=seed).random(2 ** max(0, math.ceil(math.log2(n))))[:n]
    elif method == "lhs":
        unit = qmc.LatinHypercube(d, seed=seed).random(n)
    elif method == "grid":
        levels = max(2, int(math.floor(n ** (1.0 / d) + 1e-9)))
        axes = np.meshgrid(*[np.linspace(0.0, 1.0, levels)] * d, indexing="ij")
        unit = np.column_stack([a.ravel() for a in axes])
    else:
        raise ValueError(f"unknown sampling method {method!r}; expected sobol, lhs or grid")
    return pd.DataFrame(lower + unit * (upper - lower), columns=names)


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep_dataset` did: the final table, chunks simulated now vs found on disk."""

    table: pd.DataFrame
    simulated_chunks: int
    reused_chunks: int
    ngspice_seconds: float


def sweep_dataset(spec: Spec, plan: pd.DataFrame, engine: Backend, out: Path, chunk: int = 1000,
                  progress: Callable[[int], None] | None = None) -> SweepResult:
    """Simulate every point of ``plan`` in chunks, writing each finished chunk, then ``out`` (Parquet).

    A chunk file already on disk with the same plan rows is reused, so an interrupted sweep continues
    where it stopped. ``progress`` is called with the number of points finished (simulated or reused).
    """
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    manifest = {"spec": spec.name, "design": list(plan.columns), "points": len(plan),
                "measures": list(spec.testbench.measure_names), "chunk": chunk}
    manifest_file = parts / "manifest.json"
    if manifest_file.exists() and json.loads(manifest_file.read_text()) != manifest:
        raise ValueError(f"{parts} belongs to a different sweep (other spec, size or chunk); remove it or choose "
                         "another --out")
    manifest_file.write_text(json.dumps(manifest, indent=1))
    tables, simulated, reused, seconds = [], 0, 0, 0.0
    for index, begin in enumerate(range(0, len(plan), chunk)):
        rows = plan.iloc[begin:begin + chunk].reset_index(drop=True)
        part = parts / f"part-{index:05d}.parquet"
        if part.exists():
            table = pd.read_parquet(part)
            if len(table) == len(rows) and np.allclose(table[list(plan.columns)].to_numpy(), rows.to_numpy()):
                tables.append(table)
                reused += 1
                if progress:
                    progress(len(rows))
                continue
        result = simulate(spec, parameter_rows(spec, rows), engine, progress)
        table = rows.copy()
        for name in spec.testbench.measure_names:
            table[name] = result.values[name]
        table["status"], table["reason"] = result.status.astype(str), result.reason.astype(str)
        table.to_parquet(part.with_suffix(".tmp"), index=False)
        part.with_suffix(".tmp").replace(part)  # a killed run never leaves a half-written chunk
        tables.append(table)
        simulated += 1
        seconds += result.ngspice_seconds
    final = pd.concat(tables, ignore_index=True) if tables else plan.copy()
    final.to_parquet(out, index=False)
    return SweepResult(final, simulated, reused, seconds)
