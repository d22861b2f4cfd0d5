"""``optiyield run``: execute a spec's ``run.steps`` with every evaluation journaled in a store.

Steps run in order, each starting from the design the previous one produced:

* ``propose: {model: FILE, candidates: K}`` — a trained inverse model (``optiyield train``) proposes K
  diverse designs for the spec's thresholds; all are re-simulated and the best (smallest minimax error)
  becomes the start (table in ``OUT/proposals.csv``);
* ``nominal: minimax`` — minimax nominal design (no variation; ``until: feasible`` stops at the first
  design meeting every spec);
* ``yield: l1`` — one-sided ℓ1 yield optimization over a fixed outcome set (``samples`` outcomes,
  seeded from ``run.seed``; the same set for every yield step: common random numbers);
* ``staged: bfgs`` — the spec's knowledge-based ``stages`` (region check first);
* ``baseline: random | nelder-mead`` — derivative-free comparisons on the same yield objective;
* ``verify: {samples: N}`` — Monte Carlo with a fresh sample at the current design, written like
  ``optiyield yield`` output (samples.csv/.parquet, histograms, summary.json).

Without ``run.steps`` the default is minimax → yield (IGAT) → verify with 2,000 samples.
Every simulated sample goes to ``OUT/store.sqlite`` as soon as its batch finishes. Because the steps
are deterministic, ``--resume`` replays them, the store answers every simulation that already ran,
and the run continues where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optiyield.montecarlo import MonteCarloResult, assemble
from optiyield.objective import passes
from optiyield.optim.baselines import nelder_mead, random_search
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.minimax import minimax
from optiyield.optim.result import Result
from optiyield.optim.yield_l1 import yield_l1
from optiyield.sim.engine import Engine
from optiyield.spec import Spec, Step
from optiyield.stats.variation import OutcomeSet
from optiyield.store import Store, to_json
from optiyield.yield_ import YieldEstimate

DEFAULT_STEPS = (Step(nominal="minimax"), Step(yield_="l1"), Step(verify={"samples": 2000}))
STORE_NAME = "store.sqlite"


class RunError(RuntimeError):
    """The run cannot start (for example an existing store without --resume)."""


@dataclass
class StepReport:
    """One executed step: its label, optimizer result (None for verify), yield before/after on the
    optimization outcome set, and cost."""

    label: str
    kind: str
    result: Result | None
    yield_before: YieldEstimate | None
    yield_after: YieldEstimate | None
    simulations: int
    cached: int
    ngspice_seconds: float
    wall_seconds: float
    verify: MonteCarloResult | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-able figures."""
        def est(e: YieldEstimate | None) -> dict[str, float] | None:
            return None if e is None else {"value": e.value, "low": e.low, "high": e.high, "n": e.n}

        return {"label": self.label, "kind": self.kind, "yield_before": est(self.yield_before),
                "yield_after": est(self.yield_after), "simulations": self.simulations, "cached": self.cached,
                "ngspice_seconds": self.ngspice_seconds, "wall_seconds": self.wall_seconds,
                "result": None if self.result is None else self.result.summary(),
                "verify_yield": None if self.verify is None else est(self.verify.summary.overall)}


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
    simulations: int = 0
    cached: int = 0
    ngspice_seconds: float = 0.0
    wall_seconds: float = 0.0

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
            "start_yield": _est(self.start_yield), "final_yield": _est(self.final_yield),
            "verify": None if verify is None else {
                "samples": len(verify.table), "seed": verify.seed, "yield": _est(verify.summary.overall),
                "per_spec": {k: _est(v) for k, v in verify.summary.per_spec.items()},
                "failed_simulations": verify.summary.failed_simulations},
            "steps": [s.summary() for s in self.steps],
            "simulations": self.simulations, "cached": self.cached,
            "ngspice_seconds": self.ngspice_seconds, "wall_seconds": self.wall_seconds,
        }


def _est(e: YieldEstimate) -> dict[str, float]:
    return {"value": e.value, "low": e.low, "high": e.high, "passed": e.passed, "n": e.n}


def optimization_outcomes(spec: Spec) -> OutcomeSet:
    """The fixed outcome set every yield step of ``spec`` optimizes over (common random numbers): the
    first yield step's ``samples`` or ``run.samples`` outcomes from ``run.seed``."""
    steps = spec.run.steps or DEFAULT_STEPS
    samples = next((s.samples for s in steps if s.kind == "yield" and s.samples), None) or spec.run.samples
    return OutcomeSet.draw(spec.model, samples, spec.run.sampler, spec.run.seed)  # type: ignore[arg-type]


