"""Trust-region iterations on linearised spec errors, with LP subproblems (cvxpy).

The driver is shared by minimax nominal design and one-sided ℓ1 yield optimization: each supplies a
*model* that evaluates its objective from responses and solves the linearised subproblem inside a
box trust region. The trust region lives in variables scaled to their ranges: |d_k| ≤ Δ·(hi_k − lo_k).
A trial step is accepted when the actual objective decreases; Δ shrinks after poor agreement between
predicted and actual decrease (ρ < 0.25) and grows after good agreement at the boundary (ρ > 0.75).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import cvxpy as cp
import numpy as np

from optiyield.optim.evaluator import Evaluator
from optiyield.optim.gradients import GradientProvider
from optiyield.optim.result import IterationCallback, IterationRecord


class TrustRegionModel(Protocol):
    """An objective on responses and its linearised trust-region subproblem."""

    def value(self, responses: np.ndarray) -> float:
        """Objective at responses (N, Q)."""
        ...

    def solve(self, responses: np.ndarray, jacobian: np.ndarray, x: np.ndarray, lower: np.ndarray,
              upper: np.ndarray) -> tuple[np.ndarray, float]:
        """Step d within [lower, upper] (already intersected with the trust region) and the predicted
        objective of the linearised model at x + d. The trust region calls it in range-scaled variables (x, d
        and the bounds as fractions of each variable's range, the Jacobian per range), so the LP is well scaled
        whatever the units; a RuntimeError (the LP not solved) ends the run at its current point."""
        ...


#: The LP solvers' own logs: at DEBUG level (``optiyield -v``, or ``logging.getLogger("optiyield.solver")
#: .setLevel("DEBUG")``) cvxpy and HiGHS print their logs; otherwise they print nothing.
SOLVER_LOG = logging.getLogger("optiyield.solver")
_BANNER = threading.Lock()
_banner_spent = False


def quiet_highs_banner() -> None:
    """Keep HiGHS's copyright banner out of the user's terminal.

    HiGHS (highspy 1.16) writes "Running HiGHS … Copyright …" to the process's standard output (file
    descriptor 1, below Python's ``sys.stdout``) from the constructor of the *first* ``Highs`` object of a
    process, before any option such as ``output_flag`` or ``log_to_console`` can be set; cvxpy's
    ``verbose=False`` (its default) silences only what comes later. So the first ``Highs`` object is made
    here, once, with descriptor 1 pointed at /dev/null; every later one is silent with cvxpy's defaults.
    """
    global _banner_spent
    with _BANNER:
        if _banner_spent:
            return
        _banner_spent = True
        try:
            import highspy
        except ImportError:  # cvxpy without HiGHS: nothing prints a banner
            return
        sys.stdout.flush()
        saved = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)


def solve_lp(problem: cp.Problem) -> None:
    """Solve an LP with HiGHS, falling back to Clarabel; raises RuntimeError if neither succeeds.

    Quiet unless :data:`SOLVER_LOG` is enabled for DEBUG, when cvxpy and the solver print their logs."""
    verbose = SOLVER_LOG.isEnabledFor(logging.DEBUG)
    if not verbose:
        quiet_highs_banner()
    for solver in ("HIGHS", "CLARABEL"):
        try:
            problem.solve(solver=solver, verbose=verbose)
        except (cp.error.SolverError, ValueError):
            continue
        if problem.status in ("optimal", "optimal_inaccurate"):
            return
    raise RuntimeError(f"LP subproblem not solved (status {problem.status})")


@dataclass
class TrustRegionOutcome:
    """Final state of a trust-region run."""

    x: np.ndarray
    responses: np.ndarray
    jacobian: np.ndarray
    value: float
    iterations: int
    status: str
    history: list[IterationRecord] = field(default_factory=list)


def run_trust_region(
    evaluator: Evaluator,
    provider: GradientProvider,
    model: TrustRegionModel,
    x0: np.ndarray,
    *,
    max_iter: int,
    radius: float,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    record: Callable[[np.ndarray], dict[str, Any]] | None = None,
    callback: IterationCallback | None = None,
    label: str = "",
    min_radius: float = 1e-4,
    rtol: float = 1e-6,
    target: float | None = None,
    stall_restart: bool = False,
) -> TrustRegionOutcome:
    """Iterate from ``x0``: linearise (provider), solve the subproblem, simulate the trial, accept or
    shrink. ``start`` gives responses and Jacobian at x0 if already known; ``record`` adds
    per-iteration figures computed from responses to each :class:`IterationRecord` (its key
    ``yield_estimate``, a YieldEstimate, becomes the record's yield). With ``target``, stop as soon as an
    accepted iterate's objective is ≤ target (its Jacobian is then not recomputed); the start is not
    checked (a caller that wants that checks it before paying for the start's Jacobian, as minimax does).
    With ``stall_restart`` and a provider whose Jacobian is approximate (one with a ``restart`` method:
    IGAT), a trust region that shrinks below its minimum, or a model that predicts no decrease, first
    gets a fresh finite-difference Jacobian at the current point and the starting radius back, once per
    accepted point; only a second stall without an accepted step ends the run."""
    span = evaluator.upper - evaluator.lower
    scale = np.where(span > 0, span, 1.0)  # the subproblem's variables are fractions of each range
    x = evaluator.clip(np.asarray(x0, dtype=float))
    responses, jacobian = start if start is not None else provider.start(x)
    value = model.value(responses)
    history: list[IterationRecord] = []
    status = f"{max_iter} iterations"
    start_time = time.perf_counter()

    def note(iteration: int, accepted: bool, event: str | None = None, **extra: float) -> None:
        data = dict(record(responses)) if record else {}
        estimate = data.pop("yield_estimate", None)
        entry = IterationRecord(phase=label, iteration=iteration, simulations=evaluator.meter.simulations,
                                x=evaluator.design(x), objective=value, yield_estimate=estimate, accepted=accepted,
                                event=event, data={"radius": radius, "seconds": time.perf_counter() - start_time,
                                                   **extra, **data})
        history.append(entry)
        if callback:
            callback(entry)

    note(0, accepted=True)
    iteration = 0
    initial_radius = radius
    restart = getattr(provider, "restart", None) if stall_restart else None  # IGAT: approximate Jacobian
    restarted = False  # a restart since the last accepted step

    def restart_after_stall(why: str) -> bool:
        """On a stall, take a fresh Jacobian and the starting radius, once per accepted point."""
        nonlocal jacobian, radius, restarted
        if restart is None or restarted:
            return False
        jacobian = restart(x, responses)
        radius, restarted = initial_radius, True
        note(iteration, accepted=False, event=f"restart: finite-difference Jacobian ({why})")
        return True

    for iteration in range(1, max_iter + 1):
        lower = np.maximum(evaluator.lower - x, -radius * span)
        upper = np.minimum(evaluator.upper - x, radius * span)
        try:  # in range-scaled variables: physical units (a 2.5 fF capacitor, a 75 nm length) leave the LP's
            # gradients at 1e15 and its bounds at 1e-15, which HiGHS and Clarabel both fail on
            scaled, predicted = model.solve(responses, jacobian * scale, x / scale, lower / scale, upper / scale)
        except RuntimeError as error:
            status = f"stopped: {error}"
            iteration -= 1
            break
        step = scaled * scale
        decrease = value - predicted
        if decrease <= rtol * max(1.0, abs(value)):
            if restart_after_stall("no predicted decrease"):
                continue
            status = "converged: the linearised model predicts no further decrease"
            iteration -= 1
            break
        trial_x = evaluator.clip(x + step)
        trial_r = provider.trial(trial_x)
        trial_value = model.value(trial_r)
        rho = (value - trial_value) / decrease
        accepted = trial_value < value
        if accepted and target is not None and trial_value <= target:
            x, responses, value = trial_x, trial_r, trial_value
            status = f"target reached: objective {value:.4g} <= {target:g}"
            note(iteration, accepted=True, rho=float(rho), predicted=float(predicted))
            break
        if accepted:
            x, responses, value = trial_x, trial_r, trial_value
            jacobian = provider.accept(x, responses)
            restarted = False
        at_boundary = np.max(np.abs(step) / scale) > 0.9 * radius
        if rho < 0.25:
            radius *= 0.25
        elif rho > 0.75 and at_boundary:
            radius = min(2.0 * radius, 1.0)
        note(iteration, accepted=bool(accepted), rho=float(rho), predicted=float(predicted))
        if radius < min_radius:
            if restart_after_stall("trust region below its minimum"):
                continue
            status = "converged: trust region below its minimum"
            break
    return TrustRegionOutcome(x=x, responses=responses, jacobian=jacobian, value=value,
                              iterations=iteration, status=status, history=history)
