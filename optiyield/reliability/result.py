"""One result type for every failure-probability estimator: estimate, 95 % interval, sigma level, cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtri

__all__ = ["FailureEstimate", "sigma_level"]


def sigma_level(p: float) -> float:
    """Sigma level −Φ⁻¹(p) of a failure probability p (∞ for p = 0, −∞ for p = 1)."""
    p = float(p)
    if not 0.0 <= p <= 1.0 or np.isnan(p):
        raise ValueError(f"a probability must lie in [0, 1], got {p!r}")
    if p == 0.0:
        return float("inf")
    return float(-ndtri(p))


@dataclass(frozen=True)
class FailureEstimate:
    """A failure-probability estimate.

    ``probability`` with its interval ``[low, high]`` at ``confidence``; ``simulations`` limit-state
    evaluations spent (all of them, including design-point searches); ``method`` the estimator's name;
    ``details`` method-specific figures (e.g. design points, coefficient of variation, levels).
    """

    method: str
    probability: float
    low: float
    high: float
    simulations: int
    confidence: float = 0.95
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def sigma(self) -> float:
        """Sigma level of the estimate, −Φ⁻¹(probability) (NaN when the method failed)."""
        if np.isnan(self.probability):
            return float("nan")
        return sigma_level(min(max(self.probability, 0.0), 1.0))

    @property
    def sigma_interval(self) -> tuple[float, float]:
        """Sigma levels of the interval ends (low sigma from the high probability)."""
        if np.isnan(self.low) or np.isnan(self.high):
            return float("nan"), float("nan")
        return sigma_level(min(max(self.high, 0.0), 1.0)), sigma_level(min(max(self.low, 0.0), 1.0))

    def covers(self, p: float) -> bool:
        """True when ``p`` lies inside the interval (False when the method failed)."""
        return bool(self.low <= p <= self.high)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (details included), with the sigma level."""
        out = asdict(self)
        out["sigma"] = self.sigma
        return out
