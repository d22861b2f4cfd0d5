"""The public Python API: everything the command line does, from a notebook or a script.

>>> import optiyield as oy
>>> problem = oy.load("specs/csva.yaml")               # or oy.load({...spec as a dict...}, base="specs")
>>> mc = problem.at(W="6u").monte_carlo(samples=500)   # Monte Carlo yield at another design point
>>> mc.per_spec                                         # a pandas DataFrame; `mc` renders as HTML in Jupyter
>>> run = problem.run("out/csva", fresh=True)          # run.steps: minimax → yield → verify, with the store

:func:`load` returns a :class:`Problem` (the validated spec and its testbench). Its methods return typed
results (:class:`YieldResult`, :class:`SensitivityResult`, :class:`RunResult`) whose tables are pandas
DataFrames. Errors are the command line's, as exceptions: :class:`~optiyield.errors.SpecError` for a bad
spec or testbench (the CLI's exit code 2), :class:`OptionError` for a bad argument, :class:`RunError` when
a run cannot start, :class:`NgspiceNotFound` and :class:`ClusterError` when nothing can simulate (exit 3).
docs/python-api.md documents every call; tests/test_api.py runs its examples.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from optiyield.errors import SpecError
from optiyield.execute import ClusterError
from optiyield.run import RunError
from optiyield.sim.ngspice.runner import NgspiceNotFound
from optiyield.store import StoreMismatch
from optiyield.units import format_eng
from optiyield.yield_ import YieldEstimate

if TYPE_CHECKING:
    from optiyield.montecarlo import MonteCarloResult
    from optiyield.optim.result import IterationRecord
    from optiyield.reliability.corners import Corner
    from optiyield.reliability.result import FailureEstimate
    from optiyield.run import RunReport, StepReport
    from optiyield.spec import Spec

__all__ = [
    "ClusterError", "CornerResult", "HighSigmaResult", "NgspiceNotFound", "OptionError", "Problem", "RunError",
    "RunResult", "SensitivityResult", "SpecError", "StoreMismatch", "WorstCaseAnalysis", "YieldEstimate",
    "YieldResult", "load", "open_run",
]

#: What ``progress=`` takes: None, True (a progress bar) or a function called with the number of samples
#: that just finished.
Progress = bool | Callable[[int], None] | None

#: Written by :meth:`Problem.run` before the first simulation: the spec, its file and the planned steps, so
#: that ``optiyield serve`` can follow a run that has not finished (run_summary.json comes at the end).
RUN_INFO = "run_info.json"


class OptionError(ValueError):
    """An argument has a value the call does not accept; ``option`` names it (the CLI prints ``--option``)."""

    def __init__(self, option: str, message: str) -> None:
        self.option, self.message = option, message
        super().__init__(f"{option}: {message}")


# ------------------------------------------------------------------------------------------------ loading


def load(source: str | os.PathLike[str] | Mapping[str, Any], *, base: str | os.PathLike[str] | None = None,
         name: str = "<spec>") -> Problem:
    """Load a design problem from a spec file, or from a spec given as a mapping (the YAML's content).

    For a mapping, relative paths (testbench file, netlist, PySpice builder, model files) resolve against
    ``base`` (default: the working directory) and ``name`` labels it in error messages. An inline
    testbench may give ``pyspice:`` as a PySpice ``Circuit`` object or a function returning one, instead of
    ``"FILE.py:NAME"`` (docs/python-api.md). Raises :class:`SpecError` naming the key and the problem.
    """
    from optiyield.spec import load_spec, spec_from_data

    if isinstance(source, Mapping):
        folder = Path(base) if base is not None else Path.cwd()
        data, netlist = _pyspice_objects(dict(source), folder, name)
        return Problem(spec_from_data(data, folder, name, netlist))
    if not isinstance(source, str | os.PathLike):
        raise OptionError("source", f"expected a spec file (a path) or a mapping, got {type(source).__name__}")
    if base is not None:
        raise OptionError("base", "is for a spec given as a mapping; a spec file's paths resolve against its folder")
    return Problem(load_spec(Path(source)))


def _pyspice_objects(data: dict[str, Any], base: Path, name: str) -> tuple[dict[str, Any], Any]:
    """An inline testbench whose ``pyspice`` is a Circuit or a function: its netlist, and the data with a
    label in its place (the schema takes ``FILE.py:NAME`` strings)."""
    testbench = data.get("testbench")
    if not isinstance(testbench, Mapping) or isinstance(testbench.get("pyspice", ""), str):
        return data, None
    from optiyield.pyspice_netlist import PySpiceError, pyspice_netlist

    source = testbench["pyspice"]
    try:
        netlist = pyspice_netlist(source, base)
    except PySpiceError as exc:
        raise SpecError(name, "testbench.pyspice", str(exc)) from None
    label = getattr(source, "__name__", None) or getattr(source, "title", None) or "circuit"
    return {**data, "testbench": {**testbench, "pyspice": f"<{label}>"}}, netlist


def open_run(out: str | os.PathLike[str], problem: Problem | None = None) -> RunResult:
    """The results of a finished ``optiyield run`` from its output folder (run_summary.json, store.sqlite,
    samples.parquet), without simulating. ``problem`` defaults to the spec file the run names."""
    from optiyield.report.html import ReportError, load_folder

    folder = Path(out)
    try:
        data = load_folder(folder, problem.spec if problem is not None else None)
    except ReportError as exc:
        raise RunError(str(exc)) from None
    if data.run is None:
        raise RunError(f"{folder}: no run_summary.json (not an `optiyield run` folder, or the run has not finished)")
    page = folder / "report.html"
    return RunResult(problem=problem or Problem(data.spec), out=folder, summary=data.run,
                     history_records=data.history or [], samples=data.samples,
                     report_path=page if page.is_file() else None)


# ------------------------------------------------------------------------------------------------ helpers


def _spec_of(problem: Problem | Spec) -> Spec:
    return problem.spec if isinstance(problem, Problem) else problem


def _pct(est: YieldEstimate | Mapping[str, Any] | None) -> str:
    if est is None:
        return ""
    value, low, high = ((est.value, est.low, est.high) if isinstance(est, YieldEstimate)
                        else (est["value"], est["low"], est["high"]))
    return f"{value * 100:.1f} % [{low * 100:.1f}, {high * 100:.1f}]"


def _limit_text(minimum: float | None, maximum: float | None) -> str:
    return " ".join(part for part in (f"≥ {format_eng(minimum)}" if minimum is not None else "",
                                      f"≤ {format_eng(maximum)}" if maximum is not None else "") if part)


def _html(title: str, lines: Sequence[str], tables: Sequence[tuple[str, pd.DataFrame]]) -> str:
    """A small HTML block for Jupyter: a title, a few lines of text, captioned tables."""
    parts = [f"<div class='optiyield'><strong>{html.escape(title)}</strong>"]
    parts += [f"<div>{html.escape(line)}</div>" for line in lines if line]
    for caption, frame in tables:
        parts.append(f"<div style='margin-top:6px'><em>{html.escape(caption)}</em></div>")
        parts.append(frame.to_html(float_format=lambda v: f"{v:.6g}", na_rep="", border=0))
    parts.append("</div>")
    return "".join(parts)


def _engine(spec: Spec, workers: int | None, cluster: str | None):  # noqa: ANN202 - Engine | DaskEngine
    """The engine of a call: ``cluster``/``workers`` override the spec's run.cluster/run.workers."""
    from optiyield.execute import make_engine, parse_cluster

    if workers is not None and workers < 1:
        raise OptionError("workers", f"expected at least 1, got {workers}")
    if cluster is not None:
        try:
            parse_cluster(cluster)
        except ValueError as exc:
            raise OptionError("cluster", str(exc)) from None
    return make_engine(cluster or spec.run.cluster, workers or spec.run.workers)


def _engine_for(spec: Spec, workers: int | None, cluster: str | None, given: Any) -> Any:
    """The engine of a call: the caller's (left open: a null context around it), else a new one closed after."""
    return contextlib.nullcontext(given) if given is not None else _engine(spec, workers, cluster)


class _Bar:
    """``progress=True``: a rich progress bar (terminal or Jupyter), closed when the work ends."""

    def __init__(self, progress: Progress, description: str, total: int | None) -> None:
        self.callback: Callable[[int], None] | None = progress if callable(progress) else None
        self._bar = None
        if progress is True:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            columns = (TextColumn("[bold]{task.description}"), BarColumn(),
                       MofNCompleteColumn() if total else TextColumn("{task.completed} samples"), TimeElapsedColumn())
            self._bar = Progress(*columns, transient=True)
            self._task = self._bar.add_task(description, total=total)
            self.callback = lambda n: self._bar.advance(self._task, n)  # type: ignore[union-attr]

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def __enter__(self) -> _Bar:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# ------------------------------------------------------------------------------------------------ problem


class Problem:
    """A loaded design problem: the validated spec (``.spec``, an :class:`optiyield.spec.Spec`) and its testbench.

    Immutable: :meth:`at` and :meth:`with_run` return new problems. Tables are pandas DataFrames in SI units.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        """The spec's name."""
        return self.spec.name

    @property
    def path(self) -> Path | None:
        """The spec file (None for a spec given as a mapping)."""
        return self.spec.path

    @property
    def design(self) -> pd.DataFrame:
        """Design variables: ``start``, ``min``, ``max`` (SI), one row per variable."""
        start = self.spec.design_start
        return pd.DataFrame({"start": start, "min": {n: v.min for n, v in self.spec.file.design.items()},
                             "max": {n: v.max for n, v in self.spec.file.design.items()}},
                            index=pd.Index(list(start), name="variable"))

    @property
    def specs(self) -> pd.DataFrame:
        """Specifications: ``min``, ``max``, ``unit``, ``weight``, one row per measure."""
        rows = {name: {"min": b.min, "max": b.max, "unit": self.spec.testbench.unit(name), "weight": b.weight}
                for name, b in self.spec.file.specs.items()}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("spec")

    @property
    def variation(self) -> pd.DataFrame:
        """Sources of variation: ``parameters``, ``dist``, ``spread`` (SI; a fraction when ``relative``), ``mode``."""
        rows = [{"name": d.name, "parameters": ", ".join(d.targets), "dist": d.dist, "spread": d.spread,
                 "relative": d.relative, "mode": d.mode} for d in self.spec.model.draws]
        return pd.DataFrame(rows, columns=["name", "parameters", "dist", "spread", "relative", "mode"])

    @property
    def measures(self) -> tuple[str, ...]:
        """Every measure the testbench reports (specs are a subset)."""
        return self.spec.testbench.measure_names

    @property
    def steps(self) -> list[str]:
        """The run steps, as labels (``minimax (igat)``, ``verify (2000 new)``)."""
        return [step.label for step in self.spec.run.steps]

    def __repr__(self) -> str:
        return (f"<optiyield.Problem {self.name!r}: {len(self.spec.file.design)} design variables, "
                f"specs {', '.join(self.spec.file.specs)}>")

    def _repr_html_(self) -> str:
        tb = self.spec.testbench
        lines = [f"testbench {tb.name} ({'batched copies' if tb.copies else 'one process per sample'}); "
                 f"{len(self.spec.file.design)} design variables, {self.spec.model.dims} random dimensions",
                 f"run steps: {' → '.join(self.steps)}"]
        return _html(f"optiyield problem {self.name}", lines,
                     [("design variables", self.design), ("specs", self.specs)])

    def at(self, design: Mapping[str, Any] | None = None, **values: Any) -> Problem:
        """The same problem started at another design point: ``problem.at(W="6u", Rd=1.2e3)`` (numbers in SI or
        engineering strings). Each value must lie within its bounds (:class:`SpecError` otherwise)."""
        from optiyield.spec import revise

        return Problem(revise(self.spec, start={**(design or {}), **values}))

    def with_run(self, **settings: Any) -> Problem:
        """The same problem with run settings replaced: ``seed``, ``samples``, ``sampler``, ``confidence``,
        ``ci_width``, ``chunk``, ``workers``, ``cluster``, ``steps`` (a list such as
        ``[{"nominal": "minimax"}, {"verify": {"samples": 500}}]``), validated as in a spec file."""
        from optiyield.spec import revise

        return Problem(revise(self.spec, run=settings))

    def monte_carlo(self, samples: int | None = None, *, seed: int | None = None, sampler: str | None = None,
                    design: Mapping[str, Any] | None = None, ci_width: float | None = None,
                    workers: int | None = None, cluster: str | None = None, progress: Progress = None,
                    engine: Any = None) -> YieldResult:
        """Monte Carlo yield at the start point (or at ``design``), with its interval.

        Arguments override the spec's run settings: ``samples`` (the maximum with ``ci_width``), ``seed``,
        ``sampler`` (``mc`` or ``sobol``), ``ci_width`` (stop once the interval is narrower), ``workers``
        (parallel ngspice processes), ``cluster`` (``local:N`` or ``tcp://HOST:PORT``). ``progress`` is True
        (a progress bar) or a function called with each number of finished samples. ``engine``: an engine the
        caller made (:func:`optiyield.execute.make_engine`) and keeps open across calls (e.g. a Dask cluster).
        """
        from optiyield.montecarlo import run_monte_carlo

        given = engine
        if sampler not in (None, "mc", "sobol"):
            raise OptionError("sampler", f"expected mc or sobol, got {sampler!r}")
        if samples is not None and samples < 1:
            raise OptionError("samples", f"expected at least 1, got {samples}")
        if ci_width is not None and not 0 < ci_width < 1:
            raise OptionError("ci-width", f"expected a width between 0 and 1 (e.g. 0.02), got {ci_width}")
        problem = self.at(design) if design else self
        total = samples or self.spec.run.samples
        with _engine_for(self.spec, workers, cluster, given) as engine, \
                _Bar(progress, f"simulating {self.name}", total) as bar:
            result = run_monte_carlo(problem.spec, engine, samples=samples, seed=seed, sampler=sampler,
                                     ci_width=ci_width, progress=bar.callback)
        return YieldResult(problem, result)

    def with_corners(self, corners: Mapping[str, Any] | None) -> Problem:
        """The same problem with its PVT corners replaced (a mapping as under ``corners:`` in a spec file, e.g.
        ``{"process": ["tt", "ff", "ss"], "VDD": ["-10%", "0%", "+10%"], "temp": [-40, 27, 125]}``; None
        removes them), validated as in a spec file (docs/corners.md)."""
        from optiyield.spec import revise

        return Problem(revise(self.spec, corners=corners))

    def corners(self, design: Mapping[str, Any] | None = None, *, samples: int | None = None,
                seed: int | None = None, workers: int | None = None, cluster: str | None = None,
                progress: Progress = None, engine: Any = None) -> CornerResult:
        """Every spec at every corner of ``corners:`` at the start point (or ``design``): ADE's corner view.

        Without ``samples`` each corner is simulated once at its nominal point; with ``samples``, the corners
        marked ``monte_carlo`` get that many outcomes (the same deviates at every corner, drawn from ``seed``,
        default run.seed) and the table gives the yield per corner and the yield across corners (an outcome
        passes only at every corner). Raises :class:`OptionError` for a spec without corners.
        """
        from optiyield.optim.corners import CornerEvaluator, corner_table
        from optiyield.stats.variation import OutcomeSet

        given = engine
        if self.spec.corners is None:
            raise OptionError("corners", f"spec {self.name!r} has no `corners:` (docs/corners.md)")
        if samples is not None and samples < 1:
            raise OptionError("samples", f"expected at least 1, got {samples}")
        problem = self.at(design) if design else self
        spec = problem.spec
        outcomes = None
        if samples is not None:
            outcomes = OutcomeSet.draw(spec.model, samples, spec.run.sampler,  # type: ignore[arg-type]
                                       spec.run.seed if seed is None else seed)
        total = len(spec.corners) * (samples or 1)  # type: ignore[arg-type]
        with _engine_for(self.spec, workers, cluster, given) as engine, \
                _Bar(progress, f"{self.name}: corners", total) as bar:
            evaluator = CornerEvaluator(spec, engine, progress=bar.callback)
            table = corner_table(evaluator, evaluator.x0, outcomes)
        return CornerResult(problem, table)

    def sensitivity(self, design: Mapping[str, Any] | None = None, *, design_step: float = 0.01,
                    workers: int | None = None, cluster: str | None = None, engine: Any = None) -> SensitivityResult:
        """Which parameters move each spec, at the start point (or ``design``): batched central differences
        (design variables ±``design_step`` of their range, sources of variation ± one sigma or ± tolerance)."""
        from optiyield.sensitivity import sensitivity

        given = engine
        if not 0 < design_step < 1:
            raise OptionError("design_step", f"expected a fraction of the range between 0 and 1, got {design_step}")
        problem = self.at(design) if design else self
        with _engine_for(self.spec, workers, cluster, given) as engine:
            result = sensitivity(problem.spec, engine, problem.spec.design_start, design_step)
        return SensitivityResult(problem, result)

    def worst_case(self, design: Mapping[str, Any] | None = None, *, specs: Sequence[str] | None = None,
                   explore: int = 200, seed: int | None = None, max_iter: int = 15, workers: int | None = None,
                   cluster: str | None = None, engine: Any = None) -> WorstCaseAnalysis:
        """Worst-case distances at the start point (or ``design``): per spec bound, the worst-case point in the
        standardized statistical space (the most likely failing outcome), its signed distance β (positive when
        the nominal passes), the linearized yield Φ(β) and the statistical corner (every parameter's value
        there). The searches from the nominal are batched (one engine call per iteration for all bounds);
        ``explore`` scaled-sigma points then look for failure regions the searches cannot see (0: none).
        ``specs`` keeps some specs only; ``seed`` (default run.seed) seeds the exploration."""
        from optiyield.reliability.circuit import CircuitLimitState
        from optiyield.reliability.corners import corners, search

        if explore < 0:
            raise OptionError("explore", f"expected 0 or more points, got {explore}")
        if max_iter < 2:
            raise OptionError("max_iter", f"expected at least 2 iterations, got {max_iter}")
        problem = self.at(design) if design else self
        self._check_statistics(specs)
        with _engine_for(self.spec, workers, cluster, engine) as runner:
            state = CircuitLimitState(problem.spec, runner, specs=list(specs) if specs else None)
            found = search(state, explore=explore, seed=self.spec.run.seed if seed is None else seed,
                           max_iter=max_iter)
            return WorstCaseAnalysis(problem, corners(state, list(found.points)), found.simulations, found.batches,
                                     found.explored)

    def high_sigma(self, method: str = "is", *, budget: int = 1000, design: Mapping[str, Any] | None = None,
                   specs: Sequence[str] | None = None, seed: int | None = None, workers: int | None = None,
                   cluster: str | None = None, engine: Any = None) -> HighSigmaResult:
        """The failure probability at the start point (or ``design``) with its 95 % interval and sigma level,
        by ``method``: ``is`` (worst-case points, then importance sampling around all of them), ``mc`` (plain
        Monte Carlo), ``subset``, ``ce`` or ``nais`` (OpenTURNS, extra ``reliability``), within about ``budget``
        simulations (docs/high-sigma.md). ``specs`` keeps some specs only; ``seed`` defaults to run.seed."""
        from optiyield.reliability.circuit import CircuitLimitState
        from optiyield.reliability.estimate import METHODS, estimate_failure

        if method not in METHODS:
            raise OptionError("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
        if budget < 100:
            raise OptionError("budget", f"expected at least 100 simulations, got {budget}")
        problem = self.at(design) if design else self
        self._check_statistics(specs)
        with _engine_for(self.spec, workers, cluster, engine) as runner:
            state = CircuitLimitState(problem.spec, runner, specs=list(specs) if specs else None)
            estimate = estimate_failure(state, method, budget, seed=self.spec.run.seed if seed is None else seed)
        return HighSigmaResult(problem, estimate, list(state.labels))

    def _check_statistics(self, specs: Sequence[str] | None) -> None:
        if self.spec.model.dims == 0:
            raise OptionError("spec", f"{self.name} has no statistical variation: there is no worst case to find")
        if specs is not None:
            unknown = [n for n in specs if n not in self.spec.file.specs]
            if unknown or not specs:
                raise OptionError("specs", f"expected some of {', '.join(self.spec.file.specs)}, got {list(specs)!r}")

    def touchstone(self, path: str | os.PathLike[str], design: Mapping[str, Any] | None = None, *,
                   at: float | None = None) -> Path:
        """Write the S-parameters of an RF testbench at the start point (or ``design``) to a Touchstone file
        (``.s2p``, or ``.s1p`` for a one-port), over its ``.ac`` frequencies; ``at`` picks the sweep value of a
        sweep testbench. Needs the extra ``rf`` (scikit-rf); docs/touchstone.md says what is exported."""
        from optiyield.touchstone import write_touchstone

        problem = self.at(design) if design else self
        return write_touchstone(problem.spec, path, problem.spec.design_start, at=at)

    def run(self, out: str | os.PathLike[str] | None = None, *, steps: Sequence[Mapping[str, Any]] | None = None,
            resume: bool = False, fresh: bool = False, workers: int | None = None, cluster: str | None = None,
            progress: Progress = None, on_iteration: Callable[[IterationRecord], None] | None = None,
            on_step: Callable[[StepReport], None] | None = None, write: bool = True, report: bool = True,
            serve: bool | Mapping[str, Any] = False, on_serve: Callable[[Any], None] | None = None,
            engine: Any = None) -> RunResult:
        """Run the spec's ``run.steps`` (or ``steps``) with every evaluation journaled in ``out/store.sqlite``.

        ``out`` defaults to ``out/<spec name>``. An existing store needs ``resume=True`` (continue it; finished
        simulations are not repeated) or ``fresh=True`` (start over), else :class:`RunError`. ``progress``:
        True or a function of finished samples; ``on_iteration`` gets every
        :class:`~optiyield.optim.result.IterationRecord`, ``on_step`` every finished step. ``write`` writes
        run_summary.json and the verification outputs, ``report`` the HTML report (``RunResult.report_error``
        says why when it cannot). ``serve=True`` (or a mapping of :func:`optiyield.dashboard.start`
        arguments such as ``{"port": 8051}``) opens the live dashboard while the run goes on
        (``RunResult.dashboard``; ``on_serve(dashboard)`` is called once it listens).
        """
        from optiyield.outdir import FolderLock, prepare
        from optiyield.run import STORE_NAME, execute

        given = engine
        problem = self.with_run(steps=list(steps)) if steps is not None else self
        if resume and fresh:
            raise OptionError("resume", "--resume and --fresh exclude each other")
        folder = Path(out) if out is not None else Path("out") / self.name
        store = folder / STORE_NAME  # checked here as execute() checks it, before run_info.json is written
        if store.exists() and not (resume or fresh):
            raise RunError(f"{store} exists from an earlier run: use --resume to continue it or --fresh to start over")
        if resume and not store.exists():
            raise RunError(f"--resume: no store at {store}")
        prepare(folder)  # writable, before anything starts (execute() also locks it for the run)
        with FolderLock(folder):  # another run using the folder is refused before run_info.json is touched
            pass
        dashboard = None
        if serve:  # first: a taken port is refused before an engine (perhaps a Dask cluster) starts
            from optiyield.dashboard import start

            dashboard = start(folder, problem.spec, **(dict(serve) if isinstance(serve, Mapping) else {}))
        try:
            context = _engine_for(self.spec, workers, cluster, given)
        except BaseException:
            if dashboard is not None:
                dashboard.stop()
            raise
        _write_run_info(problem.spec, folder)
        if dashboard is not None and on_serve is not None:
            on_serve(dashboard)
        with context as engine, _Bar(progress, f"{self.name}: starting", None) as bar:
            def iteration(record: IterationRecord) -> None:
                bar.describe(_describe(record))
                if on_iteration is not None:
                    on_iteration(record)

            report_ = execute(problem.spec, folder, engine, resume=resume, fresh=fresh, progress=bar.callback,
                              on_iteration=iteration, on_step=on_step)
        result = RunResult.from_report(problem, report_, folder)
        result.dashboard = dashboard
        if write:
            from optiyield.report.files import write_run

            write_run(report_, folder)
            result.write_touchstone()
            if report:
                result.write_report()
        return result


def _describe(record: IterationRecord) -> str:
    """One line for the progress display: phase, iteration and the yield or objective there."""
    if record.yield_estimate is not None:
        return f"{record.phase} · it {record.iteration} · yield {record.yield_estimate.value * 100:.1f} %"
    if record.objective is not None:
        return f"{record.phase} · it {record.iteration} · objective {record.objective:.4g}"
    return record.phase


def _write_run_info(spec: Spec, folder: Path) -> None:
    info = {"spec": spec.name, "spec_file": str(spec.path.resolve()) if spec.path else None,
            "steps": [f"{i}. {s.label}" for i, s in enumerate(spec.run.steps, start=1)],
            "design": {n: {"min": v.min, "max": v.max} for n, v in spec.file.design.items()},
            "specs": {n: {"min": b.min, "max": b.max} for n, b in spec.file.specs.items()},
            "started": time.time(), "pid": os.getpid()}
    (folder / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------ results


@dataclass
class YieldResult:
    """A Monte Carlo yield: ``yield_estimate`` (value, low, high of the interval), ``per_spec`` and
    ``samples`` tables; ``result`` is the underlying :class:`optiyield.montecarlo.MonteCarloResult`."""

    problem: Problem
    result: MonteCarloResult

    @property
    def yield_estimate(self) -> YieldEstimate:
        """The overall yield with its interval (a failed simulation counts as failing)."""
        return self.result.summary.overall

    @property
    def value(self) -> float:
        """The overall yield, a fraction."""
        return self.yield_estimate.value

    @property
    def design(self) -> dict[str, float]:
        """The design point simulated (SI)."""
        return dict(self.result.design)

    @property
    def samples(self) -> pd.DataFrame:
        """One row per sample: parameter values, every measure, ``status`` and ``reason``."""
        return self.result.table

    @property
    def failures(self) -> pd.DataFrame:
        """The samples whose simulation failed, with their reasons."""
        return self.result.failed

    @property
    def per_spec(self) -> pd.DataFrame:
        """Per spec: limits, unit, median over the simulated samples, yield with its interval, violations."""
        spec, summary, table = self.problem.spec, self.result.summary, self.result.table
        ok = table["status"] != "failed"
        rows = {}
        for name, bound in spec.file.specs.items():
            est = summary.per_spec[name]
            rows[name] = {"min": bound.min, "max": bound.max, "unit": spec.testbench.unit(name),
                          "median": float(table.loc[ok, name].median()), "yield": est.value, "low": est.low,
                          "high": est.high, "violations": summary.failures_per_spec[name]}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("spec")

    @property
    def seed(self) -> int:
        """The sampler's seed."""
        return self.result.seed

    @property
    def wall_seconds(self) -> float:
        """Elapsed simulation time, s."""
        return self.result.wall_seconds

    def save(self, folder: str | os.PathLike[str], report: bool = True) -> dict[str, Path]:
        """Write what ``optiyield yield --out`` writes: samples.csv/.parquet, summary.json, a histogram per
        spec and (``report``) report.html. Returns the written paths by role."""
        from optiyield.report.files import write_outputs

        written = write_outputs(self.problem.spec, self.result, folder)
        if report:
            from optiyield.report.html import write_report

            written["report"] = write_report(folder, self.problem.spec)
        return written

    def __str__(self) -> str:
        return f"{self.problem.name}: yield {_pct(self.yield_estimate)} ({len(self.samples)} samples)"

    def _repr_html_(self) -> str:
        res = self.result
        lines = [f"yield {_pct(self.yield_estimate)} over {len(res.table)} samples (seed {res.seed}, "
                 f"{res.sampler}); {res.summary.failed_simulations} failed simulations; "
                 f"{res.wall_seconds:.2f} s wall"]
        return _html(f"{self.problem.name}: Monte Carlo yield", lines, [("per spec", self.per_spec)])


@dataclass
class WorstCaseAnalysis:
    """Worst-case distances of every spec bound (:meth:`Problem.worst_case`): ``corners`` (one
    :class:`~optiyield.reliability.corners.Corner` per bound), the ``simulations`` spent (searches and
    exploration), the engine calls (``batches``) and the ``explored`` scaled-sigma points."""

    problem: Problem
    corners: list[Corner]
    simulations: int
    batches: int
    explored: int = 0

    @property
    def table(self) -> pd.DataFrame:
        """One row per bound: ``measure``, ``bound`` (min/max), ``limit``, ``beta`` (signed), ``yield_linear``
        Φ(β), ``failure_linear`` Φ(−β), ``status``, ``iterations``, ``measure_at_corner``."""
        rows = {c.label: {"measure": c.measure, "bound": c.bound, "limit": c.limit, "beta": c.beta,
                          "yield_linear": c.yield_linear, "failure_linear": c.failure_linear, "status": c.status,
                          "iterations": c.iterations, "measure_at_corner": c.measure_value} for c in self.corners}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("bound_label")

    @property
    def points(self) -> pd.DataFrame:
        """The worst-case points in parameter values (SI): one row per bound, one column per per-sample
        parameter; the row ``nominal`` holds the design point's values."""
        rows = {c.label: c.values for c in self.corners if c.has_point}
        if self.corners:
            rows = {"nominal": self.corners[0].nominal, **rows}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("bound_label")

    @property
    def shifts(self) -> pd.DataFrame:
        """The worst-case points in the standardized space: one row per bound, one column per coordinate (σ)."""
        return pd.DataFrame.from_dict({c.label: c.u for c in self.corners if c.has_point},
                                      orient="index").rename_axis("bound_label")

    @property
    def beta_min(self) -> float:
        """The smallest worst-case distance over the bounds."""
        return float(min(c.beta for c in self.corners))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``wcd.json``)."""
        return {"spec": self.problem.name, "design": self.problem.spec.design_start, "simulations": self.simulations,
                "batches": self.batches, "explored": self.explored, "beta_min": self.beta_min,
                "corners": [c.to_dict() for c in self.corners]}

    def save(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``wcd.csv`` (the table and the points), ``wcd.json`` and the corners: ``corners/<bound>.param``,
        ``corners/corners.alter`` (HSPICE-style ``.alter`` blocks), ``corners/corners_ngspice.control``
        (ngspice ``alterparam`` runs). Returns the paths by role."""
        from optiyield.reliability.corners import write_corners
        from optiyield.store import to_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = {"csv": folder / "wcd.csv", "json": folder / "wcd.json"}
        self.table.join(self.points, how="left").to_csv(written["csv"])
        written["json"].write_text(json.dumps(self.to_dict(), indent=2, default=to_json) + "\n")
        written.update(write_corners(folder / "corners", self.corners, self.problem.name))
        return written

    def __str__(self) -> str:
        parts = [f"{c.label}: β {c.beta:+.3f}" for c in self.corners]
        return f"{self.problem.name}: worst-case distances {'; '.join(parts)} ({self.simulations} simulations)"

    def _repr_html_(self) -> str:
        return _html(f"{self.problem.name}: worst-case distances", [f"{self.simulations} simulations in "
                     f"{self.batches} engine calls"], [("per bound", self.table), ("worst-case points", self.points)])


@dataclass
class HighSigmaResult:
    """A failure probability (:meth:`Problem.high_sigma`): ``estimate`` (the
    :class:`~optiyield.reliability.result.FailureEstimate`), with its interval, sigma level and cost."""

    problem: Problem
    estimate: FailureEstimate
    labels: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        """The estimator (``form+is``, ``mc``, ``subset``, ``ce``, ``nais``)."""
        return self.estimate.method

    @property
    def probability(self) -> float:
        """The failure probability (NaN when the method gave up; ``estimate.details["error"]`` says why)."""
        return self.estimate.probability

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % interval of the failure probability."""
        return self.estimate.low, self.estimate.high

    @property
    def sigma(self) -> float:
        """The sigma level −Φ⁻¹(p)."""
        return self.estimate.sigma

    @property
    def sigma_interval(self) -> tuple[float, float]:
        """The sigma levels of the interval's ends (low, high)."""
        return self.estimate.sigma_interval

    @property
    def simulations(self) -> int:
        """Evaluations spent, the worst-case search and exploration included."""
        return self.estimate.simulations

    @property
    def per_bound(self) -> pd.DataFrame:
        """Failure probability of each bound alone (importance sampling only; empty otherwise)."""
        data = self.estimate.details.get("per_bound") or {}
        return pd.DataFrame.from_dict(data, orient="index").rename_axis("bound_label")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``high_sigma.json``)."""
        low, high = self.sigma_interval
        return {"spec": self.problem.name, "design": self.problem.spec.design_start, "labels": self.labels,
                **self.estimate.to_dict(), "sigma_low": low, "sigma_high": high}

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``folder/high_sigma.json``."""
        from optiyield.store import to_json

        path = Path(folder) / "high_sigma.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=to_json) + "\n")
        return path

    def __str__(self) -> str:
        low, high = self.interval
        return (f"{self.problem.name}: failure probability {self.probability:.3g} [{low:.3g}, {high:.3g}] "
                f"({self.method}), {self.sigma:.2f} sigma, {self.simulations} simulations")

    def _repr_html_(self) -> str:
        tables = [("per bound", self.per_bound)] if len(self.per_bound) else []
        return _html(f"{self.problem.name}: high-sigma failure probability", [str(self)], tables)


@dataclass
class CornerResult:
    """Every spec at every corner of one design: ``table`` (one row per corner), ``worst`` (the worst corner
    of each spec), ``passed`` (every spec met at every corner); with a Monte Carlo, ``overall`` is the yield
    across corners. ``result`` is the underlying :class:`optiyield.optim.corners.CornerTable`."""

    problem: Problem
    result: Any

    @property
    def table(self) -> pd.DataFrame:
        """One row per corner: process, section, temp, the corner's fixed parameters, every measure (nominal at
        the corner; with a Monte Carlo the median), ``margin <spec>`` (spec unit, negative: violated), ``pass``,
        with a Monte Carlo ``yield``/``yield low``/``yield high`` and ``yield <spec>``, and ``failed``
        simulations."""
        return self.result.frame()

    @property
    def worst(self) -> pd.DataFrame:
        """Per spec: its limits, the worst corner, the value and margin there (spec unit, and relative to the
        spec's scale) and whether the spec holds at every corner."""
        return self.result.worst()

    @property
    def passed(self) -> bool:
        """True when every spec holds at every corner (with a Monte Carlo: for every outcome)."""
        return bool(self.result.passed.all())

    @property
    def overall(self) -> YieldEstimate:
        """Outcomes passing every spec at every corner (nominal: 1 sample)."""
        return self.result.overall

    @property
    def cost(self) -> dict[str, float]:
        """Simulations, runs, ngspice and wall seconds of the table."""
        return self.result.cost.to_dict()

    def save(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``corners.csv`` (the table) and ``corners.json`` (table, worst corners, cost; the HTML report
        shows it). Returns the paths by role."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = {"csv": folder / "corners.csv", "json": folder / "corners.json"}
        self.table.to_csv(written["csv"])
        written["json"].write_text(json.dumps(self.result.to_dict(), indent=2, default=float) + "\n")
        return written

    def __str__(self) -> str:
        table = self.result
        passing = int(table.passed.all(axis=1).sum())
        text = f"{self.problem.name}: {passing} of {len(table.corners)} corners meet every spec"
        if table.monte_carlo:
            text += f"; yield across corners {_pct(self.overall)} ({table.samples} samples)"
        return text

    def _repr_html_(self) -> str:
        return _html(f"{self.problem.name}: corners", [str(self)], [("worst corner per spec", self.worst),
                                                                       ("corners", self.table)])


@dataclass
class SensitivityResult:
    """Which parameters move each spec: ``table`` (one row per spec and parameter, sorted by |normalized|
    within each spec), ``nominal`` (measure values at the design); ``raw`` is sensitivity.json's content."""

    problem: Problem
    raw: dict[str, Any]

    @property
    def table(self) -> pd.DataFrame:
        """Columns ``spec``, ``parameter``, ``kind`` (design or statistical), ``step``, ``effect`` (half the
        ± difference, in the spec's unit) and ``normalized`` (effect / the spec's error scale)."""
        rows = [{"spec": measure, **entry} for measure, entries in self.raw["spec"].items() for entry in entries]
        return pd.DataFrame(rows, columns=["spec", "parameter", "kind", "step", "effect", "normalized"])

    @property
    def nominal(self) -> dict[str, float]:
        """Measure values at the design point."""
        return dict(self.raw["nominal"])

    @property
    def simulations(self) -> int:
        """Simulated points (2P + 1)."""
        return int(self.raw["simulations"])

    def top(self, count: int = 3) -> pd.DataFrame:
        """The ``count`` strongest parameters of each spec."""
        return self.table.groupby("spec", sort=False).head(count).reset_index(drop=True)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``folder/sensitivity.json`` (read by the HTML report)."""
        path = Path(folder) / "sensitivity.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.raw, indent=2) + "\n")
        return path

    def _repr_html_(self) -> str:
        return _html(f"{self.problem.name}: sensitivity", [f"{self.simulations} simulations"],
                     [("three strongest parameters per spec", self.top(3))])


@dataclass
class RunResult:
    """A finished run: start and final designs and yields, one row per step (``steps``), every journaled
    iteration (``history``), the verification (``verify``) and the output folder ``out``."""

    problem: Problem
    out: Path
    summary: dict[str, Any]
    history_records: list[dict[str, Any]] = field(default_factory=list)
    samples: pd.DataFrame | None = None
    report: RunReport | None = None
    report_path: Path | None = None
    report_error: str | None = None
    dashboard: Any = None
    touchstone_path: Path | None = None

    @classmethod
    def from_report(cls, problem: Problem, report: RunReport, out: Path) -> RunResult:
        """Wrap a :class:`optiyield.run.RunReport` (its store's journal gives ``history``)."""
        from optiyield.run import STORE_NAME
        from optiyield.store import Store

        store = Store.read(out / STORE_NAME, problem.spec.parameters, problem.spec.testbench.measure_names)
        try:
            history = store.history()
        finally:
            store.close()
        verify = report.verify
        return cls(problem=problem, out=out, summary=report.summary(), history_records=history,
                   samples=None if verify is None else verify.table, report=report)

    @property
    def start_yield(self) -> YieldEstimate:
        """Yield of the start design on the optimization outcomes."""
        return _estimate(self.summary["start_yield"])

    @property
    def final_yield(self) -> YieldEstimate:
        """Yield of the final design on the optimization outcomes."""
        return _estimate(self.summary["final_yield"])

    @property
    def verified_yield(self) -> YieldEstimate | None:
        """Yield of the final design on the verification's fresh sample (None without a verify step)."""
        verify = self.summary.get("verify")
        return None if verify is None else _estimate(verify["yield"])

    @property
    def verify(self) -> YieldResult | None:
        """The verification Monte Carlo (None without a verify step, or for a folder opened without samples)."""
        if self.report is not None and self.report.verify is not None:
            return YieldResult(self.problem, self.report.verify)
        return None

    @property
    def design(self) -> pd.DataFrame:
        """Design variables: ``start``, ``final``, ``min``, ``max`` and the change in % of the range."""
        frame = self.problem.design.drop(columns="start")
        frame.insert(0, "final", pd.Series(self.summary["design_final"]))
        frame.insert(0, "start", pd.Series(self.summary["design_start"]))
        frame["change_pct"] = (frame["final"] - frame["start"]) / (frame["max"] - frame["min"]) * 100
        return frame

    @property
    def steps(self) -> pd.DataFrame:
        """One row per step: yield before/after (optimization outcomes; verify: its fresh sample), new and stored
        simulations, simulator and wall seconds, iterations and why the step stopped."""
        rows = []
        for step in self.summary["steps"]:
            after = step["verify_yield"] or step["yield_after"]
            rows.append({"step": step["label"], "kind": step["kind"],
                         "yield_before": None if step["yield_before"] is None else step["yield_before"]["value"],
                         "yield_after": None if after is None else after["value"],
                         "simulations": step["simulations"], "cached": step["cached"],
                         "ngspice_seconds": step["ngspice_seconds"], "wall_seconds": step["wall_seconds"],
                         "iterations": step["result"]["iterations"], "status": step["result"]["status"]})
        return pd.DataFrame(rows).set_index("step") if rows else pd.DataFrame()

    @property
    def history(self) -> pd.DataFrame:
        """Every journaled iteration (events left out): ``step``, ``phase``, ``iteration``, ``simulations``,
        ``objective``, ``yield``/``yield_low``/``yield_high``, ``accepted`` and the design (``x.<variable>``)."""
        rows = []
        for record in self.history_records:
            if "event" in record and "phase" not in record:
                continue
            row = {key: record.get(key) for key in ("step", "phase", "iteration", "simulations", "objective",
                                                     "yield", "yield_low", "yield_high", "accepted", "event")}
            row.update({f"x.{name}": value for name, value in (record.get("x") or {}).items()})
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def cost(self) -> dict[str, float]:
        """Totals: simulations, cached, runs, ngspice_seconds, failed, wall_seconds."""
        return {k: self.summary[k] for k in ("simulations", "cached", "runs", "ngspice_seconds", "failed",
                                             "wall_seconds") if k in self.summary}

    @property
    def reliability(self) -> dict[str, Any]:
        """The run's high-sigma figures (run_summary.json's ``reliability``): ``worst_case`` (β per spec bound and
        the corners of the last centering step) and ``failure`` (the last verification's failure probability by
        Monte Carlo and, with ``{verify: {sigma: is}}``, by the high-sigma estimator); empty without them."""
        return dict(self.summary.get("reliability") or {})

    @property
    def corner_yields(self) -> pd.DataFrame:
        """A corner run: the yield at each corner on the optimization outcomes before and after (columns
        ``before``, ``after``; empty without corners)."""
        corners = self.summary.get("corners")
        if not corners:
            return pd.DataFrame(columns=["before", "after"])
        return pd.DataFrame({"before": {n: corners["before"][n]["value"] for n in corners["names"]},
                             "after": {n: corners["after"][n]["value"] for n in corners["names"]}}
                            ).rename_axis("corner")

    @property
    def notes(self) -> list[str]:
        """What the run wants the user to know (e.g. stale stored simulations that were re-run)."""
        return list(self.summary.get("notes", []))

    def write_touchstone(self, path: str | os.PathLike[str] | None = None, *, at: float | None = None
                         ) -> Path | None:
        """Write the final design's S-parameters (``out/<spec>.s2p`` by default) when the testbench has RF port
        measures and scikit-rf is installed; a sweep testbench needs ``at``. After a run this is done
        automatically where it applies; otherwise returns None (a note says why, except for a testbench
        without RF ports)."""
        from optiyield.touchstone import TouchstoneError, find_ports, write_touchstone

        spec = self.problem.spec
        try:
            find_ports(spec.testbench)
        except TouchstoneError:
            return None
        if spec.testbench.sweep is not None and at is None:
            self.summary.setdefault("notes", []).append(
                f"no Touchstone file: the testbench sweeps {spec.testbench.sweep.param}; write one with "
                "RunResult.write_touchstone(at=VALUE) or `optiyield touchstone SPEC --at final --sweep VALUE`")
            return None
        try:
            self.touchstone_path = write_touchstone(spec, path or self.out / spec.name,
                                                    self.summary["design_final"], at=at)
        except TouchstoneError as exc:
            self.summary.setdefault("notes", []).append(f"no Touchstone file: {exc}")
            return None
        return self.touchstone_path

    def write_report(self) -> Path | None:
        """(Re)write ``out/report.html``; on a problem, ``report_error`` says why and None is returned (the
        results stay written: a run is never lost to a report problem)."""
        from optiyield.report.html import write_report

        try:
            self.report_path = write_report(self.out, self.problem.spec)
            self.report_error = None
        except Exception as exc:  # noqa: BLE001 - never lose a finished run to a report problem
            self.report_path, self.report_error = None, str(exc)
        return self.report_path

    def __str__(self) -> str:
        verified = self.verified_yield
        return (f"{self.problem.name}: yield {_pct(self.start_yield)} → {_pct(self.final_yield)} on the "
                f"{self.start_yield.n} optimization outcomes" + (f"; verified {_pct(verified)}" if verified else ""))

    def _repr_html_(self) -> str:
        lines = [str(self), f"{self.cost.get('simulations', 0)} simulations ({self.cost.get('cached', 0)} from the "
                 f"store), {self.cost.get('wall_seconds', 0.0):.1f} s wall; results in {self.out}"]
        lines += [f"note: {note}" for note in self.notes]
        steps = self.steps[["kind", "yield_before", "yield_after", "simulations", "cached", "wall_seconds"]] \
            if len(self.steps) else self.steps
        tables = [("steps", steps), ("design", self.design)]
        verify = self.verify
        if verify is not None:
            tables.append(("verification per spec", verify.per_spec))
        return _html(f"{self.problem.name}: optimization run", lines, tables)


def _estimate(data: Mapping[str, Any]) -> YieldEstimate:
    return YieldEstimate(passed=int(data["passed"]), n=int(data["n"]), value=float(data["value"]),
                         low=float(data["low"]), high=float(data["high"]),
                         confidence=float(data.get("confidence", 0.95)), method=data.get("method", "wilson"))
