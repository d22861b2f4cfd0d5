"""Importance sampling around worst-case points: a mixture of unit normals centred at EVERY bound's design
point (so both sides of a window, and every spec, are sampled), optionally with a defensive N(0, I).

The sampling density is q(u) = Σ_k π_k φ(u − μ_k) (μ = 0 for the defensive component), the estimate
p̂ = mean(1{fail} · φ(u)/q(u)) with a normal 95 % interval from the sample variance of the weighted
indicator. Samples are drawn and evaluated in batches; sampling stops at the budget or once the
coefficient of variation of p̂ falls below ``target_cv`` (with at least ``min_failures`` failures seen).
:func:`form_importance_sampling` first finds the design points (:mod:`optiyield.reliability.wcd`) and
charges their cost to the same budget.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp, ndtr, ndtri

from optiyield.reliability.explore import unexplained_starts
from optiyield.reliability.limit_state import LimitState, failing
from optiyield.reliability.result import FailureEstimate
from optiyield.reliability.wcd import STEPS, WorstCase, WorstCaseResult, design_points_from, worst_case_distances

__all__ = ["form_importance_sampling", "mixture_importance_sampling"]


def _log_weights(u: np.ndarray, centres: np.ndarray, log_pi: np.ndarray, wide: tuple[float, float] | None = None
                 ) -> np.ndarray:
    """log φ(u)/q(u) for the unit-covariance mixture (the normalising constants (2π)^(−d/2) cancel); ``wide``
    = (log weight, s) adds a component N(0, s²I)."""
    d2 = ((u[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # (N, K)
    terms = log_pi[None, :] - 0.5 * d2
    if wide is not None:
        log_w, scale = wide
        extra = log_w - u.shape[1] * np.log(scale) - 0.5 * (u * u).sum(axis=1) / scale**2
        terms = np.column_stack([terms, extra])
    return -0.5 * (u * u).sum(axis=1) - logsumexp(terms, axis=1)


def _allocate(pis: np.ndarray, drawn: np.ndarray, size: int) -> np.ndarray:
    """How many of the next ``size`` points each component gets, so that the counts drawn so far track the
    weights ``pis`` (largest remainder on the cumulative targets)."""
    target = pis * (drawn.sum() + size) - drawn
    counts = np.floor(np.maximum(target, 0.0)).astype(int)
    short = size - counts.sum()
    if short > 0:
        order = np.argsort(-(target - counts))
        counts[order[:short]] += 1
    elif short < 0:  # pragma: no cover - floor of non-negative targets never exceeds size
        counts[np.argmax(counts)] += short
    return counts


def mixture_importance_sampling(state: LimitState, centres: Sequence[np.ndarray], samples: int, *,
                                weights: Sequence[float] | None = None, defensive: float = 0.0, seed: int = 0,
                                batch: int = 200, sampler: str = "sobol",
                                target_cv: float = 0.0, min_failures: int = 20,
                                reuse: tuple[np.ndarray, np.ndarray, float] | None = None,
                                confidence: float = 0.95) -> FailureEstimate:
    """Failure probability by importance sampling from a mixture of N(μ_k, I) (``weights``, default equal,
    normalised) and, with ``defensive`` > 0, N(0, I) with that weight. At most ``samples`` evaluations, in
    batches of ``batch``.

    ``sampler="sobol"`` (default): each component gets its share of every batch deterministically (the counts
    track the weights) and its points from its own scrambled Sobol' sequence (randomized quasi-Monte Carlo);
    the weights φ/q use the mixture of the realized shares over every point drawn (the deterministic-mixture
    estimator of Owen & Zhou 2000, which stays unbiased). The interval treats the points as independent, which
    is conservative for randomized QMC. ``sampler="mc"``: components drawn at random, points pseudo-random.

    ``reuse = (u, margins, s)``: points already simulated as draws of N(0, s²I) (the exploration sample of
    :func:`form_importance_sampling`) join the estimate as one more mixture component with their count, at no
    cost; their margins are not simulated again.
    """
    from scipy.stats import qmc

    centres = [np.asarray(c, dtype=float) for c in centres]
    if not centres and defensive <= 0:
        raise ValueError("importance sampling needs at least one centre (or a defensive component)")
    if samples < 1 or batch < 1:
        raise ValueError(f"samples and batch must be positive, got {samples}, {batch}")
    if not 0.0 <= defensive < 1.0:
        raise ValueError(f"defensive weight must lie in [0, 1), got {defensive}")
    if sampler not in ("sobol", "mc"):
        raise ValueError(f"sampler must be 'sobol' or 'mc', got {sampler!r}")
    d = state.dimension
    mus = np.array(centres).reshape(-1, d)
    if weights is None:
        pis = np.full(len(mus), (1.0 - defensive) / max(len(mus), 1))
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(mus),) or np.any(w <= 0):
            raise ValueError(f"weights must be {len(mus)} positive numbers, got {weights!r}")
        pis = (1.0 - defensive) * w / w.sum()
    if defensive > 0:
        mus = np.vstack([mus, np.zeros(d)])
        pis = np.append(pis, defensive)
    k0 = len(mus)
    rng = np.random.default_rng(seed)
    engines = [qmc.Sobol(d, scramble=True, rng=np.random.default_rng([seed, k])) for k in range(k0)]
    drawn = np.zeros(k0, dtype=int)
    start = state.evaluations
    points: list[np.ndarray] = []
    margins: list[np.ndarray] = []
    z = float(ndtri(0.5 + confidence / 2))
    reused = 0
    if reuse is not None:
        points.append(np.asarray(reuse[0], dtype=float))
        margins.append(np.asarray(reuse[1], dtype=float))
        reused = len(points[0])

    def weighted() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted failure indicators (all bounds, per bound) and the failure mask of every point so far; the
        weights φ/q use the realized shares of the components (and of the reused sample)."""
        u, m = np.concatenate(points), np.concatenate(margins)
        total = drawn.sum() + reused
        shares = drawn / total if (sampler == "sobol" or reused) else pis
        keep = shares > 0
        wide = (float(np.log(reused / total)), float(reuse[2])) if reuse is not None and reused else None
        w = np.exp(_log_weights(u, mus[keep], np.log(shares[keep]), wide))
        fail = failing(m)
        return np.where(fail, w, 0.0), np.where(~(m >= 0.0), w[:, None], 0.0), fail

    def draw(size: int) -> np.ndarray:
        """The next ``size`` points of the mixture."""
        if sampler == "sobol":
            counts = _allocate(pis, drawn, size)
            blocks = []
            for k, count in enumerate(counts):
                if count:
                    with warnings.catch_warnings():  # balance is best at powers of 2; any count is unbiased
                        warnings.simplefilter("ignore", UserWarning)
                        uniform = np.clip(engines[k].random(int(count)), 2.0**-53, 1 - 2.0**-53)
                    blocks.append(mus[k] + ndtri(uniform))
            drawn[:] += counts
            return np.vstack(blocks)
        comp = rng.choice(k0, size=size, p=pis)
        drawn[:] += np.bincount(comp, minlength=k0)
        return mus[comp] + rng.standard_normal((size, d))

    done = 0
    while done < samples:
        size = min(batch, samples - done)
        u = draw(size)
        points.append(u)
        margins.append(state.margins(u))
        done += size
        if target_cv > 0:
            x, _, fail = weighted()
            p = x.mean()
            if fail.sum() >= min_failures and p > 0 and x.std(ddof=1) / np.sqrt(len(x)) / p < target_cv:
                break
    x, per_bound, fail = weighted()
    p = float(x.mean())
    se = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("inf")
    details = {"failures": int(fail.sum()), "is_samples": len(x) - reused, "reused_samples": reused,
               "cv": se / p if p > 0 else float("inf"), "components": k0, "defensive": defensive,
               "sampler": sampler, "per_bound": _per_bound(state.labels, per_bound, z)}
    return FailureEstimate("is", p, max(p - z * se, 0.0), p + z * se, state.evaluations - start, confidence,
                           details)


