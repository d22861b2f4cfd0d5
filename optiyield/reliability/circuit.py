"""A circuit limit state: standard-normal u → the spec's statistical parameters → batched ngspice → margins.

Each deviate column of the spec's statistical model (:class:`~optiyield.stats.variation.StatisticalModel`)
is one standard-normal coordinate u_i: a normal draw takes z = u (global normal draws then correlated by
the Cholesky factor of their correlation matrix), a uniform tolerance z = 2Φ(u) − 1 (uniform in (−1, 1)).
This is the same distribution as :meth:`StatisticalModel.deviates` of uniforms, written with ``erf`` so it
stays exact far in the tails. The margin of a bound is minus the spec's scaled error
(:mod:`optiyield.objective`): (R − S_l)/s for a lower bound, (S_u − R)/s for an upper bound, so gradients
of different specs are comparable; a failed simulation or undefined measure gives NaN.

This adapter is deliberately thin (it calls :meth:`Engine.run` directly); the engine protocol may move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import erf

from optiyield.objective import ErrorModel
from optiyield.reliability.limit_state import LimitState
from optiyield.sim.engine import FAILED, Engine
from optiyield.spec import Spec
from optiyield.stats.variation import StatisticalModel

__all__ = ["CircuitLimitState", "standard_to_deviates"]


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


class CircuitLimitState(LimitState):
    """The limit state of a spec at a design point, simulated through the batched engine.

    ``design`` overrides design-variable values (default: the spec's start point). One call of
    :meth:`margins` is one :meth:`Engine.run` of all its rows. ``last_measures`` keeps the measures of the
    last batch (for reports and brute-force caches).
    """

    def __init__(self, spec: Spec, engine: Engine, design: Mapping[str, float] | None = None,
                 specs: Sequence[str] | None = None) -> None:
        """Build the limit state of ``spec`` at ``design``, simulated by ``engine``; ``specs`` keeps only the
        bounds of those measures (default: every spec)."""
        self.spec, self.engine = spec, engine
        chosen = dict(spec.file.specs)
        if specs is not None:
            unknown = [n for n in specs if n not in chosen]
            if unknown or not specs:
                raise ValueError(f"specs must name some of {', '.join(chosen)}; got {list(specs)!r}")
            chosen = {n: chosen[n] for n in specs}
        self.errors = ErrorModel.from_specs(chosen)
        super().__init__(spec.model.dims, [f.label for f in self.errors.functions])
        if spec.model.dims == 0:
            raise ValueError(f"spec {spec.name!r} has no statistical variation")
        self.nominal = spec.nominal(dict(design or {}))
        self.job = spec.testbench.job(spec.parameters)
        self.last_measures: dict[str, np.ndarray] = {}
        self.failed_simulations = 0

    def parameters(self, u: np.ndarray) -> np.ndarray:
        """Per-sample parameter rows (N, P) in ``spec.parameters`` order (SI) for standard-normal ``u``."""
        z = standard_to_deviates(self.spec.model, np.atleast_2d(u))
        varied = self.spec.model.apply(self.nominal, z)
        n = z.shape[0]
        return np.column_stack([varied.get(p, np.full(n, self.nominal[p])) for p in self.spec.parameters])

    def measures(self, u: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Simulate ``u`` (one engine call): measure values (NaN where failed) and the ok mask, shape (N,)."""
        result = self.engine.run(self.job, self.parameters(u))
        ok = result.status != FAILED
        values = {name: np.where(ok, result.values[name], np.nan) for name in self.errors.measures}
        return values, ok

    def margins_of(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Scaled margins (N, B) of measure values; NaN where a measure is undefined."""
        columns = [-f.sign * (np.asarray(values[f.measure], dtype=float) - f.limit) / f.scale
                   for f in self.errors.functions]
        return np.column_stack(columns)

    def _margins(self, u: np.ndarray) -> np.ndarray:
        values, ok = self.measures(u)
        self.last_measures = values
        self.failed_simulations += int((~ok).sum())
        return self.margins_of(values)
