"""Gradient providers: responses and their Jacobians with respect to the design variables.

All providers work on *responses* R (measures) of every outcome: R has shape (N, Q) for N outcomes and
Q measures, the Jacobian J = ∂R/∂x shape (N, Q, n). Spec errors and their gradients follow from
:class:`~optiyield.objective.ErrorModel`. Outcomes are fixed (common random numbers): the outcome
φⁱ = φ⁰ + Δφⁱ moves with the nominal design φ⁰, Δφⁱ stays.

* **PAST** (perturbation approximate sensitivities): each design variable perturbed in turn, the
  outcomes regenerated from the perturbed nominal point; all n+1 points × N outcomes in ONE batched
  engine call. n·N extra simulations per Jacobian.
* **central**: central differences, 2n·N extra simulations.
* **IGAT** (integrated gradient approximation technique): Broyden rank-one updates of every outcome's
  Jacobian from the responses at each new point (no extra simulations), with the update direction
  orthogonalised against the previous n−1 steps (Powell; Gay & Schnabel's projected form), so earlier
  secant conditions are kept and a linear response is reproduced exactly after n independent steps.
  When a step is nearly dependent on the recent ones, a *special iteration* simulates one point along
  the direction that the recent steps have not explored. A PAST refresh every ``refresh`` accepted
  iterations bounds the drift (``refresh=0``: PAST only at the start, as in Bandler et al. 1990).

Perturbations are a fraction ``rel_step`` of each variable's range, flipped inward at a bound.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from optiyield.optim.evaluator import Evaluator
from optiyield.stats.variation import OutcomeSet


class GradientProvider(Protocol):
    """The interface optimizers use: evaluate points, keep a Jacobian at the current center."""

    name: str

    def start(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Responses (N, Q) and Jacobian (N, Q, n) at the starting point."""
        ...

    def trial(self, x: np.ndarray) -> np.ndarray:
        """Responses (N, Q) at a trial point."""
        ...

    def accept(self, x: np.ndarray, responses: np.ndarray) -> np.ndarray:
        """Move the center to an accepted trial point; the Jacobian (N, Q, n) there."""
        ...


