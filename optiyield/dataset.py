"""Design-space datasets: sample the design variables of a spec, simulate, store rows in Parquet.

The data for inverse models (spec → parameters) and surrogates. Each row holds the design variables (SI),
every reported measure, and the simulation ``status``/``reason`` — failed points are kept, flagged, so a
model can learn where the circuit does not work. Statistical parameters stay at nominal.

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

Method = Literal["sobol", "lhs", "grid"]


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
    nominal = spec.nominal()
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
        values = np.column_stack([rows[name].to_numpy() if name in rows else np.full(len(rows), nominal[name])
                                  for name in spec.parameters])
        result = simulate(spec, values, engine, progress)
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
