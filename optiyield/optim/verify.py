"""The ``verify`` run step: Monte Carlo with a fresh, larger sample at the current design.

``{verify: {samples: 2000}}`` (``{verify: true}`` for the defaults): the outcomes are drawn with a seed
other than the optimizer's (``run.seed + 7919`` unless ``seed`` is given), so the verified yield is not
biased by the optimization. The result carries the :class:`~optiyield.montecarlo.MonteCarloResult`.

``{verify: {samples: 2000, sigma: is}}`` adds a high-sigma estimate when the Monte Carlo sees no failure (or
always, with ``sigma_always: true``): the failure probability by a :mod:`optiyield.reliability` estimator
(``is``: worst-case points then importance sampling; ``subset``, ``ce``, ``nais``: OpenTURNS) within
``sigma_budget`` simulations, with its 95 % interval and sigma level −Φ⁻¹(p), in ``Result.reliability``.
The Monte Carlo's own failure probability, its Clopper–Pearson interval and sigma level are there too.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from optiyield.montecarlo import assemble
from optiyield.optim.corners import CornerEvaluator, verify_corners
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, Result
from optiyield.registry import StepMethod, StepOptions
from optiyield.safety import MAX_SAMPLES
from optiyield.stats.variation import OutcomeSet

#: Added to ``run.seed`` for the verification sample when no seed is given.
SEED_OFFSET = 7919


class VerifyOptions(StepOptions):
    """A verification Monte Carlo: ``samples`` fresh outcomes, drawn with ``seed`` (default run.seed + 7919)."""

    samples: int = Field(2000, ge=1, le=MAX_SAMPLES)
    seed: int | None = None
    sigma: Literal["is", "subset", "ce", "nais"] | None = None
    sigma_budget: int = Field(2000, ge=100, le=MAX_SAMPLES)
    sigma_always: bool = False


def verify(problem: Problem, x: np.ndarray, options: VerifyOptions) -> Result:
    """Monte Carlo of ``options.samples`` fresh outcomes at design ``x``."""
    spec, evaluator = problem.spec, problem.evaluator
    span = evaluator.meter.span()
    seed = options.seed if options.seed is not None else spec.run.seed + SEED_OFFSET
    outcomes = OutcomeSet.draw(spec.model, options.samples, spec.run.sampler, seed)
    if isinstance(evaluator, CornerEvaluator):  # across corners: an outcome passes only at every corner
        result, table = verify_corners(spec, evaluator, x, outcomes, seed)
        overall = result.summary.overall
        return Result(method="verify", x=np.asarray(x, dtype=float), design=evaluator.design(x),
                      objective=-overall.value, yield_estimate=overall, cost=span.cost, monte_carlo=result,
                      tables={"corner_verify": table.frame()},
                      status=f"verified yield {overall} at every one of {len(table.corners)} corners over "
                             f"{options.samples} fresh samples (seed {seed})")
    responses = evaluator.responses(x, outcomes)
    cost = span.cost
    result = assemble(spec, spec.nominal(evaluator.design(x)), responses.rows,
                      {k: v[0] for k, v in responses.values.items()}, responses.status[0], responses.reason[0],
                      wall_seconds=cost.wall_seconds, ngspice_seconds=cost.ngspice_seconds, runs=cost.runs, seed=seed,
                      sampler=spec.run.sampler)
    overall = result.summary.overall
    status = f"verified yield {overall} over {options.samples} fresh samples (seed {seed})"
    reliability = None
    if options.sigma is not None:
        reliability = {"kind": "verify", "monte_carlo": _mc_failure(overall.n - overall.passed, overall.n)}
        if options.sigma_always or overall.passed == overall.n:
            estimate = _high_sigma(problem, x, options, seed)
            reliability["failure"] = estimate
            status += (f"; {estimate['method']}: failure probability {estimate['probability']:.3g} "
                       f"[{estimate['low']:.3g}, {estimate['high']:.3g}], {estimate['sigma']:.2f} sigma "
                       f"({estimate['simulations']} simulations)")
        cost = span.cost
    return Result(method="verify", x=np.asarray(x, dtype=float), design=evaluator.design(x), objective=-overall.value,
                  yield_estimate=overall, cost=cost, monte_carlo=result, status=status, reliability=reliability)


def _mc_failure(failures: int, n: int) -> dict[str, Any]:
    """The Monte Carlo's failure probability with its exact interval and sigma levels."""
    from optiyield.reliability.montecarlo import clopper_pearson
    from optiyield.reliability.result import sigma_level

    low, high = clopper_pearson(failures, n)
    return {"method": "mc", "failures": failures, "samples": n, "probability": failures / n, "low": low,
            "high": high, "sigma": sigma_level(failures / n), "sigma_low": sigma_level(high)}


def _high_sigma(problem: Problem, x: np.ndarray, options: VerifyOptions, seed: int) -> dict[str, Any]:
    """The high-sigma estimate at design ``x`` (plain JSON, :meth:`FailureEstimate.to_dict` and its method)."""
    from optiyield.reliability.circuit import CircuitLimitState
    from optiyield.reliability.estimate import estimate_failure

    state = CircuitLimitState(problem.spec, problem.evaluator, problem.evaluator.design(x))
    estimate = estimate_failure(state, str(options.sigma), options.sigma_budget, seed=seed)
    out = estimate.to_dict()
    low_sigma, high_sigma = estimate.sigma_interval
    out.update({"sigma_low": low_sigma, "sigma_high": high_sigma, "labels": list(state.labels)})
    return out


def _run(problem: Problem, x0: np.ndarray, options: VerifyOptions, callback: IterationCallback | None) -> Result:
    return verify(problem, x0, options)


METHOD = StepMethod(kind="verify", name="mc", options=VerifyOptions, run=_run, nested=True,
                    label=lambda o: f"verify ({o.samples} new" + (f", {o.sigma} high-sigma)" if o.sigma else ")"))
