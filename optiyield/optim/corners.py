"""Corners in the evaluator: every design point is simulated at every PVT corner of the spec, in batches.

:class:`CornerEvaluator` is an :class:`~optiyield.optim.evaluator.Evaluator` whose responses have a corner axis
folded into the measure names: ``gain_db@ss/VDD=-10%/125C`` is the gain at that corner, and its error model holds
one error function per (corner, spec bound). So the run steps need no change to work across corners:

* **minimax** minimises max over corners × bounds of w·e (the worst corner counts, not the average);
* **yield** (one-sided ℓ1, baselines, verify) counts an outcome as passing only when it passes at every corner;
* the gradient providers (PAST, IGAT) differentiate every corner's responses like any others.

Outcomes are common random numbers across corners: outcome i has the same deviates at every corner; a corner
fixes its parameters (process, supply) and samples the rest (``monte_carlo: mismatch`` only the mismatch entries,
``true`` every entry, ``false`` none: the corner's nominal point stands for every outcome).

Rows go to the engine grouped by model-library section (one job each, and one per temperature when temperatures
are decks of their own); supply and process parameters are row columns (copies of one deck); with temperatures in
one process (:mod:`optiyield.sim.ngspice.temperature`) a row's temperatures are adjacent so that they share a deck.
The store keys a corner row by ``[section, temperature, parameters…]`` under a fingerprint that covers every corner
and every job.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optiyield.corners import Corner, CornerSet
from optiyield.montecarlo import MonteCarloResult, assemble, sample_matrix
from optiyield.objective import ErrorFunction, ErrorModel, passes
from optiyield.optim.evaluator import Evaluator, Responses
from optiyield.sim.engine import FAILED, OK, every_sample_failed
from optiyield.sim.meter import Cost
from optiyield.sim.protocol import Backend
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet
from optiyield.store import Store
from optiyield.units import format_eng
from optiyield.yield_ import YieldEstimate

#: Separates a measure from its corner in the evaluator's measure names (``gain_db@tt/27C``).
AT = "@"


def qualified(measure: str, corner: Corner | str) -> str:
    """The evaluator's name of ``measure`` at ``corner``."""
    return f"{measure}{AT}{corner if isinstance(corner, str) else corner.name}"


def corner_errors(errors: ErrorModel, corners: CornerSet) -> ErrorModel:
    """One error function per (corner, spec bound), corner-major: the spec's own functions at every corner."""
    return ErrorModel(tuple(ErrorFunction(qualified(f.measure, c), f.sign, f.limit, f.scale, f.weight)
                            for c in corners.corners for f in errors.functions))


@dataclass
class CornerResponses(Responses):
    """Responses with the corner axis kept: ``corner_values[measure]`` of shape (M, C, N) (the testbench's
    measures), ``corner_status`` and ``corner_reason`` (M, C, N). ``values`` holds the same numbers under
    corner-qualified names, (M, N) each; ``status`` is failed where any corner failed."""

    corner_values: dict[str, np.ndarray] = field(default_factory=dict)
    corner_status: np.ndarray | None = None
    corner_reason: np.ndarray | None = None


@dataclass(frozen=True)
class _Block:
    """The rows of design point ``m`` at corner ``c``: ``count`` rows from ``start`` (1: the corner's nominal
    point stands for every outcome)."""

    m: int
    c: int
    start: int
    count: int


