"""Staged BFGS: nominal design by knowledge-staged parameter groups (issue "Optimizers", point 5).

A designer knows which knobs act on which specs: the gate bias sets the power, width and load set
gain and bandwidth. A spec's ``stages:`` says so: each stage names specs (optionally re-weighted) and
the design variables allowed to move for them. Each stage minimises the weighted penalty

    P_s(x) = Σ_{j ∈ stage} w_j · max(0, e_j(x) + margin)²

over ONLY its variables (the others stay bit-identical) with L-BFGS-B in normalised variables
u = (x − lower)/(upper − lower) ∈ [0, 1], so volts, microns and ohms mix. ``margin`` (scaled error
units, default 0.01) aims slightly inside each bound: with a plain max(0, e)² the gradient vanishes
at the bound, and quasi-Newton steps then creep towards e = 0 from the failing side. A stage stops
at L-BFGS-B convergence, as soon as all its specs pass (e ≤ 0), or when the budget is spent. The
stage sequence is repeated up to ``rounds`` times until every spec passes, the simulation budget is
spent, or a whole round changes nothing.

A stage sees only its own specs, so it may break specs of other stages (raising W for gain raises the
power); the next round's stages repair that when their variables can. With ``protect`` = p > 0 a stage
also *guards* the specs of other stages that pass when it starts: each adds p·w_j·max(0, e_j + margin)²
to the stage objective (with the same margin, so a guard that passes with room costs nothing, and one
at its bound is held just inside it), and the stage stops early only when its own specs pass and no
guard is broken. That is what a designer does when fixing linearity without giving back the input
match. When the next round's stages cannot repair a spec (a spec whose stage passes while another
stage's spec fails for want of that stage's variables), the run stops with "no progress" and names
the failing specs: the stage plan, not the optimizer, needs changing.

Gradients are forward differences in u (step ``step``, backwards at the upper bound) and the k + 1
points of one gradient go to the evaluator as ONE request, i.e. one batched engine call.

Before optimizing, the transistor region check (:mod:`optiyield.optim.region`) runs at the start
point when the testbench lists ``transistors``. A device out of saturation does NOT stop the run: it
is reported prominently (first history record and the head of ``status``) and the optimization goes
on, because a designer wants to know, and the staged moves may well bring the device into saturation.
The check runs again at the final point, so the status says whether that happened. Each check is one
single-sample ``.op`` run, counted by the evaluator like any simulation (:meth:`Evaluator.probe`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import Field
from scipy.optimize import minimize

from optiyield.objective import ErrorModel, weighted_penalty
from optiyield.optim.evaluator import Responses
from optiyield.optim.method import Problem
from optiyield.optim.region import RegionCheckError, format_region_report, region_check
from optiyield.optim.result import IterationCallback, IterationRecord, Result
from optiyield.registry import StepMethod, StepOptions
from optiyield.sim.meter import Meter, Span
from optiyield.spec import Stage


class StagedEvaluator(Protocol):
    """What :func:`staged_bfgs` needs of an :class:`~optiyield.optim.evaluator.Evaluator`: design
    variable ``names``, bounds ``lower``/``upper`` and start ``x0`` (SI, shape (n,)), the error model,
    the cost meter, and ``responses(points (M, n))`` whose ``values[measure]`` have shape (M, 1) (only
    ``values`` is read)."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    x0: np.ndarray
    errors: ErrorModel
    meter: Meter

    def responses(self, points: np.ndarray, outcomes: Any = None) -> Responses:
        """Simulate M design points nominally in one request."""
        ...


class _Stop(Exception):
    """Raised inside the stage objective to end L-BFGS-B early (specs pass or budget spent)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Problem:
    """Evaluations of the full error vector at design points, with the budget and a point cache."""

    def __init__(self, evaluator: StagedEvaluator, budget: int) -> None:
        self.evaluator, self.budget = evaluator, budget
        self.start = evaluator.meter.simulations
        self.cache: dict[bytes, np.ndarray] = {}
        self.values: dict[bytes, dict[str, float]] = {}

    @property
    def used(self) -> int:
        """Simulations spent so far by this optimizer."""
        return self.evaluator.meter.simulations - self.start

    def errors(self, points: np.ndarray) -> np.ndarray:
        """Errors (M, J) at design points (M, n); one evaluator request for the uncached ones.

        Raises :class:`_Stop` when simulating them would exceed the budget.
        """
        points = np.atleast_2d(points)
        todo = [i for i, x in enumerate(points) if x.tobytes() not in self.cache]
        if todo:
            if self.used + len(todo) > self.budget:
                raise _Stop("budget")
            values = self.evaluator.responses(points[todo]).values
            errs = self.evaluator.errors.errors({k: v[:, 0] for k, v in values.items()})
            for row, i in enumerate(todo):
                self.cache[points[i].tobytes()] = errs[row]
                self.values[points[i].tobytes()] = {k: float(v[row, 0]) for k, v in values.items()}
        return np.stack([self.cache[x.tobytes()] for x in points])


def _function_weights(errors: ErrorModel, weights: Mapping[str, float] | Sequence[float] | np.ndarray | None
                      ) -> np.ndarray:
    """Weights (J,) of the error functions: the specs' own, or ``weights`` per spec name or per function."""
    if weights is None:
        return errors.weights
    if isinstance(weights, Mapping):
        return np.array([float(weights.get(f.measure, f.weight)) for f in errors.functions])
    array = np.asarray(weights, dtype=float)
    if array.shape != (len(errors),):
        raise ValueError(f"weights: expected {len(errors)} values (one per error function), got {array.shape}")
    return array


