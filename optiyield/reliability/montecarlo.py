"""Plain Monte Carlo failure probability with the exact (Clopper–Pearson) binomial interval."""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

from optiyield.reliability.limit_state import LimitState, failing
from optiyield.reliability.result import FailureEstimate

__all__ = ["clopper_pearson", "plain_monte_carlo"]


def clopper_pearson(failures: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval for a probability from ``failures`` in ``n`` trials."""
    if n < 1 or not 0 <= failures <= n:
        raise ValueError(f"need 0 <= failures <= n and n >= 1, got failures={failures}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    low = 0.0 if failures == 0 else float(beta.ppf(alpha / 2, failures, n - failures + 1))
    high = 1.0 if failures == n else float(beta.ppf(1 - alpha / 2, failures + 1, n - failures))
    return low, high


def plain_monte_carlo(state: LimitState, samples: int, *, seed: int = 0, batch: int = 100_000,
                      confidence: float = 0.95) -> FailureEstimate:
    """Failure probability by plain Monte Carlo: ``samples`` standard-normal points in batches of ``batch``."""
    if samples < 1 or batch < 1:
        raise ValueError(f"samples and batch must be positive, got {samples}, {batch}")
    rng = np.random.default_rng(seed)
    start = state.evaluations
    failures, done = 0, 0
    while done < samples:
        size = min(batch, samples - done)
        failures += int(failing(state.margins(rng.standard_normal((size, state.dimension)))).sum())
        done += size
    low, high = clopper_pearson(failures, samples, confidence)
    return FailureEstimate("mc", failures / samples, low, high, state.evaluations - start, confidence,
                           {"failures": failures})
