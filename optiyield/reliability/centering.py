"""Design centering to a sigma target: ``{centering: wcd, beta: 4}`` maximizes the smallest worst-case distance.

Every spec bound j has a signed worst-case distance β_j(x) at design x (:mod:`optiyield.reliability.wcd`).
The step moves x until every β_j ≥ ``beta`` (+ ``margin``), by successive linear programs in a trust region
(the minimax step's scheme, on −β instead of the spec errors):

1. worst-case points u*_k at x, every tracked local point k of every bound (a bound may fail in several
   regions: the CSVA's lower gain bound both when the load is weak and when the transistor leaves saturation);
   at the start and before stopping, a scaled-sigma exploration looks for regions not yet tracked;
2. design-point sensitivities: g_j(u*_k, x + h·e_i) for every design variable i and tracked point k, ALL in one
   engine call (n·K rows); then ∂β_k/∂x_i = (∂g_j/∂x_i)(u*_k) / ‖∇_u g_j(u*_k)‖ (the first-order sensitivity of
   the distance to a boundary, the same formula for both signs of β);
3. the LP  max t  s.t.  β_k + ∇β_k·d ≥ t  for every tracked point,  t ≤ cap,  |d_i| ≤ Δ·range_i,  design bounds,
   with a small ℓ1 penalty on d, so that once the target is predicted reachable the smallest step reaching it is
   taken; ``cap`` = target + margin + 0.25 (``until: converged``: no cap, the smallest β is maximized);
4. the trial point's worst-case points, searched from the current ones (typically 1–3 iterations of one engine
   call each); the step is taken when the smallest β grows. Δ shrinks ×¼ after poor agreement (ρ < 0.25) and
   doubles after good agreement at the boundary (ρ > 0.75), as in :mod:`optiyield.optim.minimax`.

Why a trust-region SLP and not SQP: the objective min_k β_k is a max-min of few smooth functions whose solution is
usually a vertex (as many active bounds as design variables), where SLP converges fast; its gradients are cheap
(n·K simulations) while second derivatives of β would cost a Hessian of finite differences per bound, and the
worst-case points move (their β is only piecewise smooth where a bound's nearest region changes), which a trust
region tolerates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import cvxpy as cp
import numpy as np
from pydantic import Field

from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, IterationRecord, Result
from optiyield.optim.trust_region import solve_lp
from optiyield.registry import StepMethod, StepOptions
from optiyield.reliability.circuit import CircuitLimitState
from optiyield.reliability.corners import SearchResult, corners, search
from optiyield.reliability.wcd import WorstCase

__all__ = ["CenteringOptions", "METHOD", "center"]

#: Tracked local worst-case points farther than this beyond the target are dropped (they cannot bind).
TRACK_ABOVE = 3.0


class CenteringOptions(StepOptions):
    """``{centering: wcd, …}``: ``beta`` the target worst-case distance of every spec bound; ``margin`` aims a
    little above it (β is linearized: the true failure probability of a bound can be above Φ(−β));
    ``until`` target (stop once every β ≥ beta + margin) or converged (maximize the smallest β);
    ``max_iter`` trust-region iterations; ``trust_region`` the starting radius (fraction of each variable's
    range); ``design_step`` the finite-difference step of the design sensitivities (fraction of the range);
    ``explore`` scaled-sigma points searched for hidden failure regions at the start and before stopping
    (0: none); ``budget`` a cap on the step's evaluations; ``wcd_iter`` iterations of each worst-case search."""

    beta: float = Field(4.0, gt=0, le=8)
    margin: float = Field(0.0, ge=0, le=2)
    until: Literal["target", "converged"] = "target"
    max_iter: int = Field(15, ge=1)
    trust_region: float = Field(0.1, gt=0, le=1)
    design_step: float = Field(0.005, gt=0, le=0.1)
    explore: int = Field(200, ge=0)
    budget: int | None = Field(None, ge=1)
    wcd_iter: int = Field(15, ge=2)


@dataclass
class _Point:
    """A design with its worst-case points: ``tracked`` (bound index, point) pairs and their searches."""

    x: np.ndarray
    found: list[WorstCase]
    bound_of: list[int]
    result: SearchResult

    @property
    def betas(self) -> np.ndarray:
        """β of every tracked point (NaN where the search failed)."""
        return np.array([p.beta if p.point is not None else np.nan for p in self.found], dtype=float)

    def beta_per_bound(self, bounds: int) -> np.ndarray:
        """The smallest β of each bound (+∞ when none of its points has a finite β)."""
        out = np.full(bounds, np.inf)
        for j, p in zip(self.bound_of, self.found, strict=True):
            if p.point is not None and np.isfinite(p.beta):
                out[j] = min(out[j], p.beta)
        for k, p in enumerate(self.result.points):  # bounds without tracked points: the search's answer
            if not np.isfinite(out[k]) and not np.isnan(p.beta):
                out[k] = p.beta
        return out

    @property
    def beta_min(self) -> float:
        """Smallest β over the tracked points (the objective)."""
        finite = self.betas[np.isfinite(self.betas)]
        return float(finite.min()) if finite.size else math.inf


