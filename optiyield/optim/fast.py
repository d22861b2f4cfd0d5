"""FAST-style Jacobians for AC problems: finite differences on a few anchor outcomes, spread to every outcome by
a regression on the statistical deviates.

Bandler et al. (1990) computed the sensitivities of every outcome with the feasible adjoint sensitivity technique
(FAST) at a small fraction of the cost of perturbing every outcome (PAST). Our simulator has no adjoint of its own
(ngspice's ``.sens`` aborts on BSIM4, DESIGN.md), so this provider gets near-exact per-outcome sensitivities from
few simulations another way. An outcome's Jacobian ∂R/∂x varies smoothly with its deviates z (the common random
numbers), so

    J(z) ≈ A + Σ_k B_k z_k   [+ Σ_k C_k (z_k² − 1) with ``quadratic``]     (per measure and design variable)

is fitted by least squares to forward-difference Jacobians of m anchor outcomes (the first m of the set; with a
Sobol' set they are spread evenly), m = ``anchors_per_dim`` × (d + 1) for d deviate dimensions (× (2d + 1) with
the square terms), and evaluated at every outcome. The cost per Jacobian is n·m simulations instead of PAST's
n·N, all in one engine call; the
responses themselves stay exact (every outcome is still simulated at every iterate). Accuracy against central
differences is measured, not assumed (docs/optimization.md, ``experiments/fast_gradients.py``).
"""

from __future__ import annotations

import numpy as np

from optiyield.optim.evaluator import Evaluator
from optiyield.stats.sampling import UniformSource
from optiyield.stats.variation import OutcomeSet


class FAST:
    """Regression-spread finite-difference Jacobians (n·m simulations per Jacobian, m anchor outcomes); the
    :class:`~optiyield.optim.gradients.GradientProvider` interface, with PAST's steps (``rel_step`` of each range,
    flipped inward at the upper bound)."""

    name = "fast"

    def __init__(self, evaluator: Evaluator, outcomes: OutcomeSet | None, rel_step: float = 2e-3,
                 anchors_per_dim: float = 2.0, quadratic: bool = False) -> None:
        self.evaluator, self.outcomes = evaluator, outcomes
        self.measures = evaluator.errors.measures
        self.steps = rel_step * (evaluator.upper - evaluator.lower)
        self.steps[self.steps == 0] = rel_step
        if outcomes is None:  # nominal design: one outcome, nothing to spread
            self.anchors: OutcomeSet | None = None
            self.features = np.ones((1, 1))
            self.anchor_features = self.features
        else:
            z = outcomes.z
            scale = np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
            u = (z - z.mean(axis=0)) / scale
            self.features = np.hstack([np.ones((len(z), 1)), u] + ([u**2 - 1] if quadratic else []))
            m = int(min(outcomes.n, max(2, np.ceil(anchors_per_dim * self.features.shape[1]))))
            self.anchors = OutcomeSet(outcomes.model, z[:m], UniformSource(outcomes.model.dims, outcomes.method,
                                                                           outcomes.seed))
            self.anchor_features = self.features[:m]

    def jacobian(self, x: np.ndarray, responses: np.ndarray) -> np.ndarray:
        """Jacobian (N, Q, n) at ``x`` whose responses (N, Q) are known: forward differences on the anchors (one
        engine call of n·m rows), spread to every outcome by the fit."""
        h = np.where(x + self.steps > self.evaluator.upper, -self.steps, self.steps)
        points = x[None, :] + np.diag(h)
        if self.anchors is None:  # the nominal design: plain forward differences
            perturbed = self.simulate_on(points, None)
            local = (perturbed - responses[None]) / h[:, None, None]
            return np.where(np.isfinite(local), np.moveaxis(local, 0, -1), 0.0)
        perturbed = self.simulate_on(points, self.anchors)  # (n, m, Q)
        local = (perturbed - responses[: self.anchors.n][None]) / h[:, None, None]  # (n, m, Q)
        local = np.moveaxis(local, 0, -1)  # (m, Q, n)
        ok = np.isfinite(local).all(axis=(1, 2))
        flat = local[ok].reshape(int(ok.sum()), -1)
        coef, *_ = np.linalg.lstsq(self.anchor_features[ok], flat, rcond=None)
        jac = (self.features @ coef).reshape(len(self.features), *local.shape[1:])
        return np.where(np.isfinite(jac), jac, 0.0)

    def simulate_on(self, points: np.ndarray, outcomes: OutcomeSet | None) -> np.ndarray:
        """Responses of M points over some outcomes (None: the nominal): shape (M, m, Q)."""
        result = self.evaluator.responses(np.atleast_2d(points), outcomes)
        return np.stack([result.values[m] for m in self.measures], axis=-1)

    def trial(self, x: np.ndarray) -> np.ndarray:
        """Responses (N, Q) at a trial point, every outcome simulated."""
        return self.simulate_on(x, self.outcomes)[0]

    def start(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r0 = self.trial(x)
        return r0, self.jacobian(x, r0)

    def accept(self, x: np.ndarray, responses: np.ndarray) -> np.ndarray:
        return self.jacobian(x, responses)
