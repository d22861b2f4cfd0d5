"""The evaluator: design points (× outcomes) → simulated responses, counted and journaled.

Every optimizer asks the evaluator, never the engine, so simulations are counted in one place
(DESIGN §2). A request for M design points and an outcome set of N samples becomes ONE engine call of
M·N rows (batched copies, all cores), with rows already in the store served from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from optiyield.montecarlo import sample_matrix
from optiyield.objective import ErrorModel
from optiyield.sim.engine import FAILED, Engine
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet
from optiyield.store import Store, fingerprint


@dataclass
class Responses:
    """Simulated responses of M design points × N outcomes: ``values[measure]`` of shape (M, N),
    ``status`` (``ok``/``retried``/``failed``) and ``reason`` of each sample, and the parameter
    ``rows`` (M·N, P) that were simulated."""

    values: dict[str, np.ndarray]
    status: np.ndarray
    reason: np.ndarray
    rows: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """(M, N) True where the simulation succeeded."""
        return self.status != FAILED

    def errors(self, model: ErrorModel) -> np.ndarray:
        """Spec errors, shape (M, N, J)."""
        return model.errors(self.values)


@dataclass
class Counters:
    """What evaluations cost: samples simulated by ngspice, samples served from the store, ngspice
    processes, summed ngspice process time and wall time of engine calls (s)."""

    simulations: int = 0
    cached: int = 0
    runs: int = 0
    ngspice_seconds: float = 0.0
    wall_seconds: float = 0.0
    failed: int = 0
    requests: int = 0
    history: list[int] = field(default_factory=list)


class Evaluator:
    """Simulates a spec's testbench at design points, optionally over a fixed outcome set (CRN)."""

    def __init__(self, spec: Spec, engine: Engine, store: Store | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.spec, self.engine, self.store, self.progress = spec, engine, store, progress
        self.names = tuple(spec.file.design)
        self.lower, self.upper = spec.design_bounds
        start = spec.design_start
        self.x0 = np.array([start[n] for n in self.names], dtype=float)
        self.errors = ErrorModel.from_specs(spec.file.specs)
        self.counters = Counters()
        self._job = spec.testbench.job(spec.parameters)

    @property
    def n(self) -> int:
        """Number of design variables."""
        return len(self.names)

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Project onto the design-variable bounds."""
        return np.clip(x, self.lower, self.upper)

    def design(self, x: np.ndarray) -> dict[str, float]:
        """A design vector as a name → value mapping."""
        return {name: float(v) for name, v in zip(self.names, x, strict=True)}

    def rows(self, points: np.ndarray, outcomes: OutcomeSet | None) -> np.ndarray:
        """Parameter rows (M·N, P) for M design points over the outcomes (N = 1 nominal when None)."""
        blocks = []
        for x in np.atleast_2d(points):
            design = self.design(x)
            if outcomes is None:
                nominal = self.spec.nominal(design)
                blocks.append(np.array([[nominal[p] for p in self.spec.parameters]]))
            else:
                blocks.append(sample_matrix(self.spec, outcomes, design))
        return np.vstack(blocks)

    def responses(self, points: np.ndarray, outcomes: OutcomeSet | None = None) -> Responses:
        """Simulate (or fetch from the store) M design points × N outcomes in one engine call."""
        points = np.atleast_2d(np.asarray(points, dtype=float))
        m = points.shape[0]
        rows = self.rows(points, outcomes)
        count = rows.shape[0]
        measures = self._job.measures
        values = {name: np.full(count, np.nan) for name in measures}
        status = np.full(count, FAILED, dtype=object)
        reason = np.full(count, "", dtype=object)
        todo = np.ones(count, dtype=bool)
        if self.store is not None:
            found, stored, stored_status, stored_reason = self.store.lookup(rows)
            for name in measures:
                values[name][found] = stored[name][found]
            status[found] = stored_status[found]
            reason[found] = stored_reason[found]
            todo = ~found
            self.counters.cached += int(found.sum())
            if self.progress and found.any():
                self.progress(int(found.sum()))
        if todo.any():
            result = self.engine.run(self._job, rows[todo], self.progress)
            for name in measures:
                values[name][todo] = result.values[name]
            status[todo] = result.status
            reason[todo] = result.reason
            self.counters.simulations += int(todo.sum())
            self.counters.runs += result.runs
            self.counters.ngspice_seconds += result.ngspice_seconds
            self.counters.wall_seconds += result.wall_seconds
            self.counters.failed += result.n_failed
            if self.store is not None:
                self.store.save(rows[todo], result.values, result.status, result.reason)
        self.counters.requests += 1
        self.counters.history.append(self.counters.simulations)
        shape = (m, count // m)
        return Responses(values={k: v.reshape(shape) for k, v in values.items()}, status=status.reshape(shape),
                         reason=reason.reshape(shape), rows=rows)

    def store_fingerprint(self) -> str:
        """Identity of this testbench + parameter order, for :class:`~optiyield.store.Store`."""
        tb = self.spec.testbench
        # parasitics: regression changes the circuit without changing the netlist file (docs/testbench.md)
        extra = ()
        if tb.parasitics is not None:
            extra = (f"parasitics: {tb.parasitics.model_dump_json(include={'cgs', 'cgd', 'cds'})}",)
        if tb.compat:  # an ngspice compatibility mode can change how the same netlist is read
            extra += (f"compat: {tb.compat}",)
        return fingerprint(tb.netlist.path.read_text(), tb.netlist.hoisted + extra,
                           {k: v.model_dump() for k, v in tb.measures.items()}, tb.options, self.spec.parameters)