def _evaluate(state: CircuitLimitState, tracked: list[tuple[int, WorstCase]], *, explore: int, seed: int,
              wcd_iter: int) -> _Point:
    """Worst-case points at the state's design, searched from the tracked ones (from the nominal when there are
    none), exploring when asked: every local point found, with its bound."""
    starts = [(j, p.point) for j, p in tracked]
    result = search(state, explore=explore, seed=seed, starts=starts or None, max_iter=wcd_iter, explore_iter=10)
    labels = list(state.labels)
    found = [p for p in (*result.points, *result.others) if p.point is not None]
    return _Point(state.x.copy(), found, [labels.index(p.label) for p in found], result)


def _sensitivities(state: CircuitLimitState, point: _Point, step: float, lower: np.ndarray,
                   upper: np.ndarray) -> np.ndarray:
    """∂β_k/∂s_i for every tracked point k and design variable i in range-scaled units s (K, n); one engine call
    of n·K rows. Fixed variables (zero range) get zero."""
    x = point.x
    width = upper - lower
    n = len(x)
    usable = [k for k, p in enumerate(point.found) if p.point is not None and np.isfinite(p.beta)
              and np.isfinite(p.gradient_norm) and p.gradient_norm > 0]
    grads = np.zeros((len(point.found), n))
    free = [i for i in range(n) if width[i] > 0]
    if not usable or not free:
        return grads
    steps = np.zeros(n)
    designs = []
    for i in free:
        h = step * width[i]
        steps[i] = h if x[i] + h <= upper[i] else -h
        xi = x.copy()
        xi[i] += steps[i]
        designs.append(xi)
    u = np.array([point.found[k].point for k in usable])
    m = state.margins_at(np.array(designs), u)  # (len(free), len(usable), B)
    for col, k in enumerate(usable):
        p, j = point.found[k], point.bound_of[k]
        dg = (m[:, col, j] - p.margin) / steps[free]  # per SI unit
        dg = np.where(np.isfinite(dg), dg, 0.0)
        grads[k, free] = dg * width[free] / p.gradient_norm
    return grads


def _solve(betas: np.ndarray, grads: np.ndarray, s: np.ndarray, radius: float, cap: float | None
           ) -> tuple[np.ndarray, float]:
    """The LP step d (scaled units) and the predicted smallest β at s + d."""
    keep = np.isfinite(betas)
    b, g = betas[keep], grads[keep]
    n = len(s)
    d, t = cp.Variable(n), cp.Variable()
    constraints = [b + g @ d >= t, d <= radius, d >= -radius, s + d >= 0, s + d <= 1]
    if cap is not None:
        constraints.append(t <= cap)
    problem = cp.Problem(cp.Maximize(t - 1e-3 * cp.norm1(d)), constraints)
    solve_lp(problem)
    if d.value is None:
        return np.zeros(n), float(b.min())
    step = np.asarray(d.value, dtype=float)
    return step, float(np.min(b + g @ step))


def _nearest_per_bound(point: _Point, bounds: int) -> list[WorstCase]:
    """Per bound, its tracked point of smallest |β| (else the search's own answer for it)."""
    out = list(point.result.points)
    for j in range(bounds):
        own = [p for k, p in zip(point.bound_of, point.found, strict=True) if k == j and np.isfinite(p.beta)]
        if own:
            out[j] = min(own, key=lambda p: abs(p.beta))
    return out


