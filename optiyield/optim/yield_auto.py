"""``{yield: auto}``: one-sided ℓ1 on a growing outcome set, then a derivative-free polish of the pass count.

Two measured weaknesses of plain one-sided ℓ1 (docs/optimization.md) shape it:

* **Cost before the first step.** Its PAST start costs (n + 1)·N simulations on the whole outcome set, so at
  small budgets it has not moved yet. Here ℓ1 first runs on the first ``start_samples`` outcomes, then on
  larger prefixes up to all N (nested prefixes of the run's outcome set, so common random numbers hold
  throughout); each stage starts from the previous stage's design. Coarse steps are taken where they are
  cheap, and the full set only refines. ``gradient`` picks the plan (:func:`stage_plan`): ``igat`` (IGAT on
  every prefix, ``growth``× larger each time) or ``fast`` (IGAT with FAST starts on the first prefix, then FAST
  Jacobians on the whole set); ``auto`` (the default) takes ``fast`` from :data:`FAST_FROM` design variables
  on, where PAST Jacobians are too costly (:func:`stage_gradient`).
* **Stalls at ℓ1's kinks.** The ℓ1 sum is a surrogate of the failure count: its LP sees no descent at a
  kink where the count could still drop. A derivative-free search on the count itself (plus a 10⁻³
  tie-breaker, as the baselines) then takes over from the ℓ1 design: Nelder–Mead for up to 6 design
  variables, CMA-ES with a small step (5 % of each range) above that (cma, the ``opt`` extra; Nelder–Mead
  when it is absent), for ``polish`` designs.

The step returns the best design it simulated on the full outcome set, and its start is one of them, so
it never returns a design that is worse on its own outcomes than its start.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
from pydantic import Field

from optiyield.optim.baselines import nelder_mead
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, IterationRecord, Result
from optiyield.optim.yield_l1 import yield_l1
from optiyield.registry import StepMethod, StepOptions
from optiyield.safety import MAX_SAMPLES
from optiyield.stats.sampling import UniformSource
from optiyield.stats.variation import OutcomeSet
from optiyield.yield_ import YieldEstimate


def head(outcomes: OutcomeSet, count: int) -> OutcomeSet:
    """The first ``count`` outcomes of a set (the same deviates, so the same samples at any design)."""
    if count >= outcomes.n:
        return outcomes
    return OutcomeSet(outcomes.model, outcomes.z[:count], UniformSource(outcomes.model.dims, outcomes.method,
                                                                         outcomes.seed))


def stage_sizes(total: int, start: int, growth: float) -> list[int]:
    """Outcome counts of the stages: start, start·growth, … (each below ``total``), then ``total``."""
    sizes, size = [], max(1, start)
    while size < total:
        sizes.append(int(size))
        size = int(np.ceil(size * growth))
    return [*sizes, total]


#: ``gradient: auto`` takes the FAST plan from this many design variables on, IGAT below (see :func:`stage_gradient`).
FAST_FROM = 8


def stage_gradient(gradient: str, n: int) -> str:
    """The Jacobians of the ℓ1 stages: ``igat`` or ``fast`` as given; ``auto``: ``fast`` for n ≥
    :data:`FAST_FROM` design variables, else ``igat``.

    Why by n: IGAT's PAST start and refreshes cost (n + 1)·N and n·N simulations, FAST's Jacobian n·m on m
    anchor outcomes (m = 2(d + 1), d deviate dimensions). With few variables the PAST Jacobian is cheap and
    exact and IGAT's Broyden updates are soon accurate: on the CSVA (n = 4) the IGAT plan beat ℓ1/FAST at every
    budget. With many variables each PAST Jacobian is costly: on OPAMP2 (n = 13; 3 seeds, 200 outcomes, 1,000
    verification samples) the IGAT plan reached 80.9 / 87.0 / 91.2 % verified at 1k / 3k / 10k simulations, the
    FAST plan 86.5 / 91.6 / 97.0 %, ℓ1/FAST 70.4 / 95.0 / 96.6 % (docs/optimization.md, "When to pick
    what"). Only n = 4 and 13 were measured; the threshold of 8 keeps IGAT on every problem of ≤ 7 variables
    (TSVA, LNA, the transient doubler and PA, whose FAST Jacobians are 27–78 % off), so their behaviour is
    unchanged; on the doubler (n = 6) the FAST plan was measured 9 / 13 points below the IGAT plan at 1k / 3k
    (docs/benchmarks.md, "Doubler"). Where between 8 and 13 the FAST plan starts to pay is not measured.
    """
    if gradient == "auto":
        return "fast" if n >= FAST_FROM else "igat"
    return gradient


def stage_plan(total: int, start: int, growth: float, gradient: str) -> list[tuple[int, str]]:
    """(outcomes, Jacobian provider) of each ℓ1 stage for the chosen ``igat`` or ``fast`` plan.

    ``igat``: every prefix of :func:`stage_sizes`, IGAT (PAST start and refreshes). ``fast``: the first prefix with
    IGAT whose start and refreshes are FAST Jacobians (``igat-fast``: its steps cost one simulation per outcome),
    then the whole set with a FAST Jacobian at every accepted point. No middle prefixes: a FAST Jacobian costs
    n·m whatever the stage's size, so they saved little and delayed the whole set. Measured on OPAMP2 (3 seeds,
    verified at 1k / 3k / 10k; with the trust region's LP still in SI units, before it was range-scaled, which
    moved OPAMP2 medians by up to 4.4 points, benchmarks/results/yield_opt_opamp2*.md): FAST in every prefix
    75.7 / 87.6 / 89.6 % (the prefixes never finished within 10k), capped at 3 iterations 75.7 / 91.2 / 97.2 %;
    IGAT prefixes capped at 3 then FAST 83.1 / 92.3 / 95.5 %; igat-fast in every stage 88.7 / 93.5 / 95.0 %; this
    plan 88.7 / 93.5 / 95.7 % (ℓ1/FAST: 69.5 / 93.5 / 96.6 %); the same with the first prefix capped at 10
    iterations 88.7 / 91.8 / 96.3 %. None was within 0.5 points of ℓ1/FAST at every budget.
    """
    sizes = stage_sizes(total, start, growth)
    if gradient == "igat":
        return [(size, "igat") for size in sizes]
    return [(sizes[0], "igat-fast"), (total, "fast")] if len(sizes) > 1 else [(total, "fast")]


def yield_auto(evaluator: Evaluator, outcomes: OutcomeSet, x0: np.ndarray | None = None, *, start_samples: int = 50,
               growth: float = 2.0, max_iter: int = 20, trust_region: float = 0.1, polish: int | None = None,
               gradient: str = "auto", confidence: float = 0.95, callback: IterationCallback | None = None) -> Result:
    """Maximise the yield over ``outcomes``: ℓ1 on growing prefixes of the set with the ``gradient`` plan
    (``igat`` or ``fast``, :func:`stage_plan`; ``auto``: by the number of design variables, :func:`stage_gradient`),
    then a pass-count polish of ``polish`` designs (default 10·(n + 1);
    0: none). Returns the best design simulated on the whole set."""
    span = evaluator.meter.span()
    plan = stage_gradient(gradient, evaluator.n)
    x = evaluator.clip(evaluator.x0 if x0 is None else np.asarray(x0, dtype=float))
    history: list[IterationRecord] = []

    start = x
    best_x, best = x, -1

    def consider(point: np.ndarray, passed: int) -> None:
        """A design simulated on the whole set; on equal counts the later (further optimized) one is kept."""
        nonlocal best_x, best
        if passed >= best:
            best_x, best = point, passed

    def relay(label: str) -> IterationCallback:
        def note(record: IterationRecord) -> None:
            entry = IterationRecord(phase=f"{label}: {record.phase}", iteration=record.iteration,
                                    simulations=record.simulations, x=record.x, objective=record.objective,
                                    yield_estimate=record.yield_estimate, accepted=record.accepted,
                                    event=record.event, data=record.data)
            history.append(entry)
            if callback:
                callback(entry)
        return note

    iterations = 0
    stages = stage_plan(outcomes.n, start_samples, growth, plan)
    for size, provider in stages:
        subset = head(outcomes, size)
        result = yield_l1(evaluator, subset, x, gradient=provider, max_iter=max_iter, phases=2 if size == outcomes.n
                          else 1, radius=trust_region, refresh=5, refine=8, confidence=confidence,
                          callback=relay(f"{size} outcomes"))
        iterations += result.iterations
        x = result.x  # the next stage starts here; only the last stage's count is on the whole set
    assert result.yield_estimate is not None
    consider(x, result.yield_estimate.passed)
    designs = 10 * (evaluator.n + 1) if polish is None else polish
    method = ""
    if designs > 0:
        budget = designs * outcomes.n
        if evaluator.n > 6 and importlib.util.find_spec("cma") is not None:
            from optiyield.optim.blackbox import cma_es

            method = "cma-es"
            found = cma_es(evaluator, outcomes, best_x, budget=budget, sigma=0.05, confidence=confidence,
                           callback=relay("polish"))
        else:
            method = "nelder-mead"
            found = nelder_mead(evaluator, outcomes, budget=budget, x0=best_x, confidence=confidence,
                                callback=relay("polish"))
        iterations += found.iterations
        assert found.yield_estimate is not None
        consider(found.x, found.yield_estimate.passed)
    # the start on the whole set, last (a run's store already has it: run.py measures every step's start)
    start_passed = int(evaluator.passing(start, outcomes).sum())
    if start_passed > best:
        best_x, best = start, start_passed
    est = YieldEstimate.from_counts(best, outcomes.n, confidence)
    names = dict.fromkeys(provider.upper() for _, provider in stages)
    sizes = " → ".join(str(size) for size, _ in stages)
    return Result(method="yield auto", x=best_x, design=evaluator.design(best_x), objective=-est.value,
                  yield_estimate=est, history=history, iterations=iterations, cost=span.cost,
                  status=f"l1/{' then '.join(names)} on {sizes} outcomes"
                  + (f", {method} polish of {designs} designs" if method else "")
                  + f"; yield {start_passed / outcomes.n:.1%} → {est.value:.1%}")


class YieldAutoOptions(StepOptions):
    """``{yield: auto, …}``: ``start_samples`` outcomes in the first ℓ1 stage, ``growth`` factor per stage,
    ``max_iter`` trust-region iterations per stage phase, starting ``trust_region`` radius (fraction of each
    range), ``polish`` designs of the pass-count search afterwards (default 10·(n + 1), 0: none), ``gradient``: the
    Jacobians of the ℓ1 stages (``igat``, ``fast``, or ``auto``: ``fast`` from 8 design variables on), and
    ``samples``: the size of the run's optimization outcome set (default ``run.samples``)."""

    start_samples: int = Field(50, ge=1)
    growth: float = Field(2.0, gt=1)
    max_iter: int = Field(20, ge=1)
    trust_region: float = Field(0.1, gt=0, le=1)
    polish: int | None = Field(None, ge=0)
    gradient: Literal["auto", "igat", "fast"] = "auto"
    samples: int | None = Field(None, ge=1, le=MAX_SAMPLES)


def _run(problem: Problem, x0: np.ndarray, options: YieldAutoOptions, callback: IterationCallback | None) -> Result:
    return yield_auto(problem.evaluator, problem.outcomes, x0, start_samples=options.start_samples,
                      growth=options.growth, max_iter=options.max_iter, trust_region=options.trust_region,
                      polish=options.polish, gradient=options.gradient, confidence=problem.confidence,
                      callback=callback)


METHOD = StepMethod(kind="yield", name="auto", options=YieldAutoOptions, run=_run, label=lambda o: "yield auto")
