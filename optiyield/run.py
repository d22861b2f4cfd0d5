"""``optiyield run``: execute a spec's ``run.steps`` with every evaluation journaled in a store.

Steps run in order, each starting from the design the previous one produced. Each step names a method
of :data:`optiyield.registry.STEPS` (docs/optimization.md lists them; docs/architecture.md shows how to add
one): ``propose`` (a trained model or a sizer proposes the start), ``nominal: minimax``, ``yield: l1``,
``staged: bfgs``, ``baseline: random | nelder-mead``, ``verify`` (Monte Carlo with a fresh sample). Every
yield step optimizes over the same fixed outcome set (common random numbers). Without ``run.steps`` the
default is minimax → yield auto (ℓ1/IGAT on a growing outcome set, then a pass-count polish) → verify with
2,000 samples.

Every simulated sample goes to ``OUT/store.sqlite`` as soon as its batch finishes. Because the steps are
deterministic, ``--resume`` replays them, the store answers every simulation that already ran, and the
run continues where it stopped. :func:`execute` returns a :class:`RunReport`; writing files from it is
the caller's job (:mod:`optiyield.report.files`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optiyield.montecarlo import MonteCarloResult
from optiyield.optim.corners import CornerEvaluator, make_evaluator, yields_dict
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationRecord, Result
from optiyield.outdir import FolderLock, prepare
from optiyield.registry import STEPS
from optiyield.sim.meter import Cost
from optiyield.sim.protocol import Backend
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet
from optiyield.store import Store, StoreMismatch
from optiyield.yield_ import YieldEstimate

STORE_NAME = "store.sqlite"


class RunError(RuntimeError):
    """The run cannot start (for example an existing store without --resume)."""


class RunInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, SIGTERM); ``stored`` samples are in ``store`` for a ``--resume``,
    ``simulated`` of them by this run."""

    def __init__(self, store: Path, stored: int, simulated: int) -> None:
        super().__init__(f"interrupted: {stored} simulated samples are in {store} ({simulated} from this run)")
        self.store, self.stored, self.simulated = store, stored, simulated


@dataclass
class StepReport:
    """One executed step: its label, kind, result, yield before/after on the optimization outcome set
    (None for verify) and cost."""

    label: str
    kind: str
    result: Result
    yield_before: YieldEstimate | None
    yield_after: YieldEstimate | None
    cost: Cost

    @property
    def verify(self) -> MonteCarloResult | None:
        """The verification Monte Carlo of a verify step."""
        return self.result.monte_carlo

    def summary(self) -> dict[str, Any]:
        """JSON-able figures."""
        def est(e: YieldEstimate | None) -> dict[str, Any] | None:
            return None if e is None else e.to_dict()

        verify = self.verify
        return {"label": self.label, "kind": self.kind, "yield_before": est(self.yield_before),
                "yield_after": est(self.yield_after), **self.cost.to_dict(),
                "result": self.result.summary(),
                "verify_yield": None if verify is None else est(verify.summary.overall)}


@dataclass
class RunReport:
    """A finished run: start and final designs and yields, the steps, and the totals."""

    spec: Spec
    out: Path
    x_start: dict[str, float]
    x_final: dict[str, float]
    start_yield: YieldEstimate
    final_yield: YieldEstimate
    steps: list[StepReport] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    notes: list[str] = field(default_factory=list)
    #: A corner run: the yield at each corner on the optimization outcomes, at the start and final designs
    #: (``{"names": [...], "before": [YieldEstimate...], "after": [...]}``); None without corners.
    corners: dict[str, Any] | None = None
    regions: list[dict[str, Any]] = field(default_factory=list)  # spec `regions:` at the final design (nominal)

    @property
    def verify(self) -> MonteCarloResult | None:
        """The last verification Monte Carlo, if any."""
        reports = [s.verify for s in self.steps if s.verify is not None]
        return reports[-1] if reports else None

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (written to ``run_summary.json``)."""
        verify = self.verify
        return {
            "spec": self.spec.name, "spec_file": str(self.spec.path.resolve()) if self.spec.path else None,
            "design_start": self.x_start, "design_final": self.x_final,
            "start_yield": self.start_yield.to_dict(), "final_yield": self.final_yield.to_dict(),
            "verify": None if verify is None else {
                "samples": len(verify.table), "seed": verify.seed, "yield": verify.summary.overall.to_dict(),
                "per_spec": {k: v.to_dict() for k, v in verify.summary.per_spec.items()},
                "failed_simulations": verify.summary.failed_simulations},
            "steps": [s.summary() for s in self.steps],
            **self.cost.to_dict(), "notes": self.notes,
            **({"reliability": self.reliability} if self.reliability else {}),
            **({} if self.corners is None else {"corners": {
                "names": list(self.corners["names"]),
                "before": yields_dict(self.corners["names"], self.corners["before"]),
                "after": yields_dict(self.corners["names"], self.corners["after"])}}),
            **({"regions": self.regions} if self.regions else {}),
        }

    @property
    def reliability(self) -> dict[str, Any]:
        """The run's high-sigma figures: ``worst_case`` (the last step with worst-case distances: β per spec
        bound, the corners) and ``failure`` (the last verification's failure probability by plain Monte Carlo
        and, when asked, by a high-sigma estimator); empty when no step made any."""
        out: dict[str, Any] = {}
        for step in self.steps:
            data = step.result.reliability
            if not data:
                continue
            if "corners" in data:
                out["worst_case"] = {"step": step.label, **data}
            if data.get("kind") == "verify":
                out["failure"] = {"step": step.label, **data}
        return out


def optimization_outcomes(spec: Spec) -> OutcomeSet:
    """The fixed outcome set every yield step of ``spec`` optimizes over (common random numbers): the
    first yield step's ``samples`` or ``run.samples`` outcomes from ``run.seed``."""
    samples = next((getattr(s.options, "samples", None) for s in spec.run.steps if s.kind == "yield"), None)
    return OutcomeSet.draw(spec.model, samples or spec.run.samples, spec.run.sampler, spec.run.seed)