def center(problem: Problem, x0: np.ndarray, options: CenteringOptions,
           callback: IterationCallback | None = None) -> Result:
    """Move the design from ``x0`` until every spec bound's worst-case distance reaches ``options.beta`` (see
    the module docstring). The result's ``reliability`` holds β per bound and the corners at the final design."""
    ev, spec = problem.evaluator, problem.spec
    span = ev.meter.span()
    lower, upper = ev.lower, ev.upper
    width = np.where(upper > lower, upper - lower, 1.0)
    target = options.beta + options.margin
    cap = target + 0.25 if options.until == "target" else None
    seed = spec.run.seed
    base = CircuitLimitState(spec, ev, ev.design(ev.clip(np.asarray(x0, dtype=float))))
    bounds = base.bounds
    first = ev.meter.simulations + ev.meter.cached
    history: list[IterationRecord] = []

    def spent() -> int:
        return ev.meter.simulations + ev.meter.cached - first

    def at(xk: np.ndarray, tracked: list[tuple[int, WorstCase]], explore: int) -> _Point:
        point = _evaluate(base.at_design(ev.design(xk)), tracked, explore=explore, seed=seed,
                          wcd_iter=options.wcd_iter)
        kept = _tracked_of(point, target + TRACK_ABOVE)
        return _Point(point.x, [p for _, p in kept], [j for j, _ in kept], point.result)

    def record(iteration: int, point: _Point, accepted: bool | None, event: str | None = None, **data: Any) -> None:
        betas = point.beta_per_bound(bounds)
        rec = IterationRecord(phase="centering", iteration=iteration, simulations=ev.meter.simulations,
                              x=ev.design(point.x), objective=-point.beta_min, accepted=accepted, event=event,
                              data={"beta": {lab: float(b) for lab, b in zip(base.labels, betas, strict=True)},
                                    "beta_min": point.beta_min, "target": target, "evaluations": spent(), **data})
        history.append(rec)
        if callback is not None:
            callback(rec)

    def pairs(point: _Point) -> list[tuple[int, WorstCase]]:
        return list(zip(point.bound_of, point.found, strict=True))

    current = at(base.x, [], options.explore)
    radius = options.trust_region
    record(0, current, None, event="start", radius=radius)
    explored_here = True
    status, iteration = "", 0
    while True:
        if options.until == "target" and current.beta_min >= target:
            if explored_here:
                status = f"every spec bound has β ≥ {target:g} (smallest {current.beta_min:.3f})"
                break
            current = at(current.x, pairs(current), options.explore)  # a region not tracked yet?
            explored_here = True
            record(iteration, current, None, event="exploration at the final design", radius=radius)
            continue
        if iteration >= options.max_iter:
            status = f"max_iter: smallest β {current.beta_min:.3f} after {iteration} iterations"
            break
        if options.budget is not None and spent() >= options.budget:
            status = f"budget of {options.budget} evaluations spent: smallest β {current.beta_min:.3f}"
            break
        if radius < 1e-3:
            status = f"trust region below 1e-3 of the range: smallest β {current.beta_min:.3f}"
            break
        iteration += 1
        grads = _sensitivities(base.at_design(ev.design(current.x)), current, options.design_step, lower, upper)
        s = (current.x - lower) / width
        step, predicted = _solve(current.betas, grads, s, radius, cap)
        if np.max(np.abs(step)) < 1e-6 or predicted <= current.beta_min + 1e-6:
            status = f"no step predicts a larger smallest β (smallest {current.beta_min:.3f})"
            record(iteration, current, False, event="stalled", radius=radius, predicted=predicted)
            break
        trial = at(ev.clip(lower + (s + step) * width), pairs(current), 0)
        rho = (trial.beta_min - current.beta_min) / (predicted - current.beta_min)
        accepted = bool(trial.beta_min > current.beta_min)
        record(iteration, trial, accepted, radius=radius, rho=float(rho), predicted=predicted)
        if rho < 0.25:
            radius /= 4
        elif rho > 0.75 and np.max(np.abs(step)) >= 0.99 * radius:
            radius = min(2 * radius, 1.0)
        if accepted:
            current = trial
            explored_here = options.explore == 0
    final = base.at_design(ev.design(current.x))
    nearest = _nearest_per_bound(current, bounds)
    betas = current.beta_per_bound(bounds)
    reliability = {
        "kind": "centering", "target": options.beta, "margin": options.margin, "beta_min": current.beta_min,
        "reached": bool(current.beta_min >= target), "evaluations": spent(),
        "beta": {lab: float(b) for lab, b in zip(base.labels, betas, strict=True)},
        "corners": [c.to_dict() for c in corners(final, nearest)],
    }
    return Result(method="centering (wcd)", x=current.x, design=ev.design(current.x), objective=-current.beta_min,
                  yield_estimate=None, history=history, iterations=iteration, cost=span.cost, status=status,
                  reliability=reliability)


def _tracked_of(point: _Point, limit: float) -> list[tuple[int, WorstCase]]:
    """The local worst-case points of a search worth following: per bound its nearest, and further ones below
    ``limit``, none within 0.5 of a kept point of the same bound."""
    out: list[tuple[int, WorstCase]] = []
    candidates = sorted(zip(point.bound_of, point.found, strict=True), key=lambda jp: abs(jp[1].beta))
    for j, p in candidates:
        if p.point is None or not np.isfinite(p.beta):
            continue
        first = all(k != j for k, _ in out)
        if not first and abs(p.beta) > limit:
            continue
        if all(k != j or np.linalg.norm(q.point - p.point) > 0.5 for k, q in out):
            out.append((j, p))
    return out


def _run(problem: Problem, x0: np.ndarray, options: CenteringOptions, callback: IterationCallback | None) -> Result:
    return center(problem, x0, options, callback)


METHOD = StepMethod(kind="centering", name="wcd", options=CenteringOptions, run=_run,
                    label=lambda o: f"centering to β ≥ {o.beta:g}" + (f" + {o.margin:g}" if o.margin else ""))
