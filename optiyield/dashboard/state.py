"""What the live dashboard shows, read from a run's output folder (read-only, never simulating).

Sources, all written by the run as it goes: ``run_info.json`` (the API writes it before the first simulation:
the spec file, the planned steps, the bounds), ``store.sqlite`` read through :meth:`optiyield.store.Store.read`
(the iteration journal; the stored responses give each spec's margin at each iteration's design), and, once
the run has ended, ``run_summary.json``. A run has ended when ``run_summary.json`` is newer than the first
journal record of the current run (a run clears the journal when it starts, so an earlier run's summary in a
resumed folder does not count).

Each spec's margin at an iteration's design is the scaled margin ``-e`` (docs/optimization.md: e ≤ 0 means
met, so a margin > 0 is met, in fractions of the limit or of the spec's ``scale``), the smaller of its two
bounds' margins. It comes from the stored nominal simulation at that design where the step simulated one
(minimax), else the median over the optimization outcomes' stored responses (yield steps). Where the outcomes'
responses at that design are stored, each spec's yield on them is shown too.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optiyield.objective import ErrorModel
from optiyield.optim.evaluator import Evaluator
from optiyield.report.html import reason_kind
from optiyield.run import STORE_NAME, optimization_outcomes
from optiyield.sim.engine import FAILED
from optiyield.sim.ngspice.runner import process_alive
from optiyield.spec import Spec, load_spec
from optiyield.store import Store

RUN_INFO = "run_info.json"  # the same name as optiyield.api.RUN_INFO (the API writes it; layer above)
RUN_SUMMARY = "run_summary.json"


@dataclass
class Iteration:
    """One journaled iteration: its run step, phase, counts, figures and the spec margins at its design."""

    step: str
    phase: str
    iteration: int
    simulations: int | None
    objective: float | None
    yield_value: float | None
    yield_low: float | None
    yield_high: float | None
    accepted: bool | None
    x: dict[str, float]
    margins: dict[str, float] = field(default_factory=dict)
    margin_source: str = ""
    spec_yield: dict[str, float] = field(default_factory=dict)


@dataclass
class StepCost:
    """A finished step's cost: new and stored simulations, wall seconds, failed samples."""

    label: str
    simulations: int
    cached: int
    wall_seconds: float
    failed: int


@dataclass
class RunState:
    """Everything the page shows at one moment."""

    folder: Path
    status: str  # "waiting", "running", "stopped", "finished"
    message: str
    spec_name: str = ""
    planned: list[str] = field(default_factory=list)
    current_step: str = ""
    iterations: list[Iteration] = field(default_factory=list)
    design: dict[str, float] = field(default_factory=dict)
    start: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    costs: list[StepCost] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    evaluations: int = 0
    updated: float | None = None  # time of the newest journal record
    started: float | None = None
    signature: tuple[Any, ...] = ()

    @property
    def finished(self) -> bool:
        """True once the run has written run_summary.json."""
        return self.status == "finished"

    @property
    def latest_yield(self) -> Iteration | None:
        """The newest iteration that carries a yield."""
        return next((it for it in reversed(self.iterations) if it.yield_value is not None), None)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value) else None


def _alive(pid: Any) -> bool | None:
    """Whether a process id on this machine is alive (None when unknown)."""
    return process_alive(pid) if isinstance(pid, int) else None


