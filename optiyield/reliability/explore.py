"""Exploration for failure regions a local worst-case search cannot see from the nominal.

A bound can fail in several regions (a gain that drops when the load resistor is low AND when a low
threshold pushes the transistor out of saturation). The descent from u = 0 finds one of them. Here a
small scaled-sigma sample, u ~ N(0, s²·I) with s > 1 (one batch), lands points in every region within
reach; failing points NOT explained by a known worst-case point (outside its linearized failure
half-space u·u*/‖u*‖ ≥ β, with some slack) become starting points of further worst-case searches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optiyield.reliability.limit_state import LimitState
from optiyield.reliability.wcd import WorstCase

__all__ = ["unexplained_starts"]


def unexplained_starts(state: LimitState, known: Sequence[WorstCase], samples: int, *, scale: float,
                       seed: int = 0, per_bound: int = 2, slack: float = 0.5, cosine: float = 0.8,
                       keep: list[tuple[np.ndarray, np.ndarray]] | None = None
                       ) -> tuple[list[tuple[int, np.ndarray]], int]:
    """Starting points ``(bound, u)`` for new worst-case searches, from ``samples`` points of N(0, s²I).

    A failing point of bound j is explained when some known worst-case point u* of that bound (β > 0) has
    u·u*/‖u*‖ ≥ β − ``slack`` (it lies in that point's linearized failure half-space); of the unexplained
    ones, the nearest to the nominal
    become starts, at most ``per_bound`` per bound and no two with direction cosine above ``cosine``.
    Returns the starts and the evaluations spent; ``keep`` (a list) receives the sample and its margins, so
    that importance sampling can reuse them as draws of N(0, s²I).
    """
    if samples < 1:
        return [], 0
    start = state.evaluations
    rng = np.random.default_rng(seed)
    u = scale * rng.standard_normal((samples, state.dimension))
    m = state.margins(u)
    if keep is not None:
        keep.append((u, m))
    starts: list[tuple[int, np.ndarray]] = []
    for j in range(state.bounds):
        fails = m[:, j] < 0  # NaN rows carry no margin to descend on
        if not fails.any():
            continue
        x = u[fails]
        explained = np.zeros(len(x), dtype=bool)
        for wc in known:
            if wc.label == state.labels[j] and wc.point is not None and wc.beta > 0:
                explained |= x @ (wc.point / np.linalg.norm(wc.point)) >= wc.beta - slack
        chosen: list[np.ndarray] = []
        for k in np.argsort(np.linalg.norm(x, axis=1)):
            if explained[k]:
                continue
            v = x[k] / np.linalg.norm(x[k])
            if all(v @ c / np.linalg.norm(c) < cosine for c in chosen):
                chosen.append(x[k])
            if len(chosen) == per_bound:
                break
        starts += [(j, c) for c in chosen]
    return starts, state.evaluations - start
