"""Analytic limit states with known failure probabilities: the test suite of the high-sigma estimators.

* ``linear_<S>s_<d>d``: one bound β − a·u (a a seeded unit vector); p = Φ(−β), β = S.
* ``curved_<S>s_<d>d`` / ``concave_<S>s_<d>d``: a parabolic bound β − u₀ + (κ/2)·Σ_{i≥1} u_i² with κ > 0
  (failure region inside a paraboloid, FORM's Φ(−β) overestimates) or κ < 0 (it underestimates); the
  exact p = E[Φ(−β − κ s/2)] with s ~ χ²(d − 1) by 1-D quadrature, and β is solved so that p = Φ(−S).
* ``two_region_<S>s_<d>d``: a two-sided window −β ≤ a·u ≤ β as two bounds (a gain window): two failure
  regions on opposite sides, p = 2Φ(−β), β solved so that p = Φ(−S).
* ``two_region_orth_<S>s_<d>d``: two bounds on orthogonal directions a, b (two specs):
  p = 1 − (1 − Φ(−β))², β solved so that p = Φ(−S).

``S`` is the sigma level of the exact answer, −Φ⁻¹(p).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, stats
from scipy.special import ndtr, ndtri

from optiyield.reliability.limit_state import FunctionLimitState

__all__ = ["AnalyticCase", "case", "suite"]


@dataclass(frozen=True)
class AnalyticCase:
    """A limit state with its exact failure probability ``probability`` (sigma level ``sigma``).

    ``make()`` returns a fresh :class:`FunctionLimitState` (its evaluation counter at 0); ``regions`` is the
    number of separate failure regions; ``beta`` the exact worst-case distance of each bound.
    """

    name: str
    kind: str
    dimension: int
    sigma: float
    probability: float
    regions: int
    beta: tuple[float, ...]
    build: Callable[[], FunctionLimitState]

    def make(self) -> FunctionLimitState:
        """A fresh limit state of this case."""
        return self.build()


def _unit(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal(d)
    return a / np.linalg.norm(a)


def _parabolic_probability(beta: float, kappa: float, d: int) -> float:
    """P[β − u₀ + (κ/2)s < 0], s ~ χ²(d − 1), u₀ standard normal."""
    if d == 1:
        return float(ndtr(-beta))
    chi = stats.chi2(d - 1)

    def integrand(s: float) -> float:
        return float(ndtr(-beta - 0.5 * kappa * s)) * chi.pdf(s)

    hi = chi.ppf(1 - 1e-15)
    value, _ = integrate.quad(integrand, 0.0, hi, limit=400, epsabs=0.0, epsrel=1e-10,
                              points=[chi.mean()])
    return value


def _solve(target: float, p_of_beta: Callable[[float], float]) -> float:
    """β with p_of_beta(β) = target (p decreasing in β)."""
    return float(optimize.brentq(lambda b: np.log(max(p_of_beta(b), 1e-300)) - np.log(target), 0.5, 12.0, xtol=1e-12))


def linear(sigma: float, d: int, seed: int = 0) -> AnalyticCase:
    """One linear bound at distance ``sigma``."""
    a = _unit(d, seed)
    p = float(ndtr(-sigma))
    return AnalyticCase(f"linear_{sigma:g}s_{d}d", "linear", d, sigma, p, 1, (sigma,),
                        lambda: FunctionLimitState(lambda u: (sigma - u @ a)[:, None], d, ["linear"]))


def parabolic(sigma: float, d: int, kappa: float, seed: int = 0) -> AnalyticCase:
    """A parabolic bound with curvature ``kappa`` whose exact sigma level is ``sigma``."""
    if d < 2:
        raise ValueError("a curved case needs d >= 2")
    target = float(ndtr(-sigma))
    beta = _solve(target, lambda b: _parabolic_probability(b, kappa, d))
    rot = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))[0]  # a random rotation

    def fn(u: np.ndarray) -> np.ndarray:
        v = u @ rot
        return (beta - v[:, 0] + 0.5 * kappa * np.sum(v[:, 1:] ** 2, axis=1))[:, None]

    kind = "curved" if kappa > 0 else "concave"
    return AnalyticCase(f"{kind}_{sigma:g}s_{d}d", kind, d, sigma, _parabolic_probability(beta, kappa, d), 1,
                        (beta,), lambda: FunctionLimitState(fn, d, ["parabolic"]))


def window(sigma: float, d: int, seed: int = 0) -> AnalyticCase:
    """A two-sided window −β ≤ a·u ≤ β (two bounds, two opposite failure regions)."""
    a = _unit(d, seed)
    beta = float(-ndtri(0.5 * ndtr(-sigma)))

    def fn(u: np.ndarray) -> np.ndarray:
        x = u @ a
        return np.column_stack([beta - x, beta + x])

    return AnalyticCase(f"two_region_{sigma:g}s_{d}d", "two_region", d, sigma, float(2 * ndtr(-beta)), 2,
                        (beta, beta), lambda: FunctionLimitState(fn, d, ["a·u ≤ β", "a·u ≥ −β"]))


def orthogonal(sigma: float, d: int, seed: int = 0) -> AnalyticCase:
    """Two bounds on orthogonal directions (two specs failing in different regions)."""
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, 2)))[0]
    target = float(ndtr(-sigma))
    beta = _solve(target, lambda b: 1.0 - (1.0 - float(ndtr(-b))) ** 2)

    def fn(u: np.ndarray) -> np.ndarray:
        return beta - u @ q

    p = 1.0 - (1.0 - float(ndtr(-beta))) ** 2
    return AnalyticCase(f"two_region_orth_{sigma:g}s_{d}d", "two_region", d, sigma, p, 2, (beta, beta),
                        lambda: FunctionLimitState(fn, d, ["a·u ≤ β", "b·u ≤ β"]))


def case(name: str) -> AnalyticCase:
    """The suite case called ``name``."""
    for c in suite(quick=False):
        if c.name == name:
            return c
    raise KeyError(f"no analytic case {name!r}")


@functools.cache
def _suite(quick: bool) -> tuple[AnalyticCase, ...]:
    """The suite, built once per ``quick`` value."""
    if quick:
        return (linear(4, 2), parabolic(4, 2, 0.2), window(4, 10))
    cases = [linear(s, d) for s in (4, 5, 6) for d in (2, 10, 30, 50)]
    cases += [parabolic(s, d, 0.2) for s in (4, 5, 6) for d in (2, 10)]
    cases += [parabolic(s, d, -0.05) for s in (4, 6) for d in (2, 10)]
    cases += [window(s, d) for s in (4, 5, 6) for d in (2, 10, 50)]
    cases += [orthogonal(s, d) for s in (4, 6) for d in (10, 50)]
    return tuple(cases)


def suite(quick: bool = False) -> list[AnalyticCase]:
    """The analytic suite: linear at 4/5/6 σ in 2/10/30/50 dimensions, curved and concave parabolic
    bounds, two-sided windows and orthogonal pairs (two failure regions) up to 50 dimensions. ``quick``
    keeps a handful (for smoke tests). Built once (the curved cases solve for β by quadrature)."""
    return list(_suite(bool(quick)))
