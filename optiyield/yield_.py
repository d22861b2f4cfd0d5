"""Yield estimates from Monte Carlo pass/fail counts, with binomial confidence intervals.

Yields are fractions in [0, 1]; intervals are two-sided at the given confidence level (0.95 = 95 %).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import binomtest

__all__ = [
    "IntervalMethod",
    "SpecLimit",
    "YieldEstimate",
    "YieldSummary",
    "clopper_pearson_interval",
    "interval_narrower_than",
    "wilson_interval",
    "yield_table",
]

#: Binomial confidence interval method.
IntervalMethod = Literal["wilson", "clopper-pearson"]

_METHOD_LABEL: dict[str, str] = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson"}


def _check_counts(passed: int, n: int, confidence: float) -> None:
    """Raise ValueError unless 0 <= passed <= n are integers and 0 < confidence < 1."""
    for label, v in (("passed", passed), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{label} must be a non-negative integer, got {v!r}")
    if passed > n:
        raise ValueError(f"passed ({passed}) exceeds n ({n})")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _interval(passed: int, n: int, confidence: float, method: IntervalMethod) -> tuple[float, float]:
    """Binomial proportion interval via :meth:`scipy.stats.binomtest(...).proportion_ci`."""
    _check_counts(passed, n, confidence)
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(int(passed), int(n)).proportion_ci(
        confidence_level=confidence, method="exact" if method == "clopper-pearson" else "wilson"
    )
    p = passed / n
    # The exact bounds at the boundaries are 0 and 1; pin them so the interval always contains p.
    low = 0.0 if passed == 0 else min(max(float(ci.low), 0.0), p)
    high = 1.0 if passed == n else max(min(float(ci.high), 1.0), p)
    return low, high


def wilson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for a yield of ``passed``/``n``; ``n = 0`` gives ``(0, 1)``."""
    return _interval(passed, n, confidence, "wilson")


