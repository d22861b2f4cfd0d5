"""One-sided ℓ1 yield optimization (Bandler, Zhang, Song, Biernacki, IEEE MTT 1990, eq. 16).

For a fixed set of outcomes φⁱ = φ⁰ + Δφⁱ (common random numbers) with errors e_ij, the objective of a
phase is

    U(φ⁰) = Σ_i α_i Σ_{j: e_ij > 0} e_ij,        α_i = 1 / |v_i(φ⁰_phase start)|,

where v_i is the generalised ℓ1 function of outcome i. With these multipliers every failing outcome
contributes about 1 at the start of the phase, so U approximates the number of failing outcomes and
decreasing it raises the yield. Each iteration solves the LP

    minimise Σ_i α_i Σ_j u_ij   s.t.  u_ij ≥ e_ij + G_ij d,  u_ij ≥ 0,  trust-region box,  bounds,

which counts every outcome that the step would push out of (or keep outside) the acceptable region.
Near the solution, where trust-region LP steps stop making progress, a few quasi-Newton (L-BFGS-B)
steps on a smoothed U (softplus with a small width) refine the design; they are kept only if the exact
U decreases. A new phase recomputes α at the new point. The yield estimate with its interval is
recorded at every iteration.
"""

from __future__ import annotations

from typing import Any, Literal

import cvxpy as cp
import numpy as np
from pydantic import Field
from scipy.optimize import minimize

from optiyield.objective import ErrorModel, alpha_weights, generalized_l1, one_sided_l1, passes
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.gradients import IGAT, make_provider
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, IterationRecord, Result
from optiyield.optim.trust_region import run_trust_region, solve_lp
from optiyield.registry import StepMethod, StepOptions
from optiyield.safety import MAX_SAMPLES
from optiyield.stats.variation import OutcomeSet
from optiyield.yield_ import YieldEstimate


class OneSidedL1Model:
    """U and its LP subproblem over N outcomes, with multipliers α fixed for a phase."""

    def __init__(self, errors: ErrorModel, alpha: np.ndarray, confidence: float = 0.95) -> None:
        self.errors, self.alpha, self.confidence = errors, alpha, confidence

    def error_matrix(self, responses: np.ndarray) -> np.ndarray:
        """Errors (N, J) from responses (N, Q)."""
        return self.errors.errors({m: responses[..., q] for q, m in enumerate(self.errors.measures)})

    def gradients(self, jacobian: np.ndarray) -> np.ndarray:
        """Error gradients (N, J, n) from response Jacobians (N, Q, n)."""
        return self.errors.jacobian({m: jacobian[..., q, :] for q, m in enumerate(self.errors.measures)})

    def value(self, responses: np.ndarray) -> float:
        return one_sided_l1(self.error_matrix(responses), self.alpha)

    def solve(self, responses, jacobian, x, lower, upper):  # noqa: ANN001, ANN201 - see TrustRegionModel
        e = self.error_matrix(responses)
        g = self.gradients(jacobian)
        count, nerr = e.shape
        d = cp.Variable(len(x))
        u = cp.Variable(count * nerr, nonneg=True)
        weights = np.repeat(self.alpha, nerr)
        linear = e.reshape(-1) + g.reshape(-1, len(x)) @ d
        problem = cp.Problem(cp.Minimize(weights @ u), [u >= linear, d >= lower, d <= upper])
        solve_lp(problem)
        return np.asarray(d.value, dtype=float), float(problem.value)

    def estimate(self, responses: np.ndarray) -> YieldEstimate:
        """Yield with interval over the outcomes."""
        ok = passes(self.error_matrix(responses))
        return YieldEstimate.from_counts(int(ok.sum()), len(ok), self.confidence)

    def record(self, responses: np.ndarray) -> dict[str, Any]:
        """The yield estimate of an iterate, for its :class:`~optiyield.optim.result.IterationRecord`."""
        return {"yield_estimate": self.estimate(responses)}


