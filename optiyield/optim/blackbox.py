"""Library black-box optimizers on the yield of the fixed outcome set: CMA-ES (``cma``), Optuna's TPE and its
Gaussian-process sampler.

These are the stronger baselines of the yield-optimization benchmark (benchmarks/yield_opt.py). Each works
in design variables scaled to [0, 1] and minimises the same score as Nelder–Mead (optim/baselines.py):
−(passing outcomes)/N plus 10⁻³ × the mean positive spec error, which breaks the ties of the piecewise
constant pass count. Every candidate is simulated over the problem's outcome set (common random numbers),
and a whole population (CMA-ES) or batch of trials (Optuna's ask/tell) is ONE engine call of M·N rows.
The start design is the first candidate, so no method returns a design worse on its outcomes than its
start. Needs the ``opt`` extra (``pip install -e '.[opt]'``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import Field

from optiyield.objective import passes
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, IterationRecord, Result
from optiyield.registry import StepMethod, StepOptions
from optiyield.stats.variation import OutcomeSet
from optiyield.yield_ import YieldEstimate

#: Weight of the mean positive error in the score (a tie-breaker between equal pass counts).
TIE_BREAK = 1e-3


class MissingExtra(RuntimeError):
    """A library of the ``opt`` extra is not installed; the message says how to install it."""


def require(module: str) -> Any:
    """Import an optional library of the ``opt`` extra, or raise :class:`MissingExtra` with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"this step needs the `{module}` package: pip install -e '.[opt]' "
                             f"(or pip install {module})") from None


class Scorer:
    """Scores batches of unit-cube points over the outcome set and keeps the best design and the history.

    ``__call__(u)`` with u of shape (M, n) in [0, 1] simulates the M designs × N outcomes in one engine call
    and returns their scores (lower is better); ``best_x`` and ``best`` are the best design seen and its
    (passed, mean positive error)."""

    def __init__(self, method: str, evaluator: Evaluator, outcomes: OutcomeSet, confidence: float,
                 callback: IterationCallback | None) -> None:
        self.method, self.evaluator, self.outcomes = method, evaluator, outcomes
        self.confidence, self.callback = confidence, callback
        self.span = np.where(evaluator.upper > evaluator.lower, evaluator.upper - evaluator.lower, 1.0)
        self.best: tuple[int, float] = (-1, np.inf)
        self.best_x: np.ndarray | None = None
        self.history: list[IterationRecord] = []
        self.batches = 0

    def to_design(self, u: np.ndarray) -> np.ndarray:
        """Unit-cube points → design vectors (SI), clipped to the bounds."""
        return self.evaluator.clip(self.evaluator.lower + np.clip(u, 0, 1) * self.span)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Design vector → unit cube."""
        return (np.asarray(x, dtype=float) - self.evaluator.lower) / self.span

    def __call__(self, u: np.ndarray) -> np.ndarray:
        points = self.to_design(np.atleast_2d(u))
        errors = self.evaluator.responses(points, self.outcomes).errors(self.evaluator.errors)
        scores = []
        for point, e in zip(points, errors, strict=True):
            passed, mean_error = int(passes(e).sum()), float(np.maximum(e, 0).mean())
            if (passed, -mean_error) > (self.best[0], -self.best[1]):
                self.best, self.best_x = (passed, mean_error), point
            scores.append(-passed / self.outcomes.n + TIE_BREAK * mean_error)
        self.batches += 1
        est = YieldEstimate.from_counts(self.best[0], self.outcomes.n, self.confidence)
        entry = IterationRecord(phase=self.method, iteration=self.batches, simulations=self.evaluator.meter.simulations,
                                x=self.evaluator.design(self.best_x), objective=-est.value, yield_estimate=est,
                                data={"candidates": len(points)})
        self.history.append(entry)
        if self.callback:
            self.callback(entry)
        return np.array(scores)

    def result(self, span: Any, status: str) -> Result:
        """The best design seen as the step's result."""
        assert self.best_x is not None
        est = YieldEstimate.from_counts(self.best[0], self.outcomes.n, self.confidence)
        return Result(method=self.method, x=self.best_x, design=self.evaluator.design(self.best_x),
                      objective=-est.value, yield_estimate=est, history=self.history, iterations=self.batches,
                      cost=span.cost, status=status)


