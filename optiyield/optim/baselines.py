"""Derivative-free baselines on the same yield objective, so experiments can show what gradients buy.

Both use the optimizer's fixed outcome set (common random numbers) and count every simulation:

* **random search**: scrambled-Sobol design points in the bounds, evaluated in batches of points (each
  point × N outcomes in one engine call); the best yield wins (ties: lowest one-sided ℓ1 sum).
* **Nelder–Mead** (scipy) in range-scaled variables on −yield plus a small tie-breaking term (the mean
  positive error), since the yield alone is piecewise constant.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field
from scipy.optimize import minimize
from scipy.stats import qmc

from optiyield.objective import passes
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, IterationRecord, Result
from optiyield.registry import StepMethod, StepOptions
from optiyield.sim.meter import Span
from optiyield.stats.variation import OutcomeSet
from optiyield.yield_ import YieldEstimate


def _score(evaluator: Evaluator, errors: np.ndarray) -> tuple[int, float]:
    """(passed outcomes, mean positive error) of errors (N, J)."""
    return int(passes(errors).sum()), float(np.maximum(errors, 0).mean())


def _record(method: str, evaluator: Evaluator, outcomes: OutcomeSet, iteration: int, best: tuple[int, float],
            x: np.ndarray, confidence: float) -> IterationRecord:
    """The record of an iteration: the best design so far and its yield."""
    est = YieldEstimate.from_counts(best[0], outcomes.n, confidence)
    return IterationRecord(phase=method, iteration=iteration, simulations=evaluator.meter.simulations,
                           x=evaluator.design(x), objective=-est.value, yield_estimate=est)


def _result(method: str, evaluator: Evaluator, outcomes: OutcomeSet, x: np.ndarray, best: tuple[int, float],
            history: list[IterationRecord], iterations: int, span: Span, status: str, confidence: float) -> Result:
    est = YieldEstimate.from_counts(best[0], outcomes.n, confidence)
    return Result(method=method, x=x, design=evaluator.design(x), objective=-est.value, yield_estimate=est,
                  history=history, iterations=iterations, cost=span.cost, status=status)


def random_search(evaluator: Evaluator, outcomes: OutcomeSet, *, budget: int, x0: np.ndarray | None = None,
                  points_per_batch: int = 8, seed: int = 0, confidence: float = 0.95,
                  callback: IterationCallback | None = None) -> Result:
    """Best of Sobol-random design points (plus ``x0``) within ``budget`` simulations."""
    span = evaluator.meter.span()
    x = evaluator.clip(evaluator.x0 if x0 is None else np.asarray(x0, dtype=float))
    sampler = qmc.Sobol(evaluator.n, scramble=True, seed=seed)
    total_points = max(1, budget // outcomes.n)
    candidates = [x]
    if total_points > 1:
        u = sampler.random(2 ** int(np.ceil(np.log2(total_points - 1))))[: total_points - 1]
        candidates += list(evaluator.lower + u * (evaluator.upper - evaluator.lower))
    best, best_x, history = (-1, np.inf), x, []
    for batch, first in enumerate(range(0, len(candidates), points_per_batch)):
        points = np.array(candidates[first:first + points_per_batch])
        errors = evaluator.responses(points, outcomes).errors(evaluator.errors)
        for point, e in zip(points, errors, strict=True):
            score = _score(evaluator, e)
            if (score[0], -score[1]) > (best[0], -best[1]):
                best, best_x = score, point
        entry = _record("random search", evaluator, outcomes, batch + 1, best, best_x, confidence)
        history.append(entry)
        if callback:
            callback(entry)
    return _result("random search", evaluator, outcomes, best_x, best, history, len(history), span,
                   f"{len(candidates)} design points", confidence)


def nelder_mead(evaluator: Evaluator, outcomes: OutcomeSet, *, budget: int, x0: np.ndarray | None = None,
                confidence: float = 0.95, callback: IterationCallback | None = None) -> Result:
    """Nelder–Mead on −yield (+ tie-breaker) within ``budget`` simulations."""
    cost = evaluator.meter.span()
    span = np.where(evaluator.upper > evaluator.lower, evaluator.upper - evaluator.lower, 1.0)
    x = evaluator.clip(evaluator.x0 if x0 is None else np.asarray(x0, dtype=float))
    state = {"best": (-1, np.inf), "x": x, "iteration": 0}
    history: list[IterationRecord] = []

    def objective(u: np.ndarray) -> float:
        point = evaluator.clip(evaluator.lower + u * span)
        score = _score(evaluator, evaluator.responses(point, outcomes).errors(evaluator.errors)[0])
        if (score[0], -score[1]) > (state["best"][0], -state["best"][1]):
            state["best"], state["x"] = score, point
        state["iteration"] += 1
        entry = _record("nelder-mead", evaluator, outcomes, state["iteration"], state["best"], state["x"],
                        confidence)
        history.append(entry)
        if callback:
            callback(entry)
        return -score[0] / outcomes.n + 1e-3 * score[1]

    u0 = (x - evaluator.lower) / span
    result = minimize(objective, u0, method="Nelder-Mead",
                      options={"maxfev": max(1, budget // outcomes.n), "initial_simplex": _simplex(u0)})
    return _result("nelder-mead", evaluator, outcomes, state["x"], state["best"], history, state["iteration"],
                   cost, str(result.message), confidence)


def _simplex(u0: np.ndarray, size: float = 0.1) -> np.ndarray:
    """An initial simplex of ``size`` (fraction of each range) around u0, kept inside [0, 1]."""
    vertices = [u0]
    for k in range(len(u0)):
        v = u0.copy()
        v[k] = v[k] + size if v[k] + size <= 1 else v[k] - size
        vertices.append(v)
    return np.array(vertices)


class BaselineOptions(StepOptions):
    """``{baseline: random | nelder-mead, budget: N}``: at most ``budget`` simulations."""

    budget: int = Field(2000, ge=1)


def _random(problem: Problem, x0: np.ndarray, options: BaselineOptions, callback: IterationCallback | None) -> Result:
    return random_search(problem.evaluator, problem.outcomes, budget=options.budget, x0=x0,
                         confidence=problem.confidence, callback=callback)


def _nelder_mead(problem: Problem, x0: np.ndarray, options: BaselineOptions,
                 callback: IterationCallback | None) -> Result:
    return nelder_mead(problem.evaluator, problem.outcomes, budget=options.budget, x0=x0,
                       confidence=problem.confidence, callback=callback)


RANDOM = StepMethod(kind="baseline", name="random", options=BaselineOptions, run=_random)
NELDER_MEAD = StepMethod(kind="baseline", name="nelder-mead", options=BaselineOptions, run=_nelder_mead)
