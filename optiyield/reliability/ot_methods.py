"""Failure probabilities by OpenTURNS methods that need no design point: subset sampling, cross-entropy
importance sampling in the standard space, and non-parametric adaptive importance sampling (NAIS).

The limit state is handed to OpenTURNS as a ``PythonFunction`` with ``func_sample``: OpenTURNS asks for
``block_size`` points at a time and each request is ONE batched call of the limit state. The composite
limit state is the smallest margin over the bounds (NaN, a failed simulation, counts as a failure, see
:func:`~optiyield.reliability.limit_state.min_margin`); the event is g(u) < 0 with u ~ N(0, I).

``samples`` is the number of points per level (subset sampling) or per adaptation step (cross-entropy,
NAIS), so the total cost grows with the number of levels: about 1 + (1 − p₀)·(levels − 1) times
``samples`` for subset sampling, ``steps + 1`` times for the importance-sampling methods.
OpenTURNS is an optional dependency: ``pip install 'optiyield[reliability]'``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from scipy.special import ndtri

from optiyield.reliability.limit_state import LimitState, min_margin
from optiyield.reliability.result import FailureEstimate

__all__ = ["OT_METHODS", "openturns_estimate", "require_openturns"]

#: Methods of :func:`openturns_estimate` and the OpenTURNS class behind each.
OT_METHODS = {"subset": "SubsetSampling", "ce": "StandardSpaceCrossEntropyImportanceSampling", "nais": "NAIS"}


class _BudgetSpent(RuntimeError):
    """Raised inside the limit-state callback to stop an OpenTURNS algorithm at its budget."""


def require_openturns() -> Any:
    """Import and return :mod:`openturns`, or raise an ImportError that says how to install it."""
    try:
        import openturns
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("this reliability method needs OpenTURNS, which is an optional dependency: "
                          "install it with `pip install 'optiyield[reliability]'` (openturns 1.27)") from exc
    return openturns


def openturns_estimate(state: LimitState, method: Literal["subset", "ce", "nais"], samples: int = 1000, *,
                       level: float = 0.1, block_size: int = 250, seed: int = 0, max_simulations: int | None = None,
                       confidence: float = 0.95) -> FailureEstimate:
    """Failure probability of ``state`` by an OpenTURNS method (``subset``, ``ce`` or ``nais``).

    ``samples`` points per level/step, requested in blocks of ``block_size`` (one limit-state call each);
    ``level`` is the conditional probability p₀ (subset sampling) or the quantile level (CE, NAIS).
    The interval is the normal interval from OpenTURNS's standard deviation (for subset sampling it
    neglects the correlation of the Markov chains, so it is optimistic). ``max_simulations`` (default
    20·``samples``) caps the cost: cross-entropy IS otherwise keeps adapting while no sample nears the
    failure region (measured: 4.25 million evaluations on a curved 6-sigma case). A method that gives up
    or hits the cap returns a NaN estimate with the reason in ``details["error"]``.
    """
    if method not in OT_METHODS:
        raise ValueError(f"unknown OpenTURNS method {method!r}; choose one of {', '.join(OT_METHODS)}")
    if samples < 1 or block_size < 1:
        raise ValueError(f"samples and block_size must be positive, got {samples}, {block_size}")
    if not 0.0 < level < 0.5:
        raise ValueError(f"level must lie in (0, 0.5), got {level}")
    ot = require_openturns()
    d = state.dimension
    start = state.evaluations

    cap = 20 * samples if max_simulations is None else max_simulations

    def g(x: Any) -> np.ndarray:
        if state.evaluations - start >= cap:
            raise _BudgetSpent(f"budget of {cap} simulations spent")
        return min_margin(state.margins(np.asarray(x, dtype=float)))[:, None]

    function = ot.PythonFunction(d, 1, func_sample=g)
    event = ot.ThresholdEvent(ot.CompositeRandomVector(function, ot.RandomVector(ot.Normal(d))), ot.Less(), 0.0)
    block = min(block_size, samples)
    outer = math.ceil(samples / block)
    if method == "subset":
        algo = ot.SubsetSampling(event)
        algo.setConditionalProbability(level)
    elif method == "ce":
        algo = ot.StandardSpaceCrossEntropyImportanceSampling(event, level)
    else:
        algo = ot.NAIS(event, level)
    algo.setBlockSize(block)
    algo.setMaximumOuterSampling(outer)
    ot.RandomGenerator.SetSeed(int(seed))
    try:
        algo.run()
    except (RuntimeError, TypeError, ValueError) as exc:
        # OpenTURNS gives up, e.g. CE-IS "sumPdfCritic is equal to zero" or a degenerate auxiliary density
        # when no sample nears the failure region: reported as a failed estimate (NaN), never raised
        return FailureEstimate(method, float("nan"), float("nan"), float("nan"), state.evaluations - start,
                               confidence, {"error": str(exc).strip().splitlines()[0]})
    result = algo.getResult()
    p = float(result.getProbabilityEstimate())
    half = float(ndtri(0.5 + confidence / 2)) * float(result.getStandardDeviation()) if p > 0 else 0.0
    details: dict[str, Any] = {"cv": float(result.getCoefficientOfVariation()) if p > 0 else float("inf"),
                               "samples_per_level": outer * block, "library": f"openturns {ot.__version__}"}
    if method == "subset":
        details["levels"] = int(algo.getStepsNumber())
    return FailureEstimate(method, p, max(p - half, 0.0), p + half, state.evaluations - start, confidence,
                           details)
