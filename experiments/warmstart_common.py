"""What the ML experiments share: the datasets, the split into training rows / random test targets /
a held-out region of the spec space, and threshold-spec targets built from rows that are known to meet
them.

Split, per circuit (all from the spec's measures in their spec directions, see :func:`partition`):
* the **held-out region**: a box in spec space, every constrained measure at least as good as one
  common quantile of its data, the quantile chosen so that about ``heldout`` of the rows fall inside.
  Rows inside are never trained on, and targets drawn from them are clipped to the box, so no training
  design meets any of them: neither the lookup nor the model has seen a design that good;
* **random test rows**: a ``test`` fraction of the rest, never trained on;
* the **training rows**: everything else (the inverse models then split these 90/10 themselves).

A target is a threshold spec built from one held-back row: every bound of the circuit's spec is moved
to that row's simulated value, loosened by ``slack`` × the measure's spread in the data, so the row's
design is a witness that the target is feasible. Errors use that spread as their scale, so the minimax
error weighs all measures alike.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.dataset import design_plan, sweep_dataset  # noqa: E402
from optiyield.propose.inverse import Dataset, load_dataset  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import Spec, SpecBound, load_spec  # noqa: E402

#: Dataset size per circuit (Sobol' points over the spec's design bounds).
DATASET_POINTS = {"csva": 4096, "lna": 4096, "pa_28ghz": 2048}


def dataset(name: str, engine: Engine, points: int | None = None, folder: Path | None = None
            ) -> tuple[Spec, Dataset]:
    """The circuit's spec and its sweep dataset ``<folder>/<name>.parquet`` (simulated if missing; resumable).

    ``folder`` defaults to ``data/`` of the repository; ``points`` (design points of a new sweep) to
    :data:`DATASET_POINTS`. A smoke test passes a temporary folder and a few dozen points.
    """
    spec = load_spec(ROOT / "specs" / f"{name}.yaml")
    path = (folder or ROOT / "data") / f"{name}.parquet"
    if not path.exists():
        n = points or DATASET_POINTS.get(name, 2048)
        print(f"{name}: sweeping {n} design points into {path} (once; later runs reuse it)", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_dataset(spec, design_plan(spec, n, "sobol", 0), engine, path)
    return spec, load_dataset(path, spec)


@dataclass(frozen=True)
class Partition:
    """Row indices: training rows, random test rows, held-out-region rows; and the region's box, as
    oriented thresholds (a row is inside when every oriented measure is ≥ its threshold)."""

    train: np.ndarray
    test: np.ndarray
    heldout: np.ndarray
    box: np.ndarray


def orientation(spec: Spec) -> np.ndarray:
    """+1 for a measure the spec bounds from below (more is better), −1 from above, per spec measure."""
    return np.array([1.0 if b.min is not None else -1.0 for b in spec.file.specs.values()])


def partition(spec: Spec, data: Dataset, heldout: float = 0.1, test: float = 0.1, seed: int = 0) -> Partition:
    """Split the rows (see the module docstring)."""
    oriented = data.measures * orientation(spec)
    low, high = 0.0, 1.0
    for _ in range(50):  # the largest common quantile whose box still holds >= `heldout` of the rows
        level = 0.5 * (low + high)
        inside = (oriented >= np.quantile(oriented, level, axis=0)).all(axis=1)
        low, high = (level, high) if inside.mean() >= heldout else (low, level)
    box = np.quantile(oriented, low, axis=0)
    inside = (oriented >= box).all(axis=1)
    rest = np.random.default_rng(seed).permutation(np.flatnonzero(~inside))
    n_test = int(round(test * len(data)))
    return Partition(train=np.sort(rest[n_test:]), test=np.sort(rest[:n_test]), heldout=np.flatnonzero(inside),
                     box=box)


def subset(data: Dataset, rows: np.ndarray) -> Dataset:
    """The dataset restricted to ``rows``."""
    return Dataset(data.design_names, data.measure_names, data.designs[rows], data.measures[rows], 0)


def spreads(data: Dataset) -> np.ndarray:
    """Per-measure spread (5th–95th percentile range) of the data: the error scale of targets."""
    low, high = np.percentile(data.measures, [5, 95], axis=0)
    return np.maximum(high - low, 1e-30)


def target_spec(spec: Spec, values: np.ndarray, spread: np.ndarray, slack: float, box: np.ndarray | None = None
                ) -> Spec:
    """``spec`` with every bound moved to ``values`` (one row's measures) loosened by slack × spread, but
    never looser than ``box`` (oriented thresholds of the held-out region) when given."""
    specs = {}
    sense = orientation(spec)
    oriented = values * sense - slack * spread
    if box is not None:
        oriented = np.maximum(oriented, box)
    limits = oriented * sense
    for q, (name, bound) in enumerate(spec.file.specs.items()):
        if bound.min is not None:
            specs[name] = SpecBound(min=float(limits[q]), scale=float(spread[q]))
        else:
            specs[name] = SpecBound(max=float(limits[q]), scale=float(spread[q]))
    file = spec.file.model_copy(update={"specs": specs})
    return Spec(file, spec.testbench, spec.model, spec.path)


def pick(rows: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` rows drawn without replacement (all of them if fewer)."""
    rng = np.random.default_rng(seed)
    return rng.choice(rows, size=min(count, len(rows)), replace=False)