class CornerEvaluator(Evaluator):
    """An evaluator that simulates every design point at every corner of ``spec.corners`` (module docstring)."""

    def __init__(self, spec: Spec, engine: Backend | None, store: Store | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        super().__init__(spec, engine, store, progress)
        if spec.corners is None:
            raise ValueError(f"spec {spec.name!r} has no corners")
        self.corners: CornerSet = spec.corners
        #: The per-sample parameters of a corner row: the spec's, then the corners' own (e.g. VDD).
        self.parameters = (*spec.parameters, *self.corners.extra)
        self.jobs = tuple(self.corners.jobs(spec.parameters).values())
        #: The spec's own error functions (one corner); ``errors`` has them at every corner.
        self.spec_errors = self.errors
        self.errors = corner_errors(self.spec_errors, self.corners)
        identity = json.dumps({"job": self.job.identity, "corners": self.corners.identity(spec.parameters)})
        self.job = dataclasses.replace(self.job, identity=identity)
        groups: dict[tuple[Any, ...], int] = {}
        #: Corners that differ only in temperature share a group (their rows are copies of one deck).
        self._group = [groups.setdefault((c.section, c.values), len(groups)) for c in self.corners.corners]
        self._job_keys = self.corners.job_keys
        #: The engine job of each corner (index into ``jobs``).
        self._job_of = [self._job_keys.index(self.corners.job_key(c)) for c in self.corners.corners]
        self._extra_nominal = dict(zip(self.corners.extra, self.corners.extra_nominal, strict=True))

    # ------------------------------------------------------------------------------------------ rows

    def _deviates(self, outcomes: OutcomeSet, mode: str) -> np.ndarray:
        """The outcomes' deviates with the draws a corner does not sample set to 0 (``mismatch``: the global ones)."""
        z = np.array(outcomes.z, dtype=float)
        if mode == "mismatch":
            for draw in self.spec.model.draws:
                if draw.mode == "global":
                    z[:, self.spec.model.columns(draw.name)] = 0.0
        return z

    def corner_rows(self, x: np.ndarray, corner: Corner, outcomes: OutcomeSet | None) -> np.ndarray:
        """Parameter rows (n, len(parameters)) of design ``x`` at ``corner``: its nominal point (one row) when
        ``outcomes`` is None or the corner samples nothing, else one row per outcome."""
        nominal = {**self.spec.nominal(self.design(x)), **self._extra_nominal}
        point = self.corners.at(corner, nominal)
        if outcomes is None or corner.monte_carlo == "none" or not self.spec.model.draws:
            return np.array([[point[p] for p in self.parameters]], dtype=float)
        varied = self.spec.model.apply(point, self._deviates(outcomes, corner.monte_carlo))
        fixed = set(self.corners.fixed)
        columns = [np.full(outcomes.n, point[p]) if p in fixed or p not in varied else varied[p]
                   for p in self.parameters]
        return np.column_stack(columns)

    def _plan(self, points: np.ndarray, outcomes: OutcomeSet | None
              ) -> tuple[np.ndarray, list[_Block], np.ndarray, np.ndarray]:
        """Store rows ``[section, temperature, parameters…]`` of every (point, corner), their blocks, the engine job
        of each row, and the order in which rows go to the engine (per design point, corner group, outcome, then
        temperature)."""
        blocks, parts, keys, jobs = [], [], [], []
        start = 0
        for m, x in enumerate(np.atleast_2d(points)):
            cache: dict[int, np.ndarray] = {}
            for c, corner in enumerate(self.corners.corners):
                group = self._group[c]
                if group not in cache:
                    cache[group] = self.corner_rows(x, corner, outcomes)
                params = cache[group]
                n = params.shape[0]
                head = np.tile([self.corners.section_index(corner), self.corners.temperature(corner)], (n, 1))
                parts.append(np.hstack([head, params]))
                blocks.append(_Block(m, c, start, n))
                jobs.append(np.full(n, self._job_of[c]))
                keys.append(np.column_stack([np.full(n, m), np.full(n, group), np.arange(n), np.full(n, c)]))
                start += n
        rows = np.vstack(parts)
        key = np.vstack(keys)
        order = np.lexsort((key[:, 3], key[:, 2], key[:, 1], key[:, 0]))
        return rows, blocks, np.concatenate(jobs), order

    def rows(self, points: np.ndarray, outcomes: OutcomeSet | None) -> np.ndarray:
        """The store rows ``[section index, temperature °C, parameters…]`` of M points at every corner."""
        return self._plan(points, outcomes)[0]

    # ------------------------------------------------------------------------------------------ simulate

    def responses(self, points: np.ndarray, outcomes: OutcomeSet | None = None) -> CornerResponses:
        """Simulate (or fetch from the store) M design points × every corner × N outcomes in one pass: one
        engine call per model-library section."""
        points = np.atleast_2d(np.asarray(points, dtype=float))
        rows, blocks, job_of, order = self._plan(points, outcomes)
        count = rows.shape[0]
        measures = self.spec.testbench.measure_names
        values = {name: np.full(count, np.nan) for name in measures}
        status = np.full(count, FAILED, dtype=object)
        reason = np.full(count, "", dtype=object)
        todo = np.ones(count, dtype=bool)
        if self.store is not None:
            found, stored, stored_status, stored_reason = self.store.lookup(rows)
            for name in measures:
                values[name][found] = stored[name][found]
            status[found], reason[found] = stored_status[found], stored_reason[found]
            todo = ~found
            self.meter.add(cached=int(found.sum()))
            if self.progress and found.any():
                self.progress(int(found.sum()))
        if todo.any():
            if self.engine is None:
                raise RuntimeError("this evaluator has no engine: it can only read the store")
            self._simulate(rows, job_of, order[todo[order]], values, status, reason)
        return self._assemble(points.shape[0], outcomes.n if outcomes is not None else 1, rows, blocks, values,
                              status, reason)

    def _simulate(self, rows: np.ndarray, job_of: np.ndarray, pending: np.ndarray, values: dict[str, np.ndarray],
                  status: np.ndarray, reason: np.ndarray) -> None:
        """Run the pending rows (in engine order), one engine call per job; samples are stored at once."""
        assert self.engine is not None
        simulated = failed = 0
        all_status, all_reason = [], []
        for index, job in enumerate(self.jobs):
            chosen = pending[job_of[pending] == index]
            if not len(chosen):
                continue
            engine_rows = rows[chosen, 2:]
            if self.corners.temperature_column:
                engine_rows = np.column_stack([engine_rows, rows[chosen, 1]])
            sink = None if self.store is None else _StoreSink(self.store, rows[chosen])
            result = self.engine.run(job, engine_rows, self.progress, sink)
            for name in values:
                values[name][chosen] = result.values[name]
            status[chosen], reason[chosen] = result.status, result.reason
            simulated += len(chosen)
            failed += result.n_failed
            all_status.append(result.status)
            all_reason.append(result.reason)
            self.meter.add(simulations=len(chosen), runs=result.runs, ngspice_seconds=result.ngspice_seconds,
                           failed=result.n_failed)
        if self.meter.failed == self.meter.simulations and simulated:
            raise every_sample_failed(np.concatenate(all_status), np.concatenate(all_reason), "simulated so far")

    def _assemble(self, m: int, n: int, rows: np.ndarray, blocks: list[_Block], values: dict[str, np.ndarray],
                  status: np.ndarray, reason: np.ndarray) -> CornerResponses:
        corners = self.corners.corners
        shape = (m, len(corners), n)
        per_corner = {name: np.full(shape, np.nan) for name in values}
        corner_status = np.full(shape, FAILED, dtype=object)
        corner_reason = np.full(shape, "", dtype=object)
        for block in blocks:
            span = slice(block.start, block.start + block.count)
            for name, column in values.items():
                per_corner[name][block.m, block.c, :] = column[span]
            corner_status[block.m, block.c, :] = status[span]
            corner_reason[block.m, block.c, :] = reason[span]
        flat = {qualified(name, corner): per_corner[name][:, c, :] for c, corner in enumerate(corners)
                for name in values}
        failed = corner_status == FAILED
        overall = np.where(failed.any(axis=1), FAILED, OK).astype(object)
        why = np.full((m, n), "", dtype=object)
        for i, k in zip(*np.nonzero(failed.any(axis=1)), strict=True):
            c = int(np.argmax(failed[i, :, k]))
            why[i, k] = f"corner {corners[c].name}: {corner_reason[i, c, k]}"
        return CornerResponses(values=flat, status=overall, reason=why, rows=rows, corner_values=per_corner,
                               corner_status=corner_status, corner_reason=corner_reason)

    # ------------------------------------------------------------------------------------------ figures

    def corner_passes(self, responses: CornerResponses) -> np.ndarray:
        """(M, C, N) True where an outcome meets every spec at a corner (a failed simulation fails)."""
        errors = self.spec_errors.errors({name: responses.corner_values[name] for name in self.spec_errors.measures})
        return passes(errors) & (responses.corner_status != FAILED)

    def corner_yields(self, x: np.ndarray, outcomes: OutcomeSet | None, confidence: float = 0.95
                      ) -> list[YieldEstimate]:
        """The yield at each corner of design ``x`` over the outcomes (nominal: 1 sample per corner)."""
        responses = self.responses(x, outcomes)
        ok = self.corner_passes(responses)[0]
        return [YieldEstimate.from_counts(int(row.sum()), len(row), confidence) for row in ok]


@dataclass(frozen=True)
class _StoreSink:
    """Saves the engine's finished samples (indices into ``full``) under their store rows, at once."""

    store: Store
    full: np.ndarray

    def __call__(self, index: np.ndarray, values: dict[str, np.ndarray], status: np.ndarray,
                 reason: np.ndarray) -> None:
        self.store.save(self.full[index], values, status, reason)


def make_evaluator(spec: Spec, engine: Backend | None, store: Store | None = None,
                   progress: Callable[[int], None] | None = None) -> Evaluator:
    """The evaluator of a spec: a :class:`CornerEvaluator` when it has ``corners:``, else the plain one."""
    if spec.corners is not None:
        return CornerEvaluator(spec, engine, store, progress)
    return Evaluator(spec, engine, store, progress)


# ---------------------------------------------------------------------------------------------- table


def _margin(value: np.ndarray, minimum: float | None, maximum: float | None) -> np.ndarray:
    """Signed distance to the nearest limit in the spec's unit (negative: violated; NaN value: −inf)."""
    margin = np.full(np.shape(value), np.inf)
    if minimum is not None:
        margin = np.minimum(margin, value - minimum)
    if maximum is not None:
        margin = np.minimum(margin, maximum - value)
    return np.where(np.isfinite(value), margin, -np.inf)


@dataclass
class CornerTable:
    """The corners × specs view of one design (ADE's corner view): per corner its conditions, every measure
    (nominal at the corner, or the median over its Monte Carlo), each spec's margin and pass/fail, and with a
    Monte Carlo the yield per corner; :meth:`worst` gives the worst corner of each spec."""

    spec: Spec
    design: dict[str, float]
    corners: tuple[Corner, ...]
    parameters: dict[str, np.ndarray]  # corner → value of each fixed parameter, (C,) per parameter
    values: dict[str, np.ndarray]  # measure → (C, N)
    status: np.ndarray  # (C, N)
    reason: np.ndarray  # (C, N)
    passed: np.ndarray  # (C, N) every spec met at the corner
    overall: YieldEstimate  # outcomes passing at every corner (N = 1: the nominal point passes everywhere)
    cost: Cost
    samples: int = 1

    @property
    def monte_carlo(self) -> bool:
        """True when the corners were sampled (``samples`` outcomes per corner that samples)."""
        return self.samples > 1

    def _summary(self, name: str) -> np.ndarray:
        values = np.where(self.status != FAILED, self.values[name], np.nan)
        with np.errstate(all="ignore"):
            return np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in values])

    def yields(self) -> list[YieldEstimate]:
        """The yield at each corner (every spec met), with its interval."""
        confidence = self.spec.run.confidence
        return [YieldEstimate.from_counts(int(row.sum()), len(row), confidence) for row in self.passed]

    def spec_yields(self, name: str) -> np.ndarray:
        """(C,) the share of outcomes meeting spec ``name`` at each corner."""
        bound = self.spec.file.specs[name]
        ok = (_margin(self.values[name], bound.min, bound.max) >= 0) & (self.status != FAILED)
        return ok.mean(axis=1)

    def frame(self) -> pd.DataFrame:
        """One row per corner: process, section, temperature, the fixed parameters, every measure (nominal or
        median), each spec's margin (spec unit), pass (every spec met) and, with a Monte Carlo, the yields."""
        rows = []
        for c, corner in enumerate(self.corners):
            row: dict[str, Any] = {"corner": corner.name, "process": corner.process, "section": corner.section,
                                   "temp": self._temperature(corner)}
            row.update({p: float(v[c]) for p, v in self.parameters.items()})
            for name in self.spec.testbench.measure_names:
                row[name] = float(self._summary(name)[c])
            for name, bound in self.spec.file.specs.items():
                row[f"margin {name}"] = float(_margin(np.array(self._summary(name)[c]), bound.min, bound.max))
            row["pass"] = bool(self.passed[c].all())
            if self.monte_carlo:
                estimate = self.yields()[c]
                row.update({"samples": int(self.passed.shape[1]), "yield": estimate.value, "yield low": estimate.low,
                            "yield high": estimate.high})
                for name in self.spec.file.specs:
                    row[f"yield {name}"] = float(self.spec_yields(name)[c])
            row["failed"] = int((self.status[c] == FAILED).sum())
            rows.append(row)
        return pd.DataFrame(rows).set_index("corner")

    def _temperature(self, corner: Corner) -> float:
        cs = self.spec.corners
        assert cs is not None
        return cs.temperature(corner)

    def worst(self) -> pd.DataFrame:
        """The worst corner of each spec: its value (nominal or median), margin in the spec's unit and relative to
        the spec's scale, and whether the spec holds at every corner (with a Monte Carlo: the lowest spec yield)."""
        rows = []
        for name, bound in self.spec.file.specs.items():
            summary = self._summary(name)
            margin = _margin(summary, bound.min, bound.max)
            if self.monte_carlo:
                spec_yield = self.spec_yields(name)
                c = int(np.lexsort((margin, spec_yield))[0])
            else:
                c = int(np.argmin(margin))
            scale = next((f.scale for f in ErrorModel.from_specs({name: bound}).functions), 1.0)
            row = {"spec": name, "min": bound.min, "max": bound.max, "worst corner": self.corners[c].name,
                   "value": float(summary[c]), "margin": float(margin[c]),
                   "relative margin": float(margin[c] / scale) if math.isfinite(margin[c]) else -math.inf,
                   "pass": bool(margin.min() >= 0) if not self.monte_carlo else bool(
                       self.spec_yields(name).min() >= 1.0)}
            if self.monte_carlo:
                row["yield"] = float(self.spec_yields(name)[c])
            rows.append(row)
        return pd.DataFrame(rows).set_index("spec")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``corners.json``)."""
        frame = self.frame().reset_index()
        worst = self.worst().reset_index()
        return {"spec": self.spec.name, "design": self.design, "samples": self.samples,
                "corners": [c.describe() for c in self.corners],
                "table": json.loads(frame.to_json(orient="records")),
                "worst": json.loads(worst.to_json(orient="records")),
                "passing_corners": int(self.passed.all(axis=1).sum()),
                "overall": self.overall.to_dict(), **self.cost.to_dict()}


def corner_table(evaluator: CornerEvaluator, x: np.ndarray, outcomes: OutcomeSet | None = None) -> CornerTable:
    """Simulate design ``x`` at every corner (nominal, or over ``outcomes`` at the corners that sample) and
    tabulate it."""
    span = evaluator.meter.span()
    responses = evaluator.responses(x, outcomes)
    passed = evaluator.corner_passes(responses)[0]
    every = passed.all(axis=0)
    overall = YieldEstimate.from_counts(int(every.sum()), len(every), evaluator.spec.run.confidence)
    corners = evaluator.corners
    nominal = {**evaluator.spec.nominal(evaluator.design(x)), **evaluator._extra_nominal}
    parameters = {p: np.array([corners.at(c, nominal)[p] for c in corners.corners]) for p in corners.fixed}
    return CornerTable(spec=evaluator.spec, design=evaluator.design(x), corners=corners.corners,
                       parameters=parameters, values={k: v[0] for k, v in responses.corner_values.items()},
                       status=responses.corner_status[0], reason=responses.corner_reason[0], passed=passed,
                       overall=overall, cost=span.cost, samples=outcomes.n if outcomes is not None else 1)


def format_table_value(value: float, unit: str) -> str:
    """A table cell: engineering notation with 4 significant digits."""
    return "—" if not math.isfinite(value) else format_eng(value, 4)


# ---------------------------------------------------------------------------------------------- verify


def verify_corners(spec: Spec, evaluator: CornerEvaluator, x: np.ndarray, outcomes: OutcomeSet,
                   seed: int) -> tuple[MonteCarloResult, CornerTable]:
    """A verification Monte Carlo across corners: each outcome passes only if it passes at every corner.

    The :class:`~optiyield.montecarlo.MonteCarloResult` has one row per outcome with its sampled parameters (at
    the nominal conditions) and, per measure, the value at the corner where that spec has least margin for the
    outcome, so its per-spec and overall yields are the across-corner ones; the :class:`CornerTable` gives the
    yield per corner."""
    span = evaluator.meter.span()
    table = corner_table(evaluator, x, outcomes)
    n = outcomes.n
    worst: dict[str, np.ndarray] = {}
    for name in spec.testbench.measure_names:
        values = np.where(table.status != FAILED, table.values[name], np.nan)  # (C, N)
        bound = spec.file.specs.get(name)
        if bound is None:
            worst[name] = values[0]
            continue
        margin = _margin(values, bound.min, bound.max)
        pick = np.argmin(margin, axis=0)
        worst[name] = values[pick, np.arange(n)]
    failed = (table.status == FAILED).any(axis=0)
    status = np.where(failed, FAILED, OK).astype(object)
    reason = np.full(n, "", dtype=object)
    for k in np.flatnonzero(failed):
        c = int(np.argmax(table.status[:, k] == FAILED))
        reason[k] = f"corner {table.corners[c].name}: {table.reason[c, k]}"
    cost = span.cost
    rows = sample_matrix(spec, outcomes, evaluator.design(x))
    result = assemble(spec, spec.nominal(evaluator.design(x)), rows, worst, status, reason,
                      wall_seconds=cost.wall_seconds, ngspice_seconds=cost.ngspice_seconds, runs=cost.runs,
                      seed=seed, sampler=spec.run.sampler)
    return result, table


def yields_dict(names: Sequence[str], estimates: Sequence[YieldEstimate]) -> dict[str, dict[str, Any]]:
    """Corner name → yield estimate as JSON."""
    return {name: est.to_dict() for name, est in zip(names, estimates, strict=True)}


__all__ = ["AT", "CornerEvaluator", "CornerResponses", "CornerTable", "corner_errors", "corner_table",
           "make_evaluator", "qualified", "verify_corners", "yields_dict"]