def cma_es(evaluator: Evaluator, outcomes: OutcomeSet, x0: np.ndarray | None = None, *, budget: int,
           sigma: float = 0.2, popsize: int | None = None, seed: int = 0, confidence: float = 0.95,
           callback: IterationCallback | None = None) -> Result:
    """CMA-ES (``cma.CMAEvolutionStrategy``) from ``x0`` with step size ``sigma`` (fraction of each range),
    bounded to the design box, within ``budget`` simulations (populations of ``popsize`` designs, default
    cma's 4 + 3 ln n; a population is one engine call)."""
    cma = require("cma")
    span = evaluator.meter.span()
    score = Scorer("cma-es", evaluator, outcomes, confidence, callback)
    x = evaluator.clip(evaluator.x0 if x0 is None else np.asarray(x0, dtype=float))
    u0 = score.to_unit(x)
    score(u0[None])  # the start is a candidate: the result is never worse on these outcomes
    points = max(0, budget // outcomes.n - 1)
    options: dict[str, Any] = {"bounds": [0, 1], "seed": seed + 1, "verbose": -9, "maxfevals": points}
    if popsize:
        options["popsize"] = popsize
    strategy = cma.CMAEvolutionStrategy(u0, sigma, options)
    used = 0
    while not strategy.stop() and used + strategy.popsize <= points:
        candidates = strategy.ask()
        values = score(np.array(candidates))
        strategy.tell(candidates, values.tolist())
        used += len(candidates)
    stop = strategy.stop() or {"budget": points}
    return score.result(span, "; ".join(f"{k}: {v}" for k, v in stop.items()))


def _optuna(sampler_name: str, evaluator: Evaluator, outcomes: OutcomeSet, x0: np.ndarray | None, *, budget: int,
            batch: int, seed: int, confidence: float, callback: IterationCallback | None,
            make: Callable[[Any, int], Any]) -> Result:
    optuna = require("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    span = evaluator.meter.span()
    score = Scorer(sampler_name, evaluator, outcomes, confidence, callback)
    x = evaluator.clip(evaluator.x0 if x0 is None else np.asarray(x0, dtype=float))
    names = [f"u{k}" for k in range(evaluator.n)]
    space = {name: optuna.distributions.FloatDistribution(0.0, 1.0) for name in names}
    study = optuna.create_study(sampler=make(optuna, seed))
    study.enqueue_trial(dict(zip(names, score.to_unit(x).clip(0, 1).tolist(), strict=True)))
    points = max(1, budget // outcomes.n)
    used = 0
    while used < points:
        size = min(batch if used else 1, points - used)  # the start alone first
        trials = [study.ask(space) for _ in range(size)]
        u = np.array([[t.params[name] for name in names] for t in trials])
        for trial, value in zip(trials, score(u), strict=True):
            study.tell(trial, float(value))
        used += size
    return score.result(span, f"{used} designs")


def tpe(evaluator: Evaluator, outcomes: OutcomeSet, x0: np.ndarray | None = None, *, budget: int, batch: int = 8,
        seed: int = 0, confidence: float = 0.95, callback: IterationCallback | None = None) -> Result:
    """Optuna's TPE sampler (multivariate, constant liar for batches of ``batch`` trials) within ``budget``."""
    return _optuna("optuna-tpe", evaluator, outcomes, x0, budget=budget, batch=batch, seed=seed, confidence=confidence,
                   callback=callback, make=lambda optuna, s: optuna.samplers.TPESampler(
                       seed=s, multivariate=True, constant_liar=True, n_startup_trials=10))


def gp(evaluator: Evaluator, outcomes: OutcomeSet, x0: np.ndarray | None = None, *, budget: int, batch: int = 4,
       seed: int = 0, confidence: float = 0.95, callback: IterationCallback | None = None) -> Result:
    """Optuna's Gaussian-process sampler (``GPSampler``, log-EI, needs torch) within ``budget``."""
    require("torch")
    return _optuna("optuna-gp", evaluator, outcomes, x0, budget=budget, batch=batch, seed=seed, confidence=confidence,
                   callback=callback, make=lambda optuna, s: optuna.samplers.GPSampler(seed=s, n_startup_trials=10))


class CmaOptions(StepOptions):
    """``{baseline: cma-es, budget: N, sigma: 0.2, popsize: null, seed: 0}``: at most ``budget`` simulations;
    ``sigma`` the initial step as a fraction of each range; ``popsize`` designs per population (default
    cma's 4 + 3 ln n)."""

    budget: int = Field(2000, ge=1)
    sigma: float = Field(0.2, gt=0, le=1)
    popsize: int | None = Field(None, ge=2)
    seed: int = 0


class OptunaOptions(StepOptions):
    """``{baseline: optuna-tpe | optuna-gp, budget: N, batch: 8, seed: 0}``: at most ``budget``
    simulations, ``batch`` trials asked at once (one engine call)."""

    budget: int = Field(2000, ge=1)
    batch: int = Field(8, ge=1)
    seed: int = 0


def _cma(problem: Problem, x0: np.ndarray, options: CmaOptions, callback: IterationCallback | None) -> Result:
    return cma_es(problem.evaluator, problem.outcomes, x0, budget=options.budget, sigma=options.sigma,
                  popsize=options.popsize, seed=options.seed, confidence=problem.confidence, callback=callback)


def _tpe(problem: Problem, x0: np.ndarray, options: OptunaOptions, callback: IterationCallback | None) -> Result:
    return tpe(problem.evaluator, problem.outcomes, x0, budget=options.budget, batch=options.batch, seed=options.seed,
               confidence=problem.confidence, callback=callback)


def _gp(problem: Problem, x0: np.ndarray, options: OptunaOptions, callback: IterationCallback | None) -> Result:
    return gp(problem.evaluator, problem.outcomes, x0, budget=options.budget, batch=options.batch, seed=options.seed,
              confidence=problem.confidence, callback=callback)


CMA = StepMethod(kind="baseline", name="cma-es", options=CmaOptions, run=_cma)
TPE = StepMethod(kind="baseline", name="optuna-tpe", options=OptunaOptions, run=_tpe)
GP = StepMethod(kind="baseline", name="optuna-gp", options=OptunaOptions, run=_gp)