class FolderReader:
    """Reads a run folder again and again (each poll of the page); remembers per-design margins, which do not
    change once stored. ``spec`` (a loaded spec) is optional: without it the spec file named in run_info.json
    or run_summary.json is loaded; without any, margins and bounds are left out (the journal still shows)."""

    def __init__(self, folder: str | Path, spec: Spec | None = None) -> None:
        self.folder = Path(folder)
        self.spec = spec
        self._margins: dict[tuple[str, tuple[float, ...]], tuple[dict[str, float], str, dict[str, float]]] = {}
        self._spec_tried = spec is not None
        self._evaluator: Evaluator | None = None
        self._outcomes = None

    def _load_spec(self, info: Mapping[str, Any] | None, summary: Mapping[str, Any] | None) -> None:
        if self._spec_tried:
            return
        for data in (info, summary):
            path = (data or {}).get("spec_file")
            if path and Path(path).is_file():
                self._spec_tried = True
                try:
                    self.spec = load_spec(path)
                except Exception:  # noqa: BLE001 - a spec that no longer loads: show the journal only
                    self.spec = None
                return

    def read(self) -> RunState:
        """The state of the run now (see the module docstring)."""
        info = _read_json(self.folder / RUN_INFO)
        summary_path = self.folder / RUN_SUMMARY
        summary = _read_json(summary_path)
        self._load_spec(info, summary)
        state = RunState(folder=self.folder, status="waiting", message="waiting for the run to start")
        spec = self.spec
        if spec is not None:
            state.spec_name = spec.name
            state.planned = [f"{i}. {s.label}" for i, s in enumerate(spec.run.steps, start=1)]
            state.bounds = {n: (v.min, v.max) for n, v in spec.file.design.items()}
            state.limits = {n: (b.min, b.max) for n, b in spec.file.specs.items()}
            state.start = dict(spec.design_start)
        if info is not None:
            state.spec_name = state.spec_name or str(info.get("spec", ""))
            state.planned = list(info.get("steps") or state.planned)
            state.bounds = state.bounds or {n: (b["min"], b["max"]) for n, b in info.get("design", {}).items()}
            state.limits = state.limits or {n: (b["min"], b["max"]) for n, b in info.get("specs", {}).items()}
        store_path = self.folder / STORE_NAME
        if not store_path.is_file():
            state.signature = ("waiting", summary_path.is_file())
            return state
        try:
            names = (spec.parameters, spec.testbench.measure_names) if spec else ((), ())
            store = Store.read(store_path, *names)
        except Exception as exc:  # noqa: BLE001 - a store being created, or locked for longer than the timeout
            state.message = f"store.sqlite cannot be read yet ({exc})"
            state.signature = ("unreadable", str(exc))
            return state
        try:
            history = store.history()
            times = store.journal_times()
            state.evaluations = store.evaluations
            kinds: dict[str, int] = {}
            for reason, count in store.failure_reasons().items():
                kinds[reason_kind(reason)] = kinds.get(reason_kind(reason), 0) + count
            state.failures = dict(sorted(kinds.items(), key=lambda item: -item[1]))
            self._fill(state, history, store)
        finally:
            store.close()
        state.started, state.updated = (times or (None, None))
        ended = summary is not None and times is not None and summary_path.stat().st_mtime >= times[0]
        if summary is not None and times is None:
            ended = True  # a finished run whose journal is empty (no step journals anything)
        if ended:
            state.status, state.message = "finished", "the run has finished: the full report follows"
        elif times is None:
            state.status, state.message = "running", "the run is starting"
        else:
            alive = _alive((info or {}).get("pid"))
            if alive is False:
                state.status = "stopped"
                state.message = ("the run's process has ended without writing run_summary.json (interrupted?); "
                                 "continue it with --resume")
            else:
                state.status = "running"
                state.message = f"running {state.current_step or 'the first step'}"
        state.signature = (state.status, len(history), state.evaluations, times,
                           summary_path.stat().st_mtime if summary is not None else None)
        return state

    def _fill(self, state: RunState, history: list[dict[str, Any]], store: Store) -> None:
        for record in history:
            step = str(record.get("step", ""))
            event = record.get("event")
            x = {k: float(v) for k, v in (record.get("x") or {}).items()}
            if x:
                state.design = x
            if event == "start" and "phase" not in record:
                state.current_step = step
                if not state.start and x:
                    state.start = dict(x)
                continue
            if event == "done" and "phase" not in record:
                summary = record.get("summary") or {}
                state.costs.append(StepCost(step, int(summary.get("simulations", 0)), int(summary.get("cached", 0)),
                                            float(summary.get("wall_seconds", 0.0)), int(summary.get("failed", 0))))
                continue
            iteration = Iteration(
                step=step, phase=str(record.get("phase", step)), iteration=int(record.get("iteration", 0)),
                simulations=int(record["simulations"]) if _number(record.get("simulations")) is not None else None,
                objective=_number(record.get("objective")), yield_value=_number(record.get("yield")),
                yield_low=_number(record.get("yield_low")), yield_high=_number(record.get("yield_high")),
                accepted=record.get("accepted"), x=x)
            if x:
                iteration.margins, iteration.margin_source, iteration.spec_yield = self._margins_at(step, x, store)
            if not iteration.margins and isinstance(record.get("margins"), Mapping):
                iteration.margins = {str(k).split(" ")[0]: -float(v) for k, v in record["margins"].items()}
                iteration.margin_source = "nominal"
            state.iterations.append(iteration)

    def _margins_at(self, step: str, x: dict[str, float], store: Store
                    ) -> tuple[dict[str, float], str, dict[str, float]]:
        """Spec margins at a design from the store: the nominal simulation, else the outcomes' median."""
        spec = self.spec
        if spec is None:
            return {}, "", {}
        key = (step, tuple(x.get(n, math.nan) for n in spec.file.design))
        if key in self._margins:
            return self._margins[key]
        if self._evaluator is None:
            self._evaluator = Evaluator(spec, None)  # builds rows and the fingerprint only; no engine
            self._outcomes = optimization_outcomes(spec)
        evaluator = self._evaluator
        result: tuple[dict[str, float], str, dict[str, float]] = ({}, "", {})
        if store.fingerprint == evaluator.job.fingerprint and all(n in x for n in evaluator.names):
            point = np.array([x[n] for n in evaluator.names])
            margins, source, per_spec = {}, "", {}
            found, values, status, _ = store.lookup(evaluator.rows(point, self._outcomes))
            if found.sum() * 2 >= len(found):
                ok = found & (status != FAILED)
                picked = {m: np.where(ok, values[m], np.nan)[found] for m in values}
                margins = _spec_margins(evaluator.errors, picked, median=True)
                source = f"median over {int(found.sum())} outcomes"
                per_spec = _spec_pass(evaluator.errors, picked)
            found, values, status, _ = store.lookup(evaluator.rows(point, None))
            if found[0] and status[0] != FAILED:
                margins, source = _spec_margins(evaluator.errors, values, median=False), "nominal simulation"
            result = (margins, source, per_spec)
        self._margins[key] = result
        return result


def _spec_margins(errors: ErrorModel, values: Mapping[str, np.ndarray], median: bool) -> dict[str, float]:
    """Per spec, the scaled margin −e (the smaller of its bounds'), at one row or the median over rows."""
    e = errors.errors(values)  # (rows, J)
    margins: dict[str, float] = {}
    for j, function in enumerate(errors.functions):
        column = -e[:, j]
        value = float(np.median(column)) if median else float(column[0])
        margins[function.measure] = min(margins.get(function.measure, math.inf), value)
    return margins


def _spec_pass(errors: ErrorModel, values: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per spec, the fraction of rows that meet both its bounds."""
    e = errors.errors(values)
    met: dict[str, np.ndarray] = {}
    for j, function in enumerate(errors.functions):
        ok = e[:, j] <= 0
        met[function.measure] = met.get(function.measure, np.ones_like(ok)) & ok
    return {name: float(ok.mean()) if len(ok) else math.nan for name, ok in met.items()}


def age(state: RunState) -> float | None:
    """Seconds since the newest journal record."""
    return None if state.updated is None else max(0.0, time.time() - state.updated)