def open_store(spec: Spec, evaluator: Evaluator, out: Path, resume: bool, fresh: bool) -> Store:
    """The run's store: new, resumed, or refused when one exists and neither flag is given."""
    path = out / STORE_NAME
    if path.exists() and not (resume or fresh):
        raise RunError(f"{path} exists from an earlier run: use --resume to continue it or --fresh to start over")
    if path.exists() and fresh:
        path.unlink()
    if resume and not path.exists():
        raise RunError(f"--resume: no store at {path}")
    try:
        store = Store(path, evaluator.job.fingerprint, spec.parameters, spec.testbench.measure_names,
                      replace_mismatch=resume)
        store.clear_journal()
    except StoreMismatch as exc:
        raise RunError(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise RunError(f"{path} is not a readable optiyield store ({exc}); start over with --fresh") from None
    return store


def execute(spec: Spec, out: str | Path, engine: Backend, *, resume: bool = False, fresh: bool = False,
            progress: Callable[[int], None] | None = None,
            on_iteration: Callable[[IterationRecord], None] | None = None,
            on_step: Callable[[StepReport], None] | None = None) -> RunReport:
    """Run every step of ``spec.run.steps`` with its store in ``out``; returns the report (the caller
    writes ``run_summary.json`` and the other outputs).

    The folder is checked and locked before anything is simulated (:mod:`optiyield.outdir`); raises
    :class:`RunError` when it or its store cannot be used, :class:`RunInterrupted` on Ctrl-C (every
    finished sample is in the store)."""
    out = prepare(out)
    with FolderLock(out):
        evaluator = make_evaluator(spec, engine, progress=progress)
        span = evaluator.meter.span()
        store = open_store(spec, evaluator, out, resume, fresh)
        evaluator.store = store
        try:
            report = _execute(spec, out, evaluator, store, on_iteration, on_step)
        except KeyboardInterrupt:
            stored = store.close()  # no engine thread writes after this: the count is what --resume finds
            raise RunInterrupted(store.path, stored, evaluator.meter.simulations) from None
        finally:
            store.close()
    report.cost = span.cost
    if store.dropped:
        report.notes.append(f"the testbench, its measures or the parameters changed since {store.path} was "
                            f"written: its {store.dropped} stored simulations were stale and were simulated again")
    return report


def _execute(spec: Spec, out: Path, evaluator: Evaluator, store: Store,
             on_iteration: Callable[[IterationRecord], None] | None,
             on_step: Callable[[StepReport], None] | None) -> RunReport:
    problem = Problem(spec=spec, evaluator=evaluator, outcomes=optimization_outcomes(spec))

    def yield_at(x: np.ndarray) -> YieldEstimate:
        passed = evaluator.passing(x, problem.outcomes)
        return YieldEstimate.from_counts(int(passed.sum()), len(passed), problem.confidence)

    x = evaluator.x0.copy()
    start_yield = yield_at(x)
    report = RunReport(spec=spec, out=out, x_start=evaluator.design(x), x_final={}, start_yield=start_yield,
                       final_yield=start_yield)
    for index, step in enumerate(spec.run.steps, start=1):
        label = f"{index}. {step.label}"

        def journal(record: IterationRecord, label: str = label) -> None:
            store.journal(label, record.iteration, record.to_dict())
            if on_iteration:
                on_iteration(record)

        span = evaluator.meter.span()
        store.journal(label, 0, {"event": "start", "x": evaluator.design(x)})
        measured = step.kind != "verify"
        yield_before = yield_at(x) if measured else None
        result = STEPS.method(step.kind, step.method).run(problem, x, step.options, journal)
        x = result.x
        yield_after = yield_at(x) if measured else None
        if yield_after is not None:
            report.final_yield = yield_after
        step_report = StepReport(label=label, kind=step.kind, result=result, yield_before=yield_before,
                                 yield_after=yield_after, cost=span.cost)
        report.steps.append(step_report)
        store.journal(label, -1, {"event": "done", "x": evaluator.design(x), "summary": step_report.summary()})
        if on_step:
            on_step(step_report)
    report.x_final = evaluator.design(x)
    if isinstance(evaluator, CornerEvaluator):  # served from the store: both designs were evaluated
        report.corners = {"names": evaluator.corners.names,
                          "before": evaluator.corner_yields(evaluator.x0, problem.outcomes, problem.confidence),
                          "after": evaluator.corner_yields(x, problem.outcomes, problem.confidence)}
    if spec.regions:  # per device at the final design's nominal point (usually served from the store)
        values = {k: float(v[0, 0]) for k, v in evaluator.responses(x[None, :]).values.items()}
        report.regions = [{"device": r.device, "region": r.request.region, "margin": r.request.margin,
                           "values": {m: values.get(m) for m in r.measures}, "met": r.met(values)}
                          for r in spec.regions]
    return report