def open_store(spec: Spec, evaluator: Evaluator, out: Path, resume: bool, fresh: bool) -> Store:
    """The run's store: new, resumed, or refused when one exists and neither flag is given."""
    path = out / STORE_NAME
    if path.exists() and not (resume or fresh):
        raise RunError(f"{path} exists from an earlier run: use --resume to continue it or --fresh to start over")
    if path.exists() and fresh:
        path.unlink()
    if resume and not path.exists():
        raise RunError(f"--resume: no store at {path}")
    store = Store(path, evaluator.store_fingerprint(), spec.parameters, spec.testbench.measure_names)
    store.clear_journal()
    return store


def execute(spec: Spec, out: str | Path, engine: Engine, *, resume: bool = False, fresh: bool = False,
            progress: Callable[[int], None] | None = None,
            on_iteration: Callable[[dict[str, Any]], None] | None = None,
            on_step: Callable[[StepReport], None] | None = None) -> RunReport:
    """Run every step of ``spec.run.steps`` (or the defaults) and write ``run_summary.json`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    evaluator = Evaluator(spec, engine, progress=progress)
    store = open_store(spec, evaluator, out, resume, fresh)
    evaluator.store = store
    try:
        report = _execute(spec, out, evaluator, store, on_iteration, on_step)
    finally:
        store.close()
    report.wall_seconds = time.perf_counter() - started
    (out / "run_summary.json").write_text(json.dumps(report.summary(), indent=2, default=to_json) + "\n")
    return report


def _execute(spec: Spec, out: Path, evaluator: Evaluator, store: Store,
             on_iteration: Callable[[dict[str, Any]], None] | None,
             on_step: Callable[[StepReport], None] | None) -> RunReport:
    run = spec.run
    steps = run.steps or DEFAULT_STEPS
    outcomes = optimization_outcomes(spec)

    def yield_at(x: np.ndarray) -> YieldEstimate:
        errors = evaluator.responses(x, outcomes).errors(evaluator.errors)[0]
        return YieldEstimate.from_counts(int(passes(errors).sum()), outcomes.n, run.confidence)

    def journal(record: dict[str, Any]) -> None:
        store.journal(str(record.get("step", "")), int(record.get("iteration", 0)), record)
        if on_iteration:
            on_iteration(record)

    x = evaluator.x0.copy()
    start_yield = yield_at(x)
    report = RunReport(spec=spec, out=out, x_start=evaluator.design(x), x_final={}, start_yield=start_yield,
                       final_yield=start_yield)
    for index, step in enumerate(steps, start=1):
        before = (evaluator.counters.simulations, evaluator.counters.cached, evaluator.counters.ngspice_seconds)
        step_start = time.perf_counter()
        label = f"{index}. {_label(step)}"
        journal({"step": label, "iteration": 0, "event": "start", "x": evaluator.design(x)})
        yield_before = yield_at(x) if step.kind != "verify" else None
        result, verify = None, None
        if step.kind == "propose":
            result = _propose(spec, evaluator, step, out)
        elif step.kind == "nominal":
            result = minimax(evaluator, x, gradient=step.gradient, max_iter=step.max_iter,
                             radius=step.trust_region, refresh=step.refresh, callback=journal, until=step.until,
                             stall_restart=step.stall_restart)
        elif step.kind == "yield":
            result = yield_l1(evaluator, outcomes, x, gradient=step.gradient, max_iter=step.max_iter,
                              phases=step.phases, radius=step.trust_region, refresh=step.refresh,
                              refine=step.refine, stall_restart=step.stall_restart, confidence=run.confidence,
                              callback=journal)
        elif step.kind == "staged":
            from optiyield.optim.staged import staged_bfgs

            result = staged_bfgs(evaluator, spec.file.stages, rounds=step.rounds, budget=step.budget,
                                 protect=step.protect, x0=x, callback=journal)
        elif step.kind == "baseline":
            method = random_search if step.baseline == "random" else nelder_mead
            result = method(evaluator, outcomes, budget=step.budget, x0=x, confidence=run.confidence,
                            callback=journal)
        else:
            verify = _verify(spec, evaluator, x, step, out)
        if result is not None:
            x = result.x
        yield_after = yield_at(x) if step.kind != "verify" else None
        if yield_after is not None:
            report.final_yield = yield_after
        step_report = StepReport(
            label=label, kind=step.kind, result=result, yield_before=yield_before, yield_after=yield_after,
            simulations=evaluator.counters.simulations - before[0], cached=evaluator.counters.cached - before[1],
            ngspice_seconds=evaluator.counters.ngspice_seconds - before[2],
            wall_seconds=time.perf_counter() - step_start, verify=verify)
        report.steps.append(step_report)
        journal({"step": label, "iteration": -1, "event": "done", "x": evaluator.design(x),
                 "summary": step_report.summary()})
        if on_step:
            on_step(step_report)
    report.x_final = evaluator.design(x)
    report.simulations, report.cached = evaluator.counters.simulations, evaluator.counters.cached
    report.ngspice_seconds = evaluator.counters.ngspice_seconds
    return report


def _label(step: Step) -> str:
    if step.kind == "propose":
        assert step.propose is not None
        source = step.propose.sizer or Path(step.propose.model or "").name
        return f"propose ({source}, {step.propose.candidates} candidate{'s' if step.propose.candidates != 1 else ''})"
    if step.kind == "nominal":
        return f"minimax ({step.gradient})"
    if step.kind == "yield":
        return f"yield l1 ({step.gradient})"
    if step.kind == "staged":
        return "staged BFGS"
    if step.kind == "baseline":
        return f"baseline {step.baseline}"
    return f"verify ({step.verify.samples if step.verify else 0} new)"


def _propose(spec: Spec, evaluator: Evaluator, step: Step, out: Path) -> Result:
    """Load the step's model, re-simulate its candidates, write ``proposals.csv``; the best is the start."""
    from optiyield.propose import ModelProposer, Proposer, propose_start

    options = step.propose
    assert options is not None and spec.path is not None
    started = time.perf_counter()
    before = (evaluator.counters.simulations, evaluator.counters.cached, evaluator.counters.ngspice_seconds)
    proposer: Proposer
    if options.sizer is not None:
        from optiyield.propose.lna_cascode import LnaCascodeSizer

        sizers = {"lna_cascode": LnaCascodeSizer}
        proposer, kind = sizers[options.sizer](**options.options), options.sizer
    else:
        from optiyield.propose.inverse import load_inverse

        model = load_inverse(spec.path.parent / (options.model or ""), spec)
        proposer, kind = ModelProposer(model, options.targets), model.kind
    proposal = propose_start(proposer, spec, evaluator, options.candidates, options.seed,
                             sequential=options.sequential)
    proposal.frame(evaluator.names).to_csv(out / "proposals.csv", index_label="candidate")
    met = int((proposal.error <= 0).sum())
    return Result(method=f"propose ({kind})", x=proposal.x, design=evaluator.design(proposal.x),
                  objective=float(proposal.error[proposal.best]), yield_estimate=None, iterations=1,
                  simulations=evaluator.counters.simulations - before[0], cached=evaluator.counters.cached - before[1],
                  ngspice_seconds=evaluator.counters.ngspice_seconds - before[2],
                  wall_seconds=time.perf_counter() - started,
                  status=f"{len(proposal.designs)} candidates re-simulated, {met} meet every spec; "
                         f"best is candidate {proposal.best}")


def _verify(spec: Spec, evaluator: Evaluator, x: np.ndarray, step: Step, out: Path) -> MonteCarloResult:
    from optiyield.report.files import write_outputs

    options = step.verify
    assert options is not None
    seed = options.seed if options.seed is not None else spec.run.seed + 7919  # fresh: not the optimizer's set
    outcomes = OutcomeSet.draw(spec.model, options.samples, spec.run.sampler, seed)  # type: ignore[arg-type]
    before = (evaluator.counters.ngspice_seconds, evaluator.counters.wall_seconds, evaluator.counters.runs)
    responses = evaluator.responses(x, outcomes)
    result = assemble(spec, spec.nominal(evaluator.design(x)), responses.rows,
                      {k: v[0] for k, v in responses.values.items()}, responses.status[0], responses.reason[0],
                      wall_seconds=evaluator.counters.wall_seconds - before[1],
                      ngspice_seconds=evaluator.counters.ngspice_seconds - before[0],
                      runs=evaluator.counters.runs - before[2], seed=seed, sampler=spec.run.sampler)
    write_outputs(spec, result, out)
    return result
