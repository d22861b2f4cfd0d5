"""One entry point for every failure-probability estimator, by name, within a simulation budget.

``mc`` plain Monte Carlo (Clopper–Pearson interval), ``is`` worst-case points then importance sampling around
all of them (:func:`~optiyield.reliability.importance.form_importance_sampling`), and the OpenTURNS methods
that need no design point: ``subset`` (subset simulation), ``ce`` (cross-entropy importance sampling in the
standard space) and ``nais`` (non-parametric adaptive importance sampling), which need the ``reliability``
extra. For the OpenTURNS methods the budget is split into about five levels/steps (``budget // 5`` points
each, so a failure probability down to ~1e-5 is reached with p₀ = 0.1) and capped at twice the budget.
"""

from __future__ import annotations

from typing import Any, Literal

from optiyield.reliability.importance import form_importance_sampling
from optiyield.reliability.limit_state import LimitState
from optiyield.reliability.montecarlo import plain_monte_carlo
from optiyield.reliability.result import FailureEstimate

__all__ = ["METHODS", "Method", "estimate_failure"]

#: Estimator names, as ``optiyield yield --method`` and ``{verify: {sigma: …}}`` take them.
METHODS = ("mc", "is", "subset", "ce", "nais")
Method = Literal["mc", "is", "subset", "ce", "nais"]


def estimate_failure(state: LimitState, method: str, budget: int, *, seed: int = 0,
                     **options: Any) -> FailureEstimate:
    """The failure probability of ``state`` by ``method`` within about ``budget`` evaluations.

    ``options`` go to the method (``wcd=`` a search result to reuse and ``explore=`` for ``is``; ``batch`` for
    ``mc``; ``level`` for the OpenTURNS methods). Raises ValueError for an unknown method or a budget below 100
    (ImportError, saying how to install it, when an OpenTURNS method is asked without OpenTURNS)."""
    if method not in METHODS:
        raise ValueError(f"unknown estimator {method!r}; choose one of {', '.join(METHODS)}")
    if budget < 100:
        raise ValueError(f"a budget of {budget} evaluations is too small: give at least 100")
    if method == "mc":
        return plain_monte_carlo(state, budget, seed=seed, batch=options.pop("batch", budget), **options)
    if method == "is":
        return form_importance_sampling(state, budget, seed=seed, **options)
    from optiyield.reliability.ot_methods import openturns_estimate

    return openturns_estimate(state, method, max(budget // 5, 50), seed=seed,  # type: ignore[arg-type]
                              max_simulations=options.pop("max_simulations", 2 * budget), **options)
