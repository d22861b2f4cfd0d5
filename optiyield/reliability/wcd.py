"""Worst-case distances: the FORM design point of every spec bound, with batched finite differences.

For bound j with margin g_j(u) in the standard-normal space, the worst-case point u*_j is the point of
smallest ‖u‖ on the boundary g_j(u) = 0 (the most likely failing outcome, Antreich–Graeb–Wieser 1994);
its signed worst-case distance is β_j = ‖u*_j‖ when the nominal u = 0 passes (g_j(0) > 0) and −‖u*_j‖
when it fails. Φ(β_j) is the linearized yield of the bound and Φ(−β_j) its linearized failure probability.

The search is the improved Hasofer–Lind–Rackwitz–Fiessler iteration (iHL-RF, Zhang & Der Kiureghian
1995): the HL-RF step to the linearized boundary, damped by an Armijo line search on the merit function
½‖u‖² + c·|g|. Every iteration is ONE call of the limit state holding, for all unfinished bounds, the
forward-difference stencil (d perturbed points) around the full step and the margins at the shorter
line-search steps; a bound whose full step is rejected gets its stencil in the next call. At the start
every bound shares u = 0, so the first gradient of all bounds costs d + 1 points.

We write the iteration ourselves instead of calling OpenTURNS ``FORM``: OpenTURNS's optimizers ask for one
point or one gradient at a time, so B bounds × (d + 1) points could not share an engine call (measured
cost in docs/high-sigma.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from optiyield.reliability.limit_state import LimitState

__all__ = ["WorstCase", "WorstCaseResult", "worst_case_distances"]

#: Line-search step fractions tried after the full HL-RF step (all in the same batch).
STEPS = (1.0, 0.5, 0.25, 0.1)


class LinearizedBound:
    """Φ(β) and Φ(−β) of a bound with a signed worst-case distance ``beta`` (a mixin for the result types)."""

    beta: float

    @property
    def yield_linear(self) -> float:
        """Linearized yield of the bound, Φ(β)."""
        return float(ndtr(self.beta))

    @property
    def failure_linear(self) -> float:
        """Linearized failure probability of the bound, Φ(−β)."""
        return float(ndtr(-self.beta))


@dataclass(frozen=True)
class WorstCase(LinearizedBound):
    """The worst-case point of one bound.

    ``beta`` is the signed worst-case distance (+ when the nominal passes; ±∞ when the boundary was not
    found within ``max_norm``); ``point`` u* (None when β is infinite); ``normal`` the unit gradient
    direction ∇g/‖∇g‖ at u*; ``margin`` g(u*) (≈ 0 at convergence); ``status`` ``converged``,
    ``max_iter``, ``unreachable`` (no boundary within ``max_norm``), ``flat`` (zero gradient) or
    ``failed`` (NaN margins, e.g. failed simulations, at the nominal or around the point);
    ``gradient_norm`` ‖∇g‖ at u* (so dβ/dp = (∂g/∂p)/‖∇g‖ for a parameter p the limit state depends on).
    """

    label: str
    beta: float
    point: np.ndarray | None
    normal: np.ndarray | None
    margin: float
    nominal_margin: float
    iterations: int
    status: str
    gradient_norm: float = float("nan")

    @property
    def converged(self) -> bool:
        """True when the search met its tolerances."""
        return self.status == "converged"

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {"label": self.label, "beta": self.beta, "yield_linear": self.yield_linear,
                "failure_linear": self.failure_linear, "margin": self.margin,
                "nominal_margin": self.nominal_margin, "iterations": self.iterations, "status": self.status,
                "gradient_norm": self.gradient_norm, "point": None if self.point is None else self.point.tolist()}


@dataclass(frozen=True)
class WorstCaseResult:
    """Worst-case points of every bound, the evaluations spent (``simulations``) and the limit-state
    calls (``batches``, one per iteration)."""

    points: tuple[WorstCase, ...]
    simulations: int
    batches: int
    history: list[int] = field(default_factory=list)

    @property
    def beta_min(self) -> float:
        """Smallest worst-case distance over the bounds."""
        return min(p.beta for p in self.points)

    def design_points(self, max_beta: float = np.inf) -> list[np.ndarray]:
        """Worst-case points of the bounds with finite β ≤ ``max_beta`` (for importance sampling)."""
        return [p.point for p in self.points if p.point is not None and p.beta <= max_beta]


@dataclass
class _Search:
    """Iteration state of one bound."""

    index: int
    u: np.ndarray
    g: float = np.nan
    grad: np.ndarray | None = None
    iterations: int = 0
    status: str = ""
    pending: np.ndarray | None = None  # a point whose gradient is still to be evaluated


def _merit(u: np.ndarray, g: float, c: float) -> float:
    return 0.5 * float(u @ u) + c * abs(g)


def worst_case_distances(state: LimitState, bounds: Sequence[int] | None = None, *, step: float = 1e-2,
                         tol: float = 1e-3, max_iter: int = 15, max_norm: float = 12.0) -> WorstCaseResult:
    """Worst-case point and signed distance β of each bound (all by default) of ``state``, searched from
    the nominal u = 0.

    ``step`` is the forward-difference step in the standard-normal space; the search stops when the point
    is within ``tol`` of the linearized boundary (|g|/‖∇g‖), the point is parallel to the gradient
    (1 − |cos| < tol), and the last step moved less than ``10·tol``; after ``max_iter`` iterations; or when
    ‖u‖ exceeds ``max_norm`` (β = ±∞: no boundary in reach, e.g. a uniform tolerance that saturates).
    A local search finds the nearest boundary point it can reach by descent; a bound with several failure
    regions (e.g. a gain that drops both when a device weakens and when it leaves saturation) may have
    nearer points elsewhere: :func:`design_points_from` searches from other starts.
    """
    chosen = list(range(state.bounds)) if bounds is None else list(bounds)
    start_evals, start_batches = state.evaluations, state.batches
    searches, nominal, history = _start(state, [(j, np.zeros(state.dimension)) for j in chosen], step)
    _iterate(state, searches, step, tol, max_iter, max_norm, history, start_evals)
    points = tuple(_finish(state, s, nominal[s.index]) for s in searches)
    return WorstCaseResult(points, state.evaluations - start_evals, state.batches - start_batches,
                           [h - start_evals for h in history])


def design_points_from(state: LimitState, starts: Sequence[tuple[int, np.ndarray]],
                       nominal: Sequence[float], *, step: float = 1e-2, tol: float = 1e-3, max_iter: int = 15,
                       max_norm: float = 12.0) -> tuple[list[WorstCase], int]:
    """Local worst-case points of bounds searched from given starts ``(bound index, u0)`` (all batched
    together: one limit-state call per iteration); ``nominal`` are the bounds' margins at u = 0 (for the
    sign of β). Returns the points and the evaluations spent."""
    start_evals = state.evaluations
    if not starts:
        return [], 0
    searches, _, history = _start(state, starts, step)
    _iterate(state, searches, step, tol, max_iter, max_norm, history, start_evals)
    return [_finish(state, s, nominal[s.index]) for s in searches], state.evaluations - start_evals


def _start(state: LimitState, starts: Sequence[tuple[int, np.ndarray]], step: float
           ) -> tuple[list[_Search], dict[int, float], list[int]]:
    """Searches at their starting points, with the stencils of all distinct starts in one call."""
    d = state.dimension
    eye = np.eye(d) * step
    unique: list[np.ndarray] = []
    where = []
    for _, u0 in starts:
        u0 = np.asarray(u0, dtype=float)
        k = next((i for i, v in enumerate(unique) if np.array_equal(v, u0)), None)
        if k is None:
            unique.append(u0)
            k = len(unique) - 1
        where.append(k)
    m = state.margins(np.vstack([np.vstack([u, u + eye]) for u in unique]))
    history = [state.evaluations]
    searches = []
    for (j, _), k in zip(starts, where, strict=True):
        block = m[k * (d + 1):(k + 1) * (d + 1), j]
        s = _Search(j, unique[k].copy(), g=float(block[0]), grad=(block[1:] - block[0]) / step)
        if not np.isfinite(s.g) or not np.all(np.isfinite(s.grad)):
            s.status = "failed"
        elif np.linalg.norm(s.grad) < 1e-12:
            s.status = "flat"
        searches.append(s)
    nominal = {s.index: s.g for s in searches if not np.any(s.u)}
    return searches, nominal, history


def _finish(state: LimitState, s: _Search, g0: float) -> WorstCase:
    """The :class:`WorstCase` of a finished search."""
    status = s.status or "max_iter"
    sign = 1.0 if g0 >= 0 else -1.0
    if s.pending is not None:  # stopped after a shorter step: g was measured there (its gradient is the last one)
        s.u, s.pending = s.pending, None
    gn = float(np.linalg.norm(s.grad)) if s.grad is not None and np.all(np.isfinite(s.grad)) else float("nan")
    if status in ("unreachable", "flat"):
        beta, point, normal = sign * np.inf, None, None
    elif status == "failed" and (not np.isfinite(g0) or s.grad is None):
        beta, point, normal = np.nan, None, None
    else:
        beta, point = sign * float(np.linalg.norm(s.u)), s.u.copy()
        normal = s.grad / gn if gn > 0 else None
    return WorstCase(state.labels[s.index], beta, point, normal, float(s.g), float(g0), s.iterations, status, gn)


def _iterate(state: LimitState, searches: list[_Search], step: float, tol: float, max_iter: int,
             max_norm: float, history: list[int], start_evals: int) -> None:
    """iHL-RF iterations of all unfinished searches, one limit-state call per iteration."""
    d = state.dimension
    eye = np.eye(d) * step
    for _ in range(max_iter):
        active = [s for s in searches if not s.status]
        if not active:
            break
        rows: list[np.ndarray] = []
        plans = []  # (search, kind, row offset, candidates)
        for s in active:
            if s.pending is not None:  # gradient at an accepted shorter step
                plans.append((s, "gradient", len(rows), None))
                rows.extend(s.pending + eye)
                continue
            norm2 = float(s.grad @ s.grad)
            target = ((s.grad @ s.u - s.g) / norm2) * s.grad
            if np.linalg.norm(target) > max_norm:  # the linearized boundary is out of reach: simulate nothing there
                s.status = "unreachable"
                continue
            direction = target - s.u
            candidates = [s.u + t * direction for t in STEPS]
            plans.append((s, "step", len(rows), (direction, candidates)))
            rows.append(candidates[0])
            rows.extend(candidates[0] + eye)
            rows.extend(candidates[1:])
        if not rows:
            break
        m = state.margins(np.array(rows))
        history.append(state.evaluations)
        for s, kind, off, extra in plans:
            j = s.index
            s.iterations += 1
            if kind == "gradient":
                s.grad = (m[off:off + d, j] - s.g) / step
                moved = float(np.linalg.norm(s.pending - s.u))
                s.u, s.pending = s.pending, None
                if not np.all(np.isfinite(s.grad)):
                    s.status = "failed"
                else:
                    _check_done(s, moved, tol, max_norm)
                continue
            direction, candidates = extra
            g_full = m[off, j]
            g_short = [m[off + d + 1 + k, j] for k in range(len(STEPS) - 1)]
            g_all = [g_full, *g_short]
            gn = np.linalg.norm(s.grad)
            # iHL-RF penalty (Zhang & Der Kiureghian 1995): c > ‖u‖/‖∇g‖ and c ≥ ½‖u + d‖²/|g|, so that
            # the HL-RF direction is a descent direction of the merit function
            c = 2.0 * max(np.linalg.norm(s.u) / gn, 0.5 * float(candidates[0] @ candidates[0]) / max(abs(s.g), 1e-12))
            m_old = _merit(s.u, s.g, c)
            accepted = None
            for k, (t, g_new) in enumerate(zip(STEPS, g_all, strict=True)):
                if np.isfinite(g_new) and _merit(candidates[k], g_new, c) <= m_old - 1e-4 * t * (
                        np.linalg.norm(direction) ** 2):
                    accepted = k
                    break
            if accepted is None:  # no decrease: take the shortest finite step, or give up
                finite = [k for k, g in enumerate(g_all) if np.isfinite(g)]
                if not finite:
                    s.status = "failed"
                    continue
                accepted = finite[-1]
            moved = float(np.linalg.norm(candidates[accepted] - s.u))
            if accepted == 0:
                grad = (m[off + 1:off + d + 1, j] - g_full) / step
                if not np.all(np.isfinite(grad)):
                    s.status = "failed"
                    continue
                s.u, s.g, s.grad = candidates[0], float(g_full), grad
            else:
                s.g = float(g_all[accepted])
                s.pending = candidates[accepted]
                continue
            _check_done(s, moved, tol, max_norm)
        for s in searches:
            if not s.status and s.pending is None and np.linalg.norm(s.u) > max_norm:
                s.status = "unreachable"


def _check_done(s: _Search, moved: float, tol: float, max_norm: float) -> None:
    """Set ``s.status`` when the accepted point meets the convergence tests."""
    gn = float(np.linalg.norm(s.grad))
    if gn < 1e-12:
        s.status = "flat"
        return
    un = float(np.linalg.norm(s.u))
    on_surface = abs(s.g) / gn < tol
    aligned = un < tol or 1.0 - abs(float(s.u @ s.grad)) / (un * gn) < tol
    if on_surface and aligned and moved < 10 * tol:
        s.status = "converged"
    elif un > max_norm:
        s.status = "unreachable"
