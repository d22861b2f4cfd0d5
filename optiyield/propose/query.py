"""Threshold queries: a set of min/max specs (not an exact vector) → several diverse candidate designs.

An inverse model maps an exact measure vector to a design, but a designer asks for ``gain ≥ 11 dB,
power ≤ 850 µW``. :func:`target_vectors` turns such a query into many exact targets: real training rows
pushed just inside the spec box (each violated bound replaced by the limit plus a random margin of up to
10 % of its scale), so unconstrained measures keep realistic, mutually consistent values. The model's
designs for those targets are ranked by the forward surrogate's predicted minimax error (when the model
has one) and thinned to ``count`` designs at least ``min_distance`` apart in the unit design cube
(:func:`select_diverse`). Candidates are proposals only: the caller re-simulates every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optiyield.objective import ErrorModel, minimax_value
from optiyield.propose.inverse import InverseModel


@dataclass(frozen=True)
class Candidates:
    """Proposed designs (K, D), SI; the targets they were predicted for (K, F) (the training rows' own
    measures for the lookup model); and the predicted minimax error of each (NaN without a surrogate)."""

    designs: np.ndarray
    targets: np.ndarray
    predicted_error: np.ndarray


def query_errors(query: ErrorModel, names: tuple[str, ...], measures: np.ndarray) -> np.ndarray:
    """Minimax error (max_j w_j e_j) of measure rows (N, F) against the query; ≤ 0 means every bound met."""
    values = {name: measures[:, q] for q, name in enumerate(names) if name in query.measures}
    return minimax_value(query.errors(values), query.weights)


def target_vectors(query: ErrorModel, names: tuple[str, ...], rows: np.ndarray, n: int,
                   rng: np.random.Generator, max_margin: float = 0.1) -> np.ndarray:
    """``n`` exact targets (n, F) for a threshold query, from training measure rows (N, F)."""
    targets = rows[rng.integers(0, len(rows), size=n)].copy()
    margins = rng.uniform(0.0, max_margin, size=(n, len(query.functions)))
    margins[: n // 3] = 0.0  # a third sit right on the violated limits
    for j, f in enumerate(query.functions):
        if f.measure not in names:
            continue
        q = names.index(f.measure)
        bound = f.limit - f.sign * margins[:, j] * f.scale  # lower bound: limit + margin; upper: limit - margin
        targets[:, q] = np.maximum(targets[:, q], bound) if f.sign < 0 else np.minimum(targets[:, q], bound)
    return targets


def select_diverse(unit_designs: np.ndarray, order: np.ndarray, count: int, min_distance: float) -> np.ndarray:
    """Indices of up to ``count`` designs taken in ``order`` (best first), skipping any closer than
    ``min_distance`` (Euclidean, unit cube) to one already taken; topped up in order if too few."""
    chosen: list[int] = []
    for i in order:
        if len(chosen) == count:
            break
        if all(np.linalg.norm(unit_designs[i] - unit_designs[j]) >= min_distance for j in chosen):
            chosen.append(int(i))
    for i in order:
        if len(chosen) >= count:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return np.array(chosen, dtype=int)


def propose_candidates(model: InverseModel, query: ErrorModel, count: int = 8, targets: int = 256,
                       seed: int = 0, min_distance: float = 0.05) -> Candidates:
    """``count`` diverse candidate designs for a threshold query.

    The lookup model returns the training rows with the best *measured* minimax error; the others predict
    designs for :func:`target_vectors` and rank them by the surrogate (or keep them in random order)."""
    span = np.where(model.upper > model.lower, model.upper - model.lower, 1.0)
    if model.kind == "lookup":
        error = query_errors(query, model.inputs, model.train_measures)
        order = np.argsort(error, kind="stable")
        chosen = select_diverse((model.train_designs - model.lower) / span, order, count, min_distance)
        return Candidates(model.train_designs[chosen], model.train_measures[chosen], error[chosen])
    rng = np.random.default_rng(seed)
    goal = target_vectors(query, model.inputs, model.train_measures, targets, rng)
    designs = model.predict(goal)
    if model.surrogate is not None:
        predicted = query_errors(query, model.inputs, model.surrogate.predict(designs))
        order = np.argsort(predicted, kind="stable")
    else:
        predicted = np.full(len(designs), np.nan)
        order = np.arange(len(designs))
    chosen = select_diverse((designs - model.lower) / span, order, count, min_distance)
    return Candidates(designs[chosen], goal[chosen], predicted[chosen])