class _Base:
    """Shared simulation plumbing: responses as (N, Q) arrays in the error model's measure order."""

    name = "base"

    def __init__(self, evaluator: Evaluator, outcomes: OutcomeSet | None, rel_step: float = 2e-3) -> None:
        self.evaluator, self.outcomes = evaluator, outcomes
        self.measures = evaluator.errors.measures
        self.steps = rel_step * (evaluator.upper - evaluator.lower)
        self.steps[self.steps == 0] = rel_step

    def simulate(self, points: np.ndarray, anchor: np.ndarray | None = None) -> np.ndarray:
        """Responses of M points: shape (M, N, Q); ``anchor``: warm-started from that point's outcomes."""
        if anchor is None:
            result = self.evaluator.responses(np.atleast_2d(points), self.outcomes)
        else:
            result = self.evaluator.responses(np.atleast_2d(points), self.outcomes, anchor=anchor)
        return np.stack([result.values[m] for m in self.measures], axis=-1)

    def _perturbations(self, x: np.ndarray, central: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Perturbed points (forward, or ± for central) and the signed steps actually taken."""
        n = len(x)
        h = self.steps.copy()
        if not central:
            h = np.where(x + h > self.evaluator.upper, -h, h)
        points = [x + np.eye(n)[k] * h[k] for k in range(n)]
        if central:
            points += [x - np.eye(n)[k] * h[k] for k in range(n)]
        return np.array(points), h

    def _finite_difference(self, x: np.ndarray, r0: np.ndarray | None, central: bool) -> tuple[np.ndarray, np.ndarray]:
        n = len(x)
        points, h = self._perturbations(x, central)
        base = r0
        if getattr(self.evaluator, "warm_starts", False):
            # Transient testbenches with warm_start: the perturbed rows AND (forward differences) the base itself
            # are re-run warm from the base outcomes' settled states (cached by their cold runs), so both carry
            # the same short-run settling error and the difference is clean (docs/optimization.md).
            if r0 is None:
                r0 = base = self.simulate(x)[0]
            if self.evaluator.settled(x, self.outcomes) and central:  # ± rows only: the base is not used
                perturbed = self.simulate(points, anchor=x)
            elif self.evaluator.settled(x, self.outcomes):
                warm = self.simulate(np.vstack([x[None, :], points]), anchor=x)
                base, perturbed = warm[0], warm[1:]
            else:  # the base came from the store: no settled state, so everything runs cold
                perturbed = self.simulate(points)
        elif r0 is None:
            responses = self.simulate(np.vstack([x[None, :], points]))
            r0 = base = responses[0]
            perturbed = responses[1:]
        else:
            perturbed = self.simulate(points)
        if central:
            jac = (perturbed[:n] - perturbed[n:]) / (2 * h)[:, None, None]
        else:
            jac = (perturbed - base[None]) / h[:, None, None]
        jac = np.moveaxis(jac, 0, -1)  # (N, Q, n)
        return r0, np.where(np.isfinite(jac), jac, 0.0)

    def trial(self, x: np.ndarray) -> np.ndarray:
        return self.simulate(x)[0]


class PAST(_Base):
    """Forward-difference Jacobians, all perturbations in one engine call."""

    name = "past"

    def start(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._finite_difference(x, None, central=False)

    def accept(self, x: np.ndarray, responses: np.ndarray) -> np.ndarray:
        return self._finite_difference(x, responses, central=False)[1]


class Central(_Base):
    """Central-difference Jacobians (2n perturbed points per Jacobian)."""

    name = "central"

    def start(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._finite_difference(x, None, central=True)

    def accept(self, x: np.ndarray, responses: np.ndarray) -> np.ndarray:
        return self._finite_difference(x, responses, central=True)[1]


class IGAT(_Base):
    """Broyden-updated Jacobians with Powell's orthogonalisation and special iterations."""

    name = "igat"

    def __init__(self, evaluator: Evaluator, outcomes: OutcomeSet | None, rel_step: float = 2e-3,
                 refresh: int = 5, dependence: float = 0.2) -> None:
        super().__init__(evaluator, outcomes, rel_step)
        self.refresh, self.dependence = refresh, dependence
        self.center: np.ndarray | None = None
        self.center_r: np.ndarray | None = None
        self.jac: np.ndarray | None = None
        self.directions: list[np.ndarray] = []  # recent steps, scaled to unit variable ranges
        self.accepted = 0
        self.special_iterations = 0
        self.restarts = 0
        self.broyden_updates = 0
        self._last_independent = True

    def start(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._recenter(x, None)

    def restart(self, x: np.ndarray, responses: np.ndarray) -> np.ndarray:
        """A fresh Jacobian (:meth:`_fresh_jacobian`: PAST, n·N simulations) at the accepted point ``x`` (its
        responses are known), with the Broyden history cleared; used when the trust region stalls on a stale
        Jacobian."""
        self.restarts += 1
        return self._recenter(x, responses)[1]

    def _recenter(self, x: np.ndarray, responses: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Fresh responses and Jacobian at ``x`` (``responses`` when already known) as the new center,
        with the Broyden history cleared."""
        r, jac = self._fresh_jacobian(x, responses)
        self.center, self.center_r, self.jac = x.copy(), r, jac
        self.directions = []
        return r, jac

    def _fresh_jacobian(self, x: np.ndarray, responses: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Responses and the Jacobian a start, refresh or restart begins from: PAST's forward differences."""
        return self._finite_difference(x, responses, central=False)

    def _scaled(self, dx: np.ndarray) -> np.ndarray:
        return dx / np.maximum(self.evaluator.upper - self.evaluator.lower, 1e-300)

    def update(self, x: np.ndarray, responses: np.ndarray) -> bool:
        """Broyden update of every outcome's Jacobian with the secant from the center to ``x``.

        The update direction is the step's part orthogonal to the previous n−1 steps (in variables
        scaled to their ranges). Returns False when the step is (nearly) dependent on them, i.e. it
        brings no new direction; the secant along the step is then still enforced.
        """
        assert self.center is not None and self.center_r is not None and self.jac is not None
        dx = x - self.center
        if not np.any(dx):
            return True
        s = self._scaled(dx)
        n = len(x)
        basis = self.directions[-(n - 1):] if n > 1 else []
        w = s.copy()
        for q in basis:  # Gram-Schmidt against the recent (orthonormal) directions
            w -= (w @ q) * q
        independent = np.linalg.norm(w) > self.dependence * np.linalg.norm(s)
        if not independent:
            w = s  # plain Broyden: secant holds, older conditions may be disturbed
        # J_new = J + (ΔR − J Δx) wᵀ / (wᵀ Δx), in scaled variables: Δx = D s, u = D⁻¹ w / (w·s)
        residual = responses - self.center_r - self.jac @ dx  # (N, Q)
        ok = np.isfinite(residual).all(axis=1)
        u = (w / (w @ s)) / np.maximum(self.evaluator.upper - self.evaluator.lower, 1e-300)
        self.jac[ok] += residual[ok][:, :, None] * u[None, None, :]
        self.broyden_updates += 1
        if independent:
            self.directions.append(w / np.linalg.norm(w))
            self.directions = self.directions[-(n - 1):] if n > 1 else []
        return bool(independent)

    def trial(self, x: np.ndarray) -> np.ndarray:
        r = self.simulate(x)[0]
        self._last_independent = self.update(x, r)
        return r

    def accept(self, x: np.ndarray, responses: np.ndarray) -> np.ndarray:
        assert self.jac is not None
        self.accepted += 1
        if self.refresh and self.accepted % self.refresh == 0:
            return self.start(x)[1]
        self.center, self.center_r = x.copy(), responses
        if len(x) > 1 and not self._last_independent:
            self._special_iteration(x)
        return self.jac

    def _special_iteration(self, x: np.ndarray) -> None:
        """Powell's special iteration: probe the direction the recent steps have not explored."""
        n = len(x)
        basis = np.array(self.directions) if self.directions else np.zeros((0, n))
        projector = np.eye(n) - basis.T @ basis
        candidates = projector @ np.eye(n)
        d = candidates[int(np.argmax(np.linalg.norm(candidates, axis=0)))]
        d /= np.linalg.norm(d)
        step = 10 * d * self.steps  # ten perturbation steps along d (d is in range-scaled variables)
        probe = self.evaluator.clip(x + step)
        if np.allclose(probe, x):
            probe = self.evaluator.clip(x - step)
        self.special_iterations += 1
        r = self.simulate(probe)[0]
        self.update(probe, r)


class FastIGAT(IGAT):
    """IGAT whose start, refreshes and restarts are FAST Jacobians (optim/fast.py: n·m simulations on m anchor
    outcomes) instead of PAST's n·N: Broyden updates between them as in :class:`IGAT`."""

    name = "igat-fast"

    def __init__(self, evaluator: Evaluator, outcomes: OutcomeSet | None, rel_step: float = 2e-3,
                 refresh: int = 5, dependence: float = 0.2) -> None:
        from optiyield.optim.fast import FAST

        super().__init__(evaluator, outcomes, rel_step, refresh, dependence)
        self.fast = FAST(evaluator, outcomes, rel_step=rel_step)

    def _fresh_jacobian(self, x: np.ndarray, responses: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        r = self.fast.trial(x) if responses is None else responses
        return r, self.fast.jacobian(x, r)


def make_provider(method: str, evaluator: Evaluator, outcomes: OutcomeSet | None, refresh: int = 5) -> _Base:
    """A provider by name: ``past``, ``igat``, ``igat-fast``, ``central`` or ``fast`` (optim/fast.py)."""
    if method == "past":
        return PAST(evaluator, outcomes)
    if method == "central":
        return Central(evaluator, outcomes)
    if method == "igat":
        return IGAT(evaluator, outcomes, refresh=refresh)
    if method == "igat-fast":
        return FastIGAT(evaluator, outcomes, refresh=refresh)
    if method == "fast":
        from optiyield.optim.fast import FAST

        return FAST(evaluator, outcomes)
    raise ValueError(f"unknown gradient method {method!r} (expected past, igat, igat-fast, central or fast)")