def _passing(errors: ErrorModel, e: np.ndarray) -> dict[str, bool]:
    """Spec name → True when all its bounds are met."""
    status: dict[str, bool] = {}
    for f, value in zip(errors.functions, e, strict=True):
        status[f.measure] = status.get(f.measure, True) and bool(value <= 0)
    return status


def _region_record(evaluator: StagedEvaluator, x: np.ndarray, when: str,
                   values: Mapping[str, float] | None = None) -> IterationRecord | None:
    """Region check at x as a history record, or None when neither the spec's ``regions`` nor the testbench's
    ``transistors`` name a device. Devices with a ``regions:`` constraint are judged from their measures in
    ``values`` (the design's own simulation: no extra run); other listed transistors by one ``.op`` probe."""
    spec = getattr(evaluator, "spec", None)
    probe = getattr(evaluator, "probe", None)
    constrained = tuple(getattr(spec, "regions", ()) or ()) if values is not None else ()
    covered = {r.device.lower() for r in constrained}
    listed = [t for t in (spec.testbench.transistors if spec is not None else ()) if t.lower() not in covered]
    if spec is None or (not constrained and (probe is None or not listed)):
        return None
    design = {n: float(v) for n, v in zip(evaluator.names, x, strict=True)}
    simulations = evaluator.meter.simulations
    data: dict[str, Any] = {"kind": "region-check", "when": when}
    regions: list[Any] = []
    try:
        if listed and probe is not None:
            regions = region_check(spec, design, probe, transistors=listed)  # one single-sample .op run, counted
    except RegionCheckError as exc:
        data.update(regions=[], saturated=None, report=f"region check failed: {exc}")
    else:
        found = dict(values or {})
        constraints = [{"device": r.device, "region": r.request.region, "margin": r.request.margin,
                        "met": r.met(found), "values": {m: found.get(m) for m in r.measures},
                        "describe": r.describe(found)} for r in constrained]
        data.update(regions=regions, constraints=constraints,
                    saturated=all(r.saturated for r in regions) and all(c["met"] for c in constraints),
                    report=format_region_report(regions, constraints))
    return IterationRecord(phase="staged-bfgs", iteration=0, simulations=simulations, x=design,
                           event=f"region check ({when})", data=data)


