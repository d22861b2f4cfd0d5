"""High-sigma reliability: limit states on batches, worst-case distances and failure-probability estimators.

A *limit state* maps standard-normal points ``u`` (shape (N, d)) to margins (shape (N, B)), one column per
spec bound; an outcome fails when any margin is negative or NaN. On it:

* :mod:`~optiyield.reliability.wcd` finds each bound's worst-case point (FORM design point) and its signed
  worst-case distance β, with finite-difference gradients batched into one evaluation per iteration;
* :mod:`~optiyield.reliability.montecarlo`, :mod:`~optiyield.reliability.importance` and
  :mod:`~optiyield.reliability.ot_methods` estimate the failure probability with a 95 % interval;
* :mod:`~optiyield.reliability.analytic` holds test limit states with known answers;
* :mod:`~optiyield.reliability.circuit` builds a limit state from a spec, simulated by the batched engine.

See docs/high-sigma.md.
"""

from optiyield.reliability.limit_state import FunctionLimitState, LimitState, failing, min_margin
from optiyield.reliability.result import FailureEstimate, sigma_level

__all__ = ["FailureEstimate", "FunctionLimitState", "LimitState", "failing", "min_margin", "sigma_level"]