def _per_bound(labels: Sequence[str], weighted: np.ndarray, z: float) -> dict[str, dict[str, float]]:
    """Failure probability of each bound alone (its margin < 0 or NaN), with its normal interval, from the
    weighted indicators (N, B) of the same sample."""
    out = {}
    n = weighted.shape[0]
    for j, label in enumerate(labels):
        x = weighted[:, j]
        p = float(x.mean())
        se = float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
        out[label] = {"probability": p, "low": max(p - z * se, 0.0), "high": p + z * se,
                      "sigma": float(-ndtri(p)) if 0 < p < 1 else (float("inf") if p == 0 else float("-inf"))}
    return out


def _distinct(points: list[WorstCase], radius: float = 0.25) -> list[WorstCase]:
    """Worst-case points with a point, ordered by |β|, dropping any within ``radius`` of a kept one."""
    kept: list[WorstCase] = []
    for p in sorted((p for p in points if p.point is not None and np.isfinite(p.beta)), key=lambda p: abs(p.beta)):
        if all(np.linalg.norm(p.point - q.point) > radius for q in kept):
            kept.append(p)
    return kept


def form_importance_sampling(state: LimitState, budget: int, *, explore: float = 0.1, defensive: float = 0.0,
                             seed: int = 0, batch: int = 200, sampler: str = "sobol", target_cv: float = 0.0,
                             max_beta: float = 8.5, reuse_exploration: bool = True,
                             wcd: WorstCaseResult | None = None, wcd_options: dict | None = None,
                             confidence: float = 0.95) -> FailureEstimate:
    """Worst-case points, then :func:`mixture_importance_sampling` around all of them, within ``budget``.

    1. the worst-case search of every bound from the nominal (:func:`worst_case_distances`; a given
       ``wcd`` result is reused, its cost still charged);
    2. with ``explore`` > 0, a scaled-sigma sample of ``explore``·``budget`` points
       (s = clip(β_min/1.6, 1.5, 3.5)) and further searches from its failing points that no known worst-case
       point explains (:func:`~optiyield.reliability.explore.unexplained_starts`): failure regions the
       descent from the nominal cannot see;
    3. importance sampling from a mixture of unit normals at every distinct worst-case point with
       0 < β ≤ ``max_beta`` whose linearized contribution Φ(−β) is at least 1e-4 of the largest (weights half
       equal, half proportional to Φ(−β)); with ``reuse_exploration`` the exploration sample joins it as a
       component N(0, s²I) (it was simulated anyway).
    """
    start = state.evaluations
    reuse = None
    if wcd is None:
        wcd = worst_case_distances(state, **(wcd_options or {}))
        spent = state.evaluations - start
    else:
        spent = wcd.simulations
    points = list(wcd.points)
    explored = 0
    if explore > 0:
        positive = [p.beta for p in points if np.isfinite(p.beta) and p.beta > 0]
        scale = float(np.clip((min(positive) if positive else 3.0) / 1.6, 1.5, 3.5))
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        starts, explored = unexplained_starts(state, points, max(int(explore * budget), 1), scale=scale,
                                              seed=seed + 7919, keep=kept)
        reuse = (kept[0][0], kept[0][1], scale) if kept and reuse_exploration else None
        nominal = [p.nominal_margin for p in wcd.points]
        # the further searches may bring the spending to 60 % of the budget, leaving IS at least 40 %
        per_iteration = max(len(starts), 1) * (state.dimension + len(STEPS))
        iterations = int((0.6 * budget - spent - explored - len(starts) * (state.dimension + 1)) // per_iteration)
        if starts and iterations >= 2:
            options = {**(wcd_options or {}), "max_iter": min(iterations, 10)}
            more, cost = design_points_from(state, starts, nominal, **options)
            explored += cost
            points += [p for p in more if p.status in ("converged", "max_iter")]
    spent += explored
    betas = [p.beta for p in wcd.points]
    usable = [p for p in _distinct(points) if 0 < p.beta <= max_beta]
    if usable:
        top = max(ndtr(-p.beta) for p in usable)
        usable = [p for p in usable if ndtr(-p.beta) >= 1e-4 * top]
    remaining = budget - spent
    if not usable and defensive <= 0:
        # no reachable failing region: report the FORM bound with no sampling
        p = float(sum(ndtr(-b) for b in betas if np.isfinite(b)))
        return FailureEstimate("form+is", p, 0.0, p, spent, confidence,
                               {"betas": betas, "note": "no design point within reach; nothing sampled"})
    if remaining < 2:
        raise ValueError(f"budget {budget} is spent by the worst-case search ({spent} evaluations)")
    contrib = np.array([ndtr(-p.beta) for p in usable])
    weights = 0.5 / len(usable) + 0.5 * contrib / contrib.sum() if usable else None
    est = mixture_importance_sampling(state, [p.point for p in usable], remaining, weights=weights,
                                      defensive=defensive, seed=seed, batch=batch, sampler=sampler,
                                      target_cv=target_cv, reuse=reuse, confidence=confidence)
    details = dict(est.details, wcd_simulations=wcd.simulations, explore_simulations=explored, betas=betas,
                   centres=[{"label": p.label, "beta": p.beta} for p in usable],
                   form_probability=float(sum(ndtr(-b) for b in betas if np.isfinite(b) and b > 0)))
    return FailureEstimate("form+is", est.probability, est.low, est.high, spent + est.simulations, confidence,
                           details)