def staged_bfgs(
    evaluator: StagedEvaluator,
    stages: Sequence[Stage],
    weights: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
    rounds: int = 3,
    budget: int = 2000,
    callback: IterationCallback | None = None,
    *,
    x0: np.ndarray | None = None,
    step: float = 1e-3,
    margin: float = 0.01,
    max_iter: int = 30,
    check_regions: bool = True,
    protect: float = 0.0,
) -> Result:
    """Optimize the nominal design stage by stage (see the module docstring).

    ``stages`` in order; ``weights`` the spec weights (spec name → weight, or one per error function;
    default the specs' own ``weight``), overridden within a stage by the stage's own weights.
    ``rounds`` caps the repetitions of the stage sequence, ``budget`` the simulations (samples, as
    counted by ``evaluator.meter.simulations``). ``step`` is the forward-difference step in
    normalised units, ``margin`` the target depth inside each bound in scaled error units,
    ``max_iter`` the L-BFGS-B iterations per stage run. ``protect`` the guard weight factor of the other
    stages' passing specs (0: a stage sees only its own specs). ``callback`` gets every history record.
    ``x0`` is the start design (default: the evaluator's start point).

    Returns a :class:`Result` with method ``staged-bfgs``, the final design, ``objective`` = total
    weighted penalty Σ_j w_j max(0, e_j)² over all specs (0 when all pass), no yield estimate, and
    ``iterations`` = stage records. Its history holds the region checks (``kind: region-check``: ``when``
    start/end, ``regions``, ``saturated``, ``report``) and one ``kind: stage`` record per stage run:
    ``round``, ``stage``, ``variables``, ``penalty_before``/``penalty_after`` (the stage objective,
    margin included), ``objective`` (total penalty), ``passing`` (spec → met), ``stage_simulations``,
    ``simulations`` (evaluator total so far), ``lbfgs_iterations``, ``stopped`` (why), ``x`` (design
    mapping) and ``skipped`` (True when the stage's specs already passed: no simulation).
    """
    meter = evaluator.meter
    cost = meter.span()
    model = evaluator.errors
    names = tuple(evaluator.names)
    lower, upper = np.asarray(evaluator.lower, dtype=float), np.asarray(evaluator.upper, dtype=float)
    span = upper - lower
    base_weights = _function_weights(model, weights)
    problem = _Problem(evaluator, budget)
    history: list[IterationRecord] = []
    notes: list[str] = []

    def emit(record: IterationRecord) -> None:
        history.append(record)
        if callback is not None:
            callback(record)

    def stage_record(iteration: int, x: dict[str, float], objective: float, data: dict[str, Any]) -> IterationRecord:
        return IterationRecord(phase="staged-bfgs", iteration=iteration, simulations=meter.simulations, x=x,
                               objective=objective, data={"kind": "stage", **data})

    x = np.clip(np.asarray(evaluator.x0 if x0 is None else x0, dtype=float).copy(), lower, upper)
    try:
        e = problem.errors(x)[0]
    except _Stop:
        e = None
    start_region = _region_record(evaluator, x, "start", problem.values.get(x.tobytes())) if check_regions else None
    if start_region is not None:
        emit(start_region)
        if start_region["saturated"] is False:
            notes.append("WARNING at the start point: " + start_region["report"].splitlines()[0].removeprefix(
                "region check: ") + " (optimization continued)")

    plans = []
    for stage in stages:
        unknown = [v for v in stage.variables if v not in names]
        if unknown:
            raise ValueError(f"stage {stage.name!r}: {', '.join(unknown)} not among the design variables")
        active = [i for i in (names.index(v) for v in stage.variables) if span[i] > 0]
        rows = [j for j, f in enumerate(model.functions) if f.measure in stage.spec_names]
        stage_w = stage.weights
        w = np.array([stage_w[model.functions[j].measure] if stage_w else base_weights[j] for j in rows])
        plans.append((stage, np.array(active, dtype=int), np.array(rows, dtype=int), w))

    def total(e: np.ndarray) -> float:
        return weighted_penalty(e, base_weights)

    def design(point: np.ndarray) -> dict[str, float]:
        return {n: float(v) for n, v in zip(names, point, strict=True)}

    if e is None:
        return _finish(evaluator, x, np.nan, history, 0, cost,
                       f"budget of {budget} simulations too small to evaluate the start point", notes)
    stop = ""
    runs = 0
    iteration = 0
    for round_index in range(1, rounds + 1):
        if all(_passing(model, e).values()):
            stop = "all specs met"
            break
        x_round = x.copy()
        for stage, active, rows, w in plans:
            iteration += 1
            before = weighted_penalty(e[rows] + margin, w)
            spent = problem.used
            passing = _passing(model, e)
            record: dict[str, Any] = {"round": round_index, "stage": stage.name,
                                      "variables": [names[i] for i in active], "penalty_before": before}
            if all(passing[s] for s in stage.spec_names) or active.size == 0 or rows.size == 0:
                reason = "specs already pass" if rows.size and active.size else "nothing to optimize"
                record.update(penalty_after=before, passing=passing, stage_simulations=0, lbfgs_iterations=0,
                              stopped=reason, skipped=True)
                emit(stage_record(iteration, design(x), total(e), record))
                continue
            guards = np.array([j for j, f in enumerate(model.functions) if protect > 0
                               and f.measure not in stage.spec_names and e[j] <= 0], dtype=int)
            record["guards"] = sorted({model.functions[j].measure for j in guards})
            x, e, nit, why = _run_stage(problem, x, e, active, rows, w, lower, span, step, margin, max_iter,
                                        model, stage.spec_names, guards, protect * base_weights[guards])
            runs += 1
            record.update(penalty_after=weighted_penalty(e[rows] + margin, w), passing=_passing(model, e),
                          stage_simulations=problem.used - spent, lbfgs_iterations=nit, stopped=why, skipped=False)
            emit(stage_record(iteration, design(x), total(e), record))
            if why == "budget":
                stop = f"budget of {budget} simulations spent"
                break
            if all(_passing(model, e).values()):
                stop = "all specs met"
                break
        if stop:
            break
        if all(_passing(model, e).values()):
            stop = "all specs met"
            break
        if np.array_equal(x, x_round):
            stop = f"no progress in round {round_index}"
            break
    else:
        stop = "all specs met" if all(_passing(model, e).values()) else f"{rounds} rounds done"

    status = f"{stop} after {runs} stage run{'s' if runs != 1 else ''}"
    failing = [s for s, ok in _passing(model, e).items() if not ok]
    if failing:
        status += f"; failing: {', '.join(failing)}"
    end_region = _region_record(evaluator, x, "end", problem.values.get(x.tobytes())) if check_regions else None
    if end_region is not None:
        emit(end_region)
        notes.append("at the final point: " + end_region["report"].splitlines()[0].removeprefix("region check: "))
    return _finish(evaluator, x, total(e), history, iteration, cost, status, notes)


