"""Minimax nominal design: minimise max_j w_j e_j(φ⁰) by successive linear programs in a trust region.

At each iterate the errors are linearised, e(x + d) ≈ e + G d, and the LP

    minimise t   subject to   w_j (e_j + G_j d) ≤ t,   trust-region box,   design bounds

gives the step. A negative final objective means every spec is met with margin (the worst weighted,
scaled margin is −objective).
"""

from __future__ import annotations

from typing import Literal

import cvxpy as cp
import numpy as np
from pydantic import Field

from optiyield.objective import ErrorModel, minimax_value
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.gradients import make_provider
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, Result
from optiyield.optim.trust_region import run_trust_region, solve_lp
from optiyield.registry import StepMethod, StepOptions


class MinimaxModel:
    """The minimax objective and its LP subproblem, on nominal responses (N = 1)."""

    def __init__(self, errors: ErrorModel) -> None:
        self.errors = errors
        self.weights = errors.weights

    def _errors(self, responses: np.ndarray) -> np.ndarray:
        return self.errors.errors({m: responses[..., q] for q, m in enumerate(self.errors.measures)})

    def _gradients(self, jacobian: np.ndarray) -> np.ndarray:
        return self.errors.jacobian({m: jacobian[..., q, :] for q, m in enumerate(self.errors.measures)})

    def value(self, responses: np.ndarray) -> float:
        return float(minimax_value(self._errors(responses), self.weights).max())

    def solve(self, responses, jacobian, x, lower, upper):  # noqa: ANN001, ANN201 - see TrustRegionModel
        e = self._errors(responses).reshape(-1)
        g = self._gradients(jacobian).reshape(-1, len(x))
        d, t = cp.Variable(len(x)), cp.Variable()
        w = np.tile(self.weights, len(e) // len(self.weights))
        problem = cp.Problem(cp.Minimize(t), [cp.multiply(w, e + g @ d) <= t, d >= lower, d <= upper])
        solve_lp(problem)
        return np.asarray(d.value, dtype=float), float(t.value)

    def margins(self, responses: np.ndarray) -> dict[str, float]:
        """Scaled error of every bound (negative = met), by label."""
        e = self._errors(responses).reshape(-1)
        return {f.label: float(v) for f, v in zip(self.errors.functions, e, strict=True)}


def minimax(evaluator: Evaluator, x0: np.ndarray | None = None, *, gradient: str = "past", max_iter: int = 30,
            radius: float = 0.1, refresh: int = 5, callback: IterationCallback | None = None,
            until: str = "converged", stall_restart: bool = False) -> Result:
    """Minimax nominal design from ``x0`` (default: the spec's start point).

    ``stall_restart``: with IGAT, a stall gets one fresh PAST Jacobian before it counts as convergence
    (:func:`~optiyield.optim.trust_region.run_trust_region`).

    ``until="feasible"`` stops at the first iterate meeting every spec (objective ≤ 0); the start is
    then simulated alone first, so a start that already meets every spec costs one simulation."""
    span = evaluator.meter.span()
    model = MinimaxModel(evaluator.errors)
    x_start = evaluator.clip(np.asarray(evaluator.x0 if x0 is None else x0, dtype=float))
    target = 0.0 if until == "feasible" else None
    if target is not None:
        value = float(minimax_value(evaluator.responses(x_start).errors(evaluator.errors)[0, 0],
                                    model.weights))
        if value <= target:
            return Result(method="minimax (start already feasible)", x=x_start, design=evaluator.design(x_start),
                          objective=value, yield_estimate=None, iterations=0, cost=span.cost,
                          status=f"start meets every spec: objective {value:.4g} <= 0")
    provider = make_provider(gradient, evaluator, None, refresh=refresh)
    outcome = run_trust_region(
        evaluator, provider, model, x_start, max_iter=max_iter, radius=radius,
        record=lambda r: {"margins": model.margins(r)}, callback=callback, label="minimax", target=target,
        stall_restart=stall_restart)
    return Result(
        method=f"minimax ({provider.name})", x=outcome.x, design=evaluator.design(outcome.x),
        objective=outcome.value, yield_estimate=None, history=outcome.history, iterations=outcome.iterations,
        cost=span.cost, status=outcome.status)


class MinimaxOptions(StepOptions):
    """``{nominal: minimax, …}``: ``gradient`` provider (igat, past, central), ``max_iter`` trust-region
    iterations, starting ``trust_region`` radius (fraction of each variable's range), IGAT's PAST
    ``refresh`` period (0: only at the start), ``stall_restart`` (IGAT: one fresh PAST Jacobian before a
    stall counts), ``until`` (converged, or feasible: stop at the first design meeting every spec)."""

    gradient: Literal["igat", "past", "central", "fast"] = "igat"
    max_iter: int = Field(30, ge=1)
    trust_region: float = Field(0.1, gt=0, le=1)
    refresh: int = Field(5, ge=0)
    stall_restart: bool = False
    until: Literal["converged", "feasible"] = "converged"


def _run(problem: Problem, x0: np.ndarray, options: MinimaxOptions, callback: IterationCallback | None) -> Result:
    return minimax(problem.evaluator, x0, gradient=options.gradient, max_iter=options.max_iter,
                   radius=options.trust_region, refresh=options.refresh, callback=callback, until=options.until,
                   stall_restart=options.stall_restart)


METHOD = StepMethod(kind="nominal", name="minimax", options=MinimaxOptions, run=_run,
                    label=lambda o: f"minimax ({o.gradient})")
