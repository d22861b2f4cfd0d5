"""The ``verify`` run step: Monte Carlo with a fresh, larger sample at the current design.

``{verify: {samples: 2000}}`` (``{verify: true}`` for the defaults): the outcomes are drawn with a seed
other than the optimizer's (``run.seed + 7919`` unless ``seed`` is given), so the verified yield is not
biased by the optimization. The result carries the :class:`~optiyield.montecarlo.MonteCarloResult`.
"""

from __future__ import annotations

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
    return Result(method="verify", x=np.asarray(x, dtype=float), design=evaluator.design(x), objective=-overall.value,
                  yield_estimate=overall, cost=cost, monte_carlo=result,
                  status=f"verified yield {overall} over {options.samples} fresh samples (seed {seed})")


def _run(problem: Problem, x0: np.ndarray, options: VerifyOptions, callback: IterationCallback | None) -> Result:
    return verify(problem, x0, options)


METHOD = StepMethod(kind="verify", name="mc", options=VerifyOptions, run=_run, nested=True,
                    label=lambda o: f"verify ({o.samples} new)")