def _run_stage(problem: _Problem, x: np.ndarray, e: np.ndarray, active: np.ndarray, rows: np.ndarray,
               w: np.ndarray, lower: np.ndarray, span: np.ndarray, step: float, margin: float, max_iter: int,
               model: ErrorModel, specs: Sequence[str], guards: np.ndarray | None = None,
               guard_w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int, str]:
    """One L-BFGS-B run over the ``active`` variables; returns (x, errors, iterations, why it stopped).

    The stage penalty is Σ w (e + margin)₊² over its ``rows`` plus Σ guard_w (e + margin)₊² over the
    ``guards`` (error functions to keep passing). The result is the best evaluated point (lowest stage penalty);
    inactive entries of x are copied, never recomputed, so they stay bit-identical.
    """
    upper = lower + span
    guards = np.zeros(0, dtype=int) if guards is None else guards
    guard_w = np.zeros(0) if guard_w is None else guard_w

    def penalty(errors: np.ndarray) -> float:
        return weighted_penalty(errors[rows] + margin, w) + weighted_penalty(errors[guards] + margin, guard_w)

    def point(u: np.ndarray) -> np.ndarray:
        xx = x.copy()
        xx[active] = np.clip(lower[active] + u * span[active], lower[active], upper[active])
        return xx

    best = {"x": x, "e": e, "f": penalty(e)}

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        u = np.clip(u, 0.0, 1.0)
        h = np.where(u + step <= 1.0, step, -step)
        us = np.vstack([u, u + np.diag(h)])
        points = np.vstack([point(ui) for ui in us])
        errs = problem.errors(points)
        values = np.array([penalty(ei) for ei in errs])
        f0 = float(values[0])
        if f0 < best["f"]:
            best.update(x=points[0], e=errs[0], f=f0)
        if all(_passing(model, errs[0])[s] for s in specs) and not np.any(errs[0][guards] > 0):
            best.update(x=points[0], e=errs[0], f=f0)
            raise _Stop("specs pass")
        return f0, (values[1:] - f0) / h

    u0 = (x[active] - lower[active]) / span[active]
    state = {"nit": 0}

    def count(_: np.ndarray) -> None:
        state["nit"] += 1

    try:
        result = minimize(fun, u0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(active),
                          callback=count, options={"maxiter": max_iter})
        message = str(result.message)
        if result.success:
            why = "converged"
        elif message.startswith("ABNORMAL"):
            why = "line search failed (no descent along the finite-difference gradient)"
        else:
            why = message or "stopped"
        nit = int(result.nit)
    except _Stop as stop:
        nit, why = state["nit"], stop.why
    return best["x"], best["e"], nit, why


def _finish(evaluator: StagedEvaluator, x: np.ndarray, objective: float, history: list[IterationRecord],
            iterations: int, cost: Span, status: str, notes: list[str]) -> Result:
    """Assemble the :class:`Result` (warnings from the region checks lead the status)."""
    warnings = [n for n in notes if n.startswith("WARNING")]
    others = [n for n in notes if not n.startswith("WARNING")]
    text = "; ".join(warnings + [status] + others)
    return Result(
        method="staged-bfgs", x=x, design={n: float(v) for n, v in zip(evaluator.names, x, strict=True)},
        objective=float(objective), yield_estimate=None, history=history, iterations=iterations, cost=cost.cost,
        status=text,
    )


class StagedOptions(StepOptions):
    """``{staged: bfgs, …}``: the spec's ``stages`` repeated up to ``rounds`` times within ``budget``
    simulations; ``protect``: guard weight of the other stages' passing specs (0: off)."""

    rounds: int = Field(3, ge=1)
    budget: int = Field(2000, ge=1)
    protect: float = Field(0.0, ge=0)

    def check(self, spec: Any, folder: Path) -> Iterator[tuple[str, str]]:
        """A staged step needs the spec's ``stages``."""
        if not spec.stages:
            yield "", "a `staged` step needs `stages:` in the spec"


def _run(problem: Problem, x0: np.ndarray, options: StagedOptions, callback: IterationCallback | None) -> Result:
    return staged_bfgs(problem.evaluator, problem.spec.file.stages, rounds=options.rounds, budget=options.budget,
                       protect=options.protect, x0=x0, callback=callback)


METHOD = StepMethod(kind="staged", name="bfgs", options=StagedOptions, run=_run, label=lambda o: "staged BFGS")