def _softplus(z: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    scaled = np.clip(z / width, -50, 50)
    return width * np.log1p(np.exp(scaled)), 1.0 / (1.0 + np.exp(-scaled))


def _jacobian_at(provider, point: np.ndarray, responses: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """IGAT: its Broyden-updated Jacobian (no simulation); PAST/central: finite differences at point."""
    return provider.jac if isinstance(provider, IGAT) else provider.accept(point, responses)


def quasi_newton_refine(evaluator: Evaluator, provider, model: OneSidedL1Model, x: np.ndarray,  # noqa: ANN001
                        responses: np.ndarray, radius: float, max_evaluations: int = 8,
                        width: float = 0.01) -> tuple[np.ndarray, np.ndarray, bool]:
    """L-BFGS-B on the softplus-smoothed U inside the final trust region; kept only if exact U drops.

    Returns the (possibly unchanged) point, its responses, and whether it improved.
    """
    span = evaluator.upper - evaluator.lower
    lo, hi = np.maximum(evaluator.lower, x - radius * span), np.minimum(evaluator.upper, x + radius * span)
    if np.any(hi <= lo):
        return x, responses, False

    def smoothed(u: np.ndarray) -> tuple[float, np.ndarray]:
        point = lo + u * (hi - lo)
        r = provider.trial(point)
        value, slope = _softplus(model.error_matrix(r), width)
        g = model.gradients(_jacobian_at(provider, point, r))
        grad = np.einsum("i,ij,ijk->k", model.alpha, slope, g) * (hi - lo)
        return float(np.sum(model.alpha[:, None] * value)), grad

    u0 = (x - lo) / (hi - lo)
    result = minimize(smoothed, u0, jac=True, method="L-BFGS-B", bounds=[(0, 1)] * len(x),
                      options={"maxfun": max_evaluations, "maxiter": max_evaluations})
    point = lo + result.x * (hi - lo)
    r = provider.trial(point)
    if model.value(r) < model.value(responses):
        return point, r, True
    return x, responses, False


def yield_l1(evaluator: Evaluator, outcomes: OutcomeSet, x0: np.ndarray | None = None, *, gradient: str = "igat",
             max_iter: int = 30, phases: int = 2, radius: float = 0.1, refresh: int = 5, refine: int = 8,
             stall_restart: bool = False, confidence: float = 0.95,
             callback: IterationCallback | None = None) -> Result:
    """Maximise yield over ``outcomes`` by one-sided ℓ1 optimization in ``phases`` phases.

    ``max_iter`` trust-region iterations per phase, starting from ``radius`` (fraction of each variable's
    range); ``refresh``: IGAT's PAST refresh period (0 = only at the start); ``refine``: at most this many
    quasi-Newton evaluations after each phase (0 = none; with PAST each costs a Jacobian);
    ``stall_restart``: when IGAT's trust region collapses, recompute its Jacobian by PAST once and go on.
    """
    span = evaluator.meter.span()
    provider = make_provider(gradient, evaluator, outcomes, refresh=refresh)
    x = evaluator.clip(evaluator.x0 if x0 is None else np.asarray(x0, dtype=float))
    responses, jacobian = provider.start(x)
    history: list[IterationRecord] = []
    iterations, status, value = 0, "", float("nan")
    model = OneSidedL1Model(evaluator.errors, np.ones(outcomes.n), confidence)
    start_yield = model.estimate(responses)
    best = (start_yield.passed, x, responses)
    for phase in range(1, phases + 1):
        alpha = alpha_weights(generalized_l1(model.error_matrix(responses)))
        model = OneSidedL1Model(evaluator.errors, alpha, confidence)
        outcome = run_trust_region(
            evaluator, provider, model, x, max_iter=max_iter, radius=radius, start=(responses, jacobian),
            record=model.record, callback=callback, label=f"yield phase {phase}", stall_restart=stall_restart)
        x, responses, jacobian, value = outcome.x, outcome.responses, outcome.jacobian, outcome.value
        iterations += outcome.iterations
        history += outcome.history
        refined_x, refined_r, improved = quasi_newton_refine(
            evaluator, provider, model, x, responses, radius=max(outcome.history[-1]["radius"], 0.02),
            max_evaluations=refine) if refine > 0 else (x, responses, False)
        if improved:
            x, responses = refined_x, refined_r
            jacobian = provider.accept(x, responses)
            value = model.value(responses)
            entry = IterationRecord(phase=f"yield phase {phase}", iteration=iterations,
                                    simulations=evaluator.meter.simulations, x=evaluator.design(x), objective=value,
                                    yield_estimate=model.estimate(responses), data={"quasi_newton": True})
            history.append(entry)
            if callback:
                callback(entry)
        status = outcome.status
        best = max(best, (model.estimate(responses).passed, x, responses), key=lambda b: b[0])
        if model.estimate(responses).passed == outcomes.n:
            status = "every outcome passes"
            break
    if best[0] > model.estimate(responses).passed:  # a later phase lost outcomes: keep the best design seen
        _, x, responses = best
        value = model.value(responses)
        status += "; returned the best phase's design"
    final = model.estimate(responses)
    return Result(
        method=f"one-sided l1 ({provider.name})", x=x, design=evaluator.design(x), objective=value,
        yield_estimate=final, history=history, iterations=iterations, cost=span.cost,
        status=f"{status}; yield {start_yield.value:.1%} → {final.value:.1%}")


class YieldL1Options(StepOptions):
    """``{yield: l1, …}``: ``gradient`` provider, ``max_iter`` trust-region iterations per phase, ``phases``
    (α recomputed at each), starting ``trust_region`` radius (fraction of each range), IGAT's PAST
    ``refresh`` period (0: only at the start), ``refine`` (quasi-Newton evaluations after a phase, 0: off),
    ``stall_restart``, and ``samples``: the size of the run's optimization outcome set (default
    ``run.samples``; the first yield step's value counts)."""

    gradient: Literal["igat", "past", "central", "fast", "igat-fast"] = "igat"
    max_iter: int = Field(30, ge=1)
    phases: int = Field(2, ge=1)
    trust_region: float = Field(0.1, gt=0, le=1)
    refresh: int = Field(5, ge=0)
    refine: int = Field(8, ge=0)
    stall_restart: bool = False
    samples: int | None = Field(None, ge=1, le=MAX_SAMPLES)


def _run(problem: Problem, x0: np.ndarray, options: YieldL1Options, callback: IterationCallback | None) -> Result:
    return yield_l1(problem.evaluator, problem.outcomes, x0, gradient=options.gradient, max_iter=options.max_iter,
                    phases=options.phases, radius=options.trust_region, refresh=options.refresh,
                    refine=options.refine, stall_restart=options.stall_restart, confidence=problem.confidence,
                    callback=callback)


METHOD = StepMethod(kind="yield", name="l1", options=YieldL1Options, run=_run,
                    label=lambda o: f"yield l1 ({o.gradient})")
