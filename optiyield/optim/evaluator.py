"""The evaluator: design points (× outcomes) → simulated responses, counted and journaled.

Every optimizer asks the evaluator, never the engine, so simulations are counted in one place
(DESIGN §2). A request for M design points and an outcome set of N samples becomes ONE engine call of
M·N rows (batched copies, all cores), with rows already in the store served from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optiyield.montecarlo import sample_matrix
from optiyield.objective import ErrorModel, passes
from optiyield.sim.engine import FAILED, every_sample_failed
from optiyield.sim.job import SimJob
from optiyield.sim.meter import Meter
from optiyield.sim.protocol import Backend, RunOutcome
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet
from optiyield.store import Store


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


class Evaluator:
    """Simulates a spec's testbench at design points, optionally over a fixed outcome set (CRN).

    ``meter`` counts every sample it simulates or serves from the store (and every probe). Simulated
    samples go to the store as soon as each is final (an interrupted call keeps them). When every sample
    simulated so far has failed, :class:`~optiyield.sim.engine.EverySampleFailed` stops the caller."""

    def __init__(self, spec: Spec, engine: Backend | None, store: Store | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.spec, self.engine, self.store, self.progress = spec, engine, store, progress
        self.names = tuple(spec.file.design)
        self.lower, self.upper = spec.design_bounds
        start = spec.design_start
        self.x0 = np.array([start[n] for n in self.names], dtype=float)
        self.errors = ErrorModel.from_specs(spec.file.specs)
        self.meter = Meter()
        self.job = spec.testbench.job(spec.parameters)

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

    @property
    def warm_starts(self) -> bool:
        """True when finite-difference rows can start from their base outcome's settled state: a testbench
        with ``warm_start`` on an engine that keeps settled states (the local one; a Dask cluster runs every
        row cold)."""
        return self.job.warm_start is not None and bool(getattr(self.engine, "warm_starts", False))

    def settled(self, point: np.ndarray, outcomes: OutcomeSet | None = None) -> bool:
        """True when every outcome of design ``point`` has a settled state to warm-start from (it was
        simulated cold by this evaluator's engine, not served from the store)."""
        if not self.warm_starts:
            return False
        return bool(self.engine.settled(self.job, self.rows(np.atleast_2d(point), outcomes)).all())  # type: ignore

    def responses(self, points: np.ndarray, outcomes: OutcomeSet | None = None,
                  anchor: np.ndarray | None = None) -> Responses:
        """Simulate (or fetch from the store) M design points × N outcomes in one engine call.

        ``anchor`` (a design point, with :attr:`warm_starts`): outcome i of every point starts from the settled
        state of outcome i at ``anchor`` (simulated cold before by this engine) and runs the short warm
        transient. Warm responses differ from cold ones by the warm run's settling error, so they bypass the
        store (neither served from it nor saved); the meter counts them as simulations.
        """
        points = np.atleast_2d(np.asarray(points, dtype=float))
        m = points.shape[0]
        rows = self.rows(points, outcomes)
        count = rows.shape[0]
        warm = anchor is not None and self.warm_starts
        measures = self.job.measures
        values = {name: np.full(count, np.nan) for name in measures}
        status = np.full(count, FAILED, dtype=object)
        reason = np.full(count, "", dtype=object)
        todo = np.ones(count, dtype=bool)
        if self.store is not None and not warm:
            found, stored, stored_status, stored_reason = self.store.lookup(rows)
            for name in measures:
                values[name][found] = stored[name][found]
            status[found] = stored_status[found]
            reason[found] = stored_reason[found]
            todo = ~found
            self.meter.add(cached=int(found.sum()))
            if self.progress and found.any():
                self.progress(int(found.sum()))
        if todo.any():
            if self.engine is None:
                raise RuntimeError("this evaluator has no engine: it can only read the store")
            new = rows[todo]
            store = self.store
            if warm:
                anchors = np.tile(self.rows(np.atleast_2d(anchor), outcomes), (m, 1))[todo]
                result = self.engine.run(self.job, new, self.progress, None, anchors=anchors)  # type: ignore
            else:
                sink = None if store is None else (lambda i, v, s, r: store.save(new[i], v, s, r))  # at once
                result = self.engine.run(self.job, new, self.progress, sink)
            for name in measures:
                values[name][todo] = result.values[name]
            status[todo] = result.status
            reason[todo] = result.reason
            self.meter.add(simulations=int(todo.sum()), runs=result.runs, ngspice_seconds=result.ngspice_seconds,
                           failed=result.n_failed)
            if self.meter.failed == self.meter.simulations:
                raise every_sample_failed(result.status, result.reason, "simulated so far")
        shape = (m, count // m)
        return Responses(values={k: v.reshape(shape) for k, v in values.items()}, status=status.reshape(shape),
                         reason=reason.reshape(shape), rows=rows)

    def passing(self, x: np.ndarray, outcomes: OutcomeSet) -> np.ndarray:
        """(N,) True where design ``x`` meets every spec on outcome i (simulated through :meth:`responses`)."""
        return passes(self.responses(x, outcomes).errors(self.errors)[0])

    def probe(self, job: SimJob, row: np.ndarray) -> RunOutcome:
        """One single-sample run of a job variant (e.g. ``.op`` only with device quantities saved) for the
        region check or an analytical sizer; counted as one simulation, not stored (its results are
        waveforms, not measures)."""
        if self.engine is None:
            raise RuntimeError("this evaluator has no engine: it cannot probe")
        outcome = self.engine.probe(job, row)
        self.meter.add(simulations=1, runs=1, ngspice_seconds=outcome.seconds, failed=0 if outcome.ok else 1)
        return outcome
