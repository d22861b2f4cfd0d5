"""A circuit limit state: standard-normal u → the spec's statistical parameters → batched ngspice → margins.

Each deviate column of the spec's statistical model (:class:`~optiyield.stats.variation.StatisticalModel`)
is one standard-normal coordinate u_i: a normal draw takes z = u (global normal draws then correlated by
the Cholesky factor of their correlation matrix), a uniform tolerance z = 2Φ(u) − 1 (uniform in (−1, 1)).
This is the same distribution as :meth:`StatisticalModel.deviates` of uniforms, written with ``erf`` so it
stays exact far in the tails. The margin of a bound is minus the spec's scaled error
(:mod:`optiyield.objective`): (R − S_l)/s for a lower bound, (S_u − R)/s for an upper bound, so gradients
of different specs are comparable; a failed simulation or undefined measure gives NaN.

Every batch goes through an :class:`~optiyield.optim.evaluator.Evaluator` (one engine call per batch): its
meter counts the simulations, and with a store (``optiyield run``) every sample is journaled and a
repeated point is served from the store. :meth:`CircuitLimitState.at_design` evaluates other design
points in the same call (the design-point sensitivities of the centering step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import erf

from optiyield.objective import ErrorModel
from optiyield.optim.evaluator import Evaluator
from optiyield.reliability.limit_state import LimitState
from optiyield.sim.protocol import Backend
from optiyield.spec import Spec
from optiyield.stats.sampling import UniformSource
from optiyield.stats.variation import OutcomeSet, StatisticalModel

__all__ = ["CircuitLimitState", "deviates_to_standard", "standard_outcomes", "standard_to_deviates"]


def standard_to_deviates(model: StatisticalModel, u: np.ndarray) -> np.ndarray:
    """Standardized deviates (as :meth:`StatisticalModel.deviates` makes) of standard-normal points ``u``."""
    u = np.asarray(u, dtype=float)
    if u.ndim != 2 or u.shape[1] != model.dims:
        raise ValueError(f"standard-normal points must have shape (N, {model.dims}), got {u.shape}")
    z = u.copy()
    for draw in model.draws:
        if draw.dist == "uniform":
            cols = model.columns(draw.name)
            z[:, cols] = erf(u[:, cols] / np.sqrt(2.0))
    names = model.correlated_draws
    if names:
        cols = np.array([model.columns(n).start for n in names], dtype=int)
        chol = np.linalg.cholesky(model.correlation_matrix)
        z[:, cols] = u[:, cols] @ chol.T
    return z


def deviates_to_standard(model: StatisticalModel, z: np.ndarray) -> np.ndarray:
    """The inverse of :func:`standard_to_deviates`: standard-normal points of deviates ``z`` (N, d)."""
    from scipy.special import erfinv

    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[1] != model.dims:
        raise ValueError(f"deviates must have shape (N, {model.dims}), got {z.shape}")
    u = z.copy()
    for draw in model.draws:
        if draw.dist == "uniform":
            cols = model.columns(draw.name)
            u[:, cols] = np.sqrt(2.0) * erfinv(z[:, cols])
    names = model.correlated_draws
    if names:
        cols = np.array([model.columns(n).start for n in names], dtype=int)
        chol = np.linalg.cholesky(model.correlation_matrix)
        u[:, cols] = np.linalg.solve(chol, z[:, cols].T).T
    return u


def standard_outcomes(model: StatisticalModel, u: np.ndarray) -> OutcomeSet:
    """An :class:`OutcomeSet` holding the deviates of standard-normal points ``u`` (N, d), so the evaluator
    simulates exactly those outcomes (at any design point)."""
    z = standard_to_deviates(model, np.atleast_2d(u))
    return OutcomeSet(model, z, UniformSource(model.dims, "mc", 0))


class CircuitLimitState(LimitState):
    """The limit state of a spec at a design point, simulated through an evaluator (or an engine).

    ``runner`` is an :class:`Evaluator` (its meter counts, its store journals) or a back-end (an
    :class:`~optiyield.sim.engine.Engine`; an evaluator without a store is made for it). ``design``
    overrides design-variable values (default: the spec's start point). One call of :meth:`margins` is one
    engine call of all its rows. ``last_measures`` keeps the measures of the last batch (for reports and
    brute-force caches).
    """

    def __init__(self, spec: Spec, runner: Evaluator | Backend, design: Mapping[str, float] | None = None,
                 specs: Sequence[str] | None = None) -> None:
        """Build the limit state of ``spec`` at ``design``, simulated by ``runner``; ``specs`` keeps only the
        bounds of those measures (default: every spec)."""
        self.spec = spec
        self.evaluator = runner if isinstance(runner, Evaluator) else Evaluator(spec, runner)
        chosen = dict(spec.file.specs)
        if specs is not None:
            unknown = [n for n in specs if n not in chosen]
            if unknown or not specs:
                raise ValueError(f"specs must name some of {', '.join(chosen)}; got {list(specs)!r}")
            chosen = {n: chosen[n] for n in specs}
        self.errors = ErrorModel.from_specs(chosen)
        if spec.model.dims == 0:
            raise ValueError(f"spec {spec.name!r} has no statistical variation")
        super().__init__(spec.model.dims, [f.label for f in self.errors.functions])
        start = dict(spec.design_start)
        start.update({k: float(v) for k, v in (design or {}).items()})
        self.design = start
        self.x = np.array([start[n] for n in self.evaluator.names], dtype=float)
        self.nominal = spec.nominal(start)
        self.last_measures: dict[str, np.ndarray] = {}
        self.failed_simulations = 0

    @property
    def engine(self) -> Backend | None:
        """The evaluator's back-end."""
        return self.evaluator.engine

    def parameters(self, u: np.ndarray) -> np.ndarray:
        """Per-sample parameter rows (N, P) in ``spec.parameters`` order (SI) for standard-normal ``u``."""
        return self.evaluator.rows(self.x, standard_outcomes(self.spec.model, u))

    def point_values(self, u: np.ndarray) -> dict[str, float]:
        """The parameter values (SI, name → value) of one standard-normal point ``u`` (d,)."""
        row = self.parameters(np.atleast_2d(u))[0]
        return {name: float(v) for name, v in zip(self.spec.parameters, row, strict=True)}

    def measures(self, u: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Simulate ``u`` (one engine call): measure values (NaN where failed) and the ok mask, shape (N,)."""
        values, ok = self.measures_at(self.x[None, :], u)
        return {k: v[0] for k, v in values.items()}, ok[0]

    def measures_at(self, points: np.ndarray, u: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Simulate M design points (M, n) × the standard-normal points ``u`` (N, d) in one engine call:
        measure values of shape (M, N) (NaN where failed) and the ok mask (M, N)."""
        responses = self.evaluator.responses(np.atleast_2d(points), standard_outcomes(self.spec.model, u))
        ok = responses.ok
        values = {name: np.where(ok, responses.values[name], np.nan) for name in self.errors.measures}
        return values, ok

    def margins_of(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Scaled margins (…, B) of measure values (any shape); NaN where a measure is undefined."""
        columns = [-f.sign * (np.asarray(values[f.measure], dtype=float) - f.limit) / f.scale
                   for f in self.errors.functions]
        return np.stack(columns, axis=-1)

    def margins_at(self, points: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Margins (M, N, B) of M design points × N standard-normal points, one engine call; counted like
        :meth:`margins` (M·N evaluations, one batch)."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        values, ok = self.measures_at(points, u)
        self.evaluations += int(ok.size)
        self.batches += 1
        self.failed_simulations += int((~ok).sum())
        return self.margins_of(values)

    def _margins(self, u: np.ndarray) -> np.ndarray:
        values, ok = self.measures(u)
        self.last_measures = values
        self.failed_simulations += int((~ok).sum())
        return self.margins_of(values)

    def at_design(self, design: Mapping[str, float]) -> CircuitLimitState:
        """The same limit state (same evaluator and bounds) at another design point."""
        other = CircuitLimitState(self.spec, self.evaluator, design,
                                  specs=list(dict.fromkeys(f.measure for f in self.errors.functions)))
        return other
