"""Limit states on batches: standard-normal points u (N, d) → margins (N, B), one column per spec bound.

A margin ≥ 0 means the bound is met; a negative margin or NaN (a failed simulation) means it is violated.
An outcome fails when any of its bounds fails. Every call to :meth:`LimitState.margins` is one batch: the
limit state counts the points it evaluated (``evaluations``) and the calls (``batches``), so every
estimator's cost is counted in one place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["FunctionLimitState", "LimitState", "failing", "min_margin"]

#: Margin given to a NaN (failed) outcome by :func:`min_margin`: a clear, finite failure.
FAILED_MARGIN = -1.0


class LimitState(ABC):
    """A batched limit state in the d-dimensional standard-normal space.

    Subclasses implement :meth:`_margins`; callers use :meth:`margins`, which checks shapes and counts.
    ``labels`` name the bounds (columns of the margins), e.g. ``gain_db ≥ 11``.
    """

    def __init__(self, dimension: int, labels: Sequence[str]) -> None:
        """``dimension`` d ≥ 1 of the standard-normal space; ``labels``: one name per bound (B ≥ 1)."""
        if isinstance(dimension, bool) or int(dimension) != dimension or dimension < 1:
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        labels = tuple(str(x) for x in labels)
        if not labels:
            raise ValueError("a limit state needs at least one bound")
        self.dimension = int(dimension)
        self.labels = labels
        self.evaluations = 0
        self.batches = 0

    @property
    def bounds(self) -> int:
        """Number of bounds B (margin columns)."""
        return len(self.labels)

    def margins(self, u: np.ndarray) -> np.ndarray:
        """Margins of the points ``u`` (shape (N, d), or (d,) for one point): array (N, B), NaN = failed."""
        u = np.asarray(u, dtype=float)
        if u.ndim == 1:
            u = u[None, :]
        if u.ndim != 2 or u.shape[1] != self.dimension:
            raise ValueError(f"points must have shape (N, {self.dimension}), got {u.shape}")
        if not np.all(np.isfinite(u)):
            raise ValueError("points must be finite")
        if u.shape[0] == 0:
            return np.empty((0, self.bounds))
        m = np.asarray(self._margins(u), dtype=float).reshape(u.shape[0], self.bounds)
        self.evaluations += u.shape[0]
        self.batches += 1
        return m

    def fails(self, u: np.ndarray) -> np.ndarray:
        """True for each point of ``u`` that fails some bound (shape (N,))."""
        return failing(self.margins(u))

    @abstractmethod
    def _margins(self, u: np.ndarray) -> np.ndarray:
        """Margins of a validated, non-empty (N, d) batch."""


class FunctionLimitState(LimitState):
    """A limit state from a vectorised function ``fn(u) -> (N, B)`` (analytic test cases)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], dimension: int, labels: Sequence[str]) -> None:
        """Wrap ``fn`` (standard-normal points (N, d) → margins (N, B))."""
        super().__init__(dimension, labels)
        self._fn = fn

    def _margins(self, u: np.ndarray) -> np.ndarray:
        return self._fn(u)


def failing(margins: np.ndarray) -> np.ndarray:
    """True where an outcome (row) has a negative or NaN margin on some bound."""
    m = np.asarray(margins, dtype=float)
    return np.any(~(m >= 0.0), axis=-1)


def min_margin(margins: np.ndarray) -> np.ndarray:
    """Smallest margin of each row (the composite limit state g; g < 0 fails); NaN → ``FAILED_MARGIN``
    (or the row's smallest margin, if lower), so downstream libraries see finite numbers."""
    m = np.asarray(margins, dtype=float)
    finite = np.where(np.isnan(m), np.inf, m).min(axis=-1)
    nan_rows = np.isnan(m).any(axis=-1)
    return np.where(nan_rows, np.minimum(finite, FAILED_MARGIN), finite)