def clopper_pearson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval ``(low, high)`` for ``passed``/``n``; ``n = 0`` gives ``(0, 1)``."""
    return _interval(passed, n, confidence, "clopper-pearson")


@dataclass(frozen=True)
class YieldEstimate:
    """A yield point estimate ``value = passed / n`` (NaN when n = 0) with its confidence interval.

    ``low``/``high`` bound the yield (fractions in [0, 1]) at ``confidence``, computed by ``method``.
    """

    passed: int
    n: int
    value: float
    low: float
    high: float
    confidence: float = 0.95
    method: IntervalMethod = "wilson"

    @classmethod
    def from_counts(
        cls, passed: int, n: int, confidence: float = 0.95, method: IntervalMethod = "wilson"
    ) -> YieldEstimate:
        """Estimate from counts, with a Wilson (default) or Clopper-Pearson interval."""
        if method not in _METHOD_LABEL:
            raise ValueError(f"method must be 'wilson' or 'clopper-pearson', got {method!r}")
        low, high = _interval(passed, n, confidence, method)
        value = passed / n if n else math.nan
        return cls(int(passed), int(n), value, low, high, float(confidence), method)

    def to_dict(self) -> dict[str, float | int]:
        """JSON-able form: ``value``, ``low``, ``high`` (fractions), ``passed`` and ``n``."""
        return {"value": self.value, "low": self.low, "high": self.high, "passed": self.passed, "n": self.n}

    @property
    def width(self) -> float:
        """Width of the confidence interval, ``high - low`` (a fraction)."""
        return self.high - self.low

    def __str__(self) -> str:
        """Like ``71.0 % [66.9, 74.8] (355/500, 95 % Wilson)``."""
        value = "n/a" if math.isnan(self.value) else f"{100 * self.value:.1f} %"
        label = _METHOD_LABEL.get(self.method, self.method)
        return (
            f"{value} [{100 * self.low:.1f}, {100 * self.high:.1f}] "
            f"({self.passed}/{self.n}, {100 * self.confidence:g} % {label})"
        )


@dataclass(frozen=True)
class SpecLimit:
    """An inclusive acceptance window on one measure: ``min <= value <= max`` (either bound optional).

    Values and bounds are in the measure's SI unit. A NaN value never passes.
    """

    name: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        """Reject NaN bounds and ``min > max``."""
        for label, b in (("min", self.min), ("max", self.max)):
            if b is not None and math.isnan(b):
                raise ValueError(f"spec {self.name!r}: {label} is NaN")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"spec {self.name!r}: min ({self.min}) exceeds max ({self.max})")

    def passes(self, values: np.ndarray) -> np.ndarray:
        """Boolean array, True where a value is within the limits (NaN → False)."""
        v = np.asarray(values, dtype=float)
        ok = ~np.isnan(v)
        if self.min is not None:
            ok &= v >= self.min
        if self.max is not None:
            ok &= v <= self.max
        return ok


@dataclass(frozen=True, eq=False)
class YieldSummary:
    """Result of :func:`yield_table`.

    ``overall``: a sample passes when its simulation succeeded and it meets every limit. ``per_spec``:
    yield of each spec alone over all samples (failed simulations count as failing). ``failures_per_spec``:
    successfully simulated samples violating that spec. ``failed_simulations``: samples whose simulation
    failed. ``pass_mask``: read-only boolean array, True for samples passing overall.
    """

    overall: YieldEstimate
    per_spec: dict[str, YieldEstimate]
    failures_per_spec: dict[str, int]
    failed_simulations: int
    pass_mask: np.ndarray


def yield_table(
    values: Mapping[str, np.ndarray],
    sim_ok: np.ndarray,
    limits: Sequence[SpecLimit],
    confidence: float = 0.95,
) -> YieldSummary:
    """Count passes against ``limits`` for n samples and return overall and per-spec yields.

    ``values`` maps measure names to arrays of shape ``(n,)``; ``sim_ok`` is a boolean array ``(n,)``,
    True where the simulation succeeded. Intervals are Wilson at ``confidence``.
    Raises ValueError if a limit names a measure missing from ``values``, a spec is listed twice, or
    array lengths differ.
    """
    ok = np.asarray(sim_ok)
    if ok.ndim != 1:
        raise ValueError(f"sim_ok must be one-dimensional, got shape {ok.shape}")
    if ok.dtype != bool:
        raise ValueError(f"sim_ok must be a boolean array, got dtype {ok.dtype}")
    n = ok.shape[0]
    arrays: dict[str, np.ndarray] = {}
    for name, arr in values.items():
        a = np.asarray(arr, dtype=float)
        if a.shape != (n,):
            raise ValueError(f"measure {name!r} has shape {a.shape}, but sim_ok has {n} samples")
        arrays[name] = a
    names = [lim.name for lim in limits]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise ValueError(f"specs listed more than once: {', '.join(dup)}")
    missing = [x for x in names if x not in arrays]
    if missing:
        raise ValueError(
            f"limits name measures missing from values: {', '.join(missing)} "
            f"(available: {', '.join(sorted(arrays)) or 'none'})"
        )

    pass_mask = ok.copy()
    per_spec: dict[str, YieldEstimate] = {}
    failures: dict[str, int] = {}
    for lim in limits:
        spec_ok = lim.passes(arrays[lim.name])
        pass_mask &= spec_ok
        per_spec[lim.name] = YieldEstimate.from_counts(int(np.count_nonzero(ok & spec_ok)), n, confidence)
        failures[lim.name] = int(np.count_nonzero(ok & ~spec_ok))
    pass_mask.setflags(write=False)
    return YieldSummary(
        overall=YieldEstimate.from_counts(int(np.count_nonzero(pass_mask)), n, confidence),
        per_spec=per_spec,
        failures_per_spec=failures,
        failed_simulations=int(n - np.count_nonzero(ok)),
        pass_mask=pass_mask,
    )


def interval_narrower_than(est: YieldEstimate, width: float) -> bool:
    """True when the estimate's confidence interval is strictly narrower than ``width`` (a fraction)."""
    return est.width < width
