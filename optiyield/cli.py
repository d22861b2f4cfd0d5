"""The ``optiyield`` command line: a thin typer layer over the Python API (:mod:`optiyield.api`).

Each command parses its options, calls the API, prints what came back with rich, and turns the API's
exceptions into one ``error: …`` line and an exit code (2: bad input, 3: nothing can simulate).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optiyield import __version__
from optiyield.api import ClusterError, NgspiceNotFound, OptionError, Problem, RunError, SpecError, StoreMismatch, load
from optiyield.safety import MAX_SAMPLES
from optiyield.units import format_eng, format_value

app = typer.Typer(
    help="Yield-driven design of analog and RF circuits on ngspice.\n\n"
    "Example:  optiyield yield specs/csva.yaml --samples 1000 --out out/csva",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

#: ``--out`` of the commands that write into a run folder.
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: out/<spec name>).")]
#: ``--at`` of the commands that evaluate one design point.
AtOption = Annotated[str, typer.Option("--at", help="Design point: start (the spec's start values) or final "
                                       "(design_final of OUT/run_summary.json).")]
errors = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` to stderr; the caller raises the returned Exit."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _api_errors(interrupted: str = "interrupted: nothing was saved") -> Iterator[None]:
    """The API's exceptions as the CLI's error lines and exit codes, never a traceback: 2 for input the
    user must fix (a spec, an option, an output folder, a store, a measure on a missing node), 3 when
    nothing can simulate (no ngspice, no cluster, every sample fails, samples keep timing out), 130 for
    Ctrl-C or SIGTERM (``interrupted`` says what was kept; a run says how many samples its store holds)."""
    from optiyield.outdir import OutputError
    from optiyield.run import RunInterrupted
    from optiyield.sim.engine import EverySampleFailed, MeasureSetupError, SimulationAborted

    try:
        yield
    except OptionError as exc:
        raise _fail(exc.message if exc.message.startswith("--") else f"--{exc.option}: {exc.message}") from None
    except (SpecError, RunError, StoreMismatch, OutputError, MeasureSetupError, OSError, *_ml_errors()) as exc:
        raise _fail(str(exc)) from None
    except (NgspiceNotFound, ClusterError, EverySampleFailed, SimulationAborted) as exc:
        raise _fail(str(exc), 3) from None
    except RunInterrupted as exc:
        errors.print(f"{escape(str(exc))}; continue with --resume", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        errors.print(interrupted, highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends a command like Ctrl-C: running simulations are killed, temporary folders removed,
    finished samples kept."""
    raise KeyboardInterrupt


def _problem(spec_path: Path) -> Problem:
    """Load a spec through the API; a bad spec is one error line and exit code 2."""
    with _api_errors():
        return load(spec_path)


def _load(spec_path: Path):  # noqa: ANN202 - returns Spec (for the commands not yet in the API: sweep, train, …)
    return _problem(spec_path).spec


def _version(value: bool) -> None:
    if value:
        console.print(f"optiyield {__version__}")
        raise typer.Exit()


HOST_HELP = ("Address the dashboard listens on (default 127.0.0.1: this machine only). Another address, e.g. "
             "0.0.0.0, makes it reachable from the network: give it explicitly.")
CLUSTER_HELP = ("Run the ngspice batches on a Dask cluster: local:N starts N worker processes on this machine, "
                "tcp://HOST:8786 connects to a running `dask scheduler`; e.g. --cluster local:4 or "
                "--cluster tcp://10.0.0.5:8786 (default: run.cluster, else this machine).")


def _engine(spec, workers: int | None, cluster: str | None):  # noqa: ANN001, ANN202 - Spec → Engine | DaskEngine
    """The command's engine (passed to the API, or used directly by sweep and propose): --workers/--cluster
    override the spec's run.workers/run.cluster; a Dask cluster says how many parallel slots it has."""
    from optiyield.api import _engine as make

    address = cluster or spec.run.cluster
    with _api_errors():
        engine = make(spec, workers, cluster)
    if address is not None:
        console.print(f"Dask cluster {address}: {engine.workers} parallel slots", highlight=False)
    return engine


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the LP solvers' logs (cvxpy, HiGHS); "
                                          "by default they print nothing.")] = False,
) -> None:
    """optiyield: Monte Carlo yield, minimax and yield optimization of ngspice testbenches."""
    logging.getLogger("optiyield.solver").setLevel(logging.DEBUG if verbose else logging.NOTSET)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


@app.command("validate")
def validate(spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file.")]) -> None:
    """Check a spec file and its testbench without simulating.

    Example:  optiyield validate specs/csva.yaml
    """
    spec = _problem(spec_path).spec
    tb = spec.testbench
    console.print(f"[green]ok[/] {spec_path}: spec {spec.name!r}, testbench {tb.name!r} "
                  f"({'batched copies' if tb.copies else 'one process per sample'}"
                  + (f", sweep of {tb.sweep.param} over {tb.sweep_points} points" if tb.sweep else "") + "), "
                  f"{len(spec.file.design)} design variables, {spec.model.dims} random dimensions, "
                  f"{len(spec.file.specs)} specs"
                  + (f", {len(spec.corners)} corners ({len(spec.corners.sections)} model sections, "
                     f"{len({spec.corners.temperature(c) for c in spec.corners.corners})} temperatures)"
                     if spec.corners is not None else ""), highlight=False)


def _design_at(at: str, folder: Path) -> dict[str, float] | None:
    """The design of ``--at``: None for start, design_final of FOLDER/run_summary.json for final."""
    import json

    if at == "start":
        return None
    if at != "final":
        raise _fail(f"--at: expected start or final, got {at!r}")
    summary = folder / "run_summary.json"
    if not summary.exists():
        raise _fail(f"--at final: no {summary} (run `optiyield run` first)")
    return json.loads(summary.read_text())["design_final"]


@app.command("yield")
def yield_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file.")],
    method: Annotated[str, typer.Option("--method", "-m", help="mc (Monte Carlo yield, the default), or a "
                                        "high-sigma failure probability: is (worst-case points + importance "
                                        "sampling), subset, ce or nais (OpenTURNS).")] = "mc",
    budget: Annotated[int, typer.Option("--budget", min=100, max=MAX_SAMPLES,
                                        help="Simulations allowed to a high-sigma method.")] = 1000,
    at: AtOption = "start",
    samples: Annotated[int | None, typer.Option("--samples", "-n", min=1, max=MAX_SAMPLES,
                                                help="Monte Carlo samples (default: run.samples).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: run.seed).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="mc or sobol (default: run.sampler).")] = None,
    ci_width: Annotated[float | None, typer.Option(
        "--ci-width", help="Stop once the yield interval is narrower than this (e.g. 0.05); "
        "--samples is then the maximum.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1,
                                                help="Parallel ngspice processes (default: one per core).")] = None,
    out: OutOption = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help=CLUSTER_HELP)] = None,
) -> None:
    """Monte Carlo yield of a spec at its start point, or a high-sigma failure probability (--method).

    Prints per-spec yields, the overall yield with its 95 % interval, the failure probability with its
    exact interval and sigma level, failed simulations and throughput; writes samples.csv/.parquet,
    summary.json and a histogram per spec to --out. With --method is|subset|ce|nais: the failure
    probability with its 95 % interval, the sigma level −Φ⁻¹(p) and the simulations used, within
    --budget simulations (docs/high-sigma.md); writes OUT/high_sigma.json.

    Example:  optiyield yield specs/csva.yaml --samples 2000 --seed 7 --out out/csva
    Example:  optiyield yield specs/csva_4sigma.yaml --method is --budget 1000
    """
    from optiyield.reliability.estimate import METHODS

    problem = _problem(spec_path)
    spec = problem.spec
    if sampler not in (None, "mc", "sobol"):  # before an engine starts (the API checks it too)
        raise _fail(f"--sampler: expected mc or sobol, got {sampler!r}")
    if method not in METHODS:
        raise _fail(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")
    from optiyield.outdir import prepare

    folder = out or Path("out") / spec.name
    design = _design_at(at, folder)
    with _api_errors():
        prepare(folder)  # before simulating: a folder that cannot be written fails now, not after the work
    if method != "mc":
        _high_sigma(problem, method, budget, design, seed, workers, cluster, folder)
        return
    with _engine(spec, workers, cluster) as engine, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True) as progress, _api_errors(
                "interrupted: a Monte Carlo keeps no store, nothing was written"):
        task = progress.add_task(f"simulating {spec.name}", total=samples or spec.run.samples)
        mc = problem.monte_carlo(samples, seed=seed, sampler=sampler, ci_width=ci_width, engine=engine,
                                 design=design, progress=lambda n: progress.advance(task, n))
    with _api_errors():
        mc.save(folder, report=False)
    _print_summary(spec, mc.result)
    if spec.corners is not None:
        errors.print(f"[yellow]note:[/] this is the yield at the spec's nominal conditions; for the yield at each of "
                     f"its {len(spec.corners)} corners: optiyield corners {spec_path} --samples N", highlight=False,
                     soft_wrap=True)
    console.print(f"results written to [bold]{folder}[/]", highlight=False)
    _write_report(folder, spec)


def _high_sigma(problem: Problem, method: str, budget: int, design: dict[str, float] | None, seed: int | None,
                workers: int | None, cluster: str | None, folder: Path) -> None:
    """``optiyield yield --method is|subset|ce|nais``: estimate, print, write high_sigma.json."""
    spec = problem.spec
    with _engine(spec, workers, cluster) as engine, _api_errors(), \
            console.status(f"{spec.name}: {method} failure probability within {budget} simulations"):
        try:
            result = problem.high_sigma(method, budget=budget, design=design, seed=seed, engine=engine)
        except (ImportError, ValueError) as exc:
            raise _fail(str(exc)) from None
    est = result.estimate
    table = Table(title=f"{spec.name}: failure probability by {est.method} (95 % interval)")
    for column in ("bound", "failure probability", "95 % interval", "sigma level"):
        table.add_column(column, justify="left" if column == "bound" else "right")
    for label, figures in (est.details.get("per_bound") or {}).items():
        table.add_row(label, f"{figures['probability']:.3g}", f"[{figures['low']:.3g}, {figures['high']:.3g}]",
                      f"{figures['sigma']:.2f}")
    if est.details.get("per_bound"):
        table.add_section()
    low_sigma, high_sigma = est.sigma_interval
    if math.isnan(est.probability):
        table.add_row("[bold]all specs[/]", "failed", "", "")
    else:
        table.add_row("[bold]all specs[/]", f"[bold]{est.probability:.3g}[/]", f"[{est.low:.3g}, {est.high:.3g}]",
                      f"[bold]{est.sigma:.2f}[/] [{low_sigma:.2f}, {high_sigma:.2f}]")
    console.print(table)
    details = est.details
    parts = [f"{est.simulations} simulations"]
    if "wcd_simulations" in details:
        parts.append(f"{details['wcd_simulations']} for the worst-case points, {details['explore_simulations']} "
                     f"exploring, {details['is_samples']} importance samples ({details['failures']} failing, "
                     f"c.o.v. {details['cv']:.3f})")
    if "error" in details:
        parts.append(f"the method gave up: {details['error']}")
    console.print("; ".join(parts), highlight=False, soft_wrap=True)
    path = result.save(folder)
    console.print(f"written to [bold]{path}[/]", highlight=False)


@app.command("wcd")
def wcd_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file.")],
    at: AtOption = "start",
    out: OutOption = None,
    explore: Annotated[int, typer.Option("--explore", min=0, help="Scaled-sigma points that look for failure "
                                         "regions the searches from the nominal cannot see (0: none).")] = 200,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the exploration (default: run.seed).")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Parameters shown per corner.")] = 6,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1,
                                                help="Parallel ngspice processes (default: one per core).")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help=CLUSTER_HELP)] = None,
) -> None:
    """Worst-case distance of every spec bound, and its statistical corner.

    For each bound: the worst-case point in the standardized statistical space (the most likely failing
    outcome), its distance β (positive when the nominal passes), the linearized yield Φ(β), the measure
    there and the simulations used (finite-difference gradients of all bounds batched into one ngspice call
    per iteration). Writes OUT/wcd.csv and wcd.json, and each corner as OUT/corners/<bound>.param (include it
    after the netlist's own .param lines), corners.alter (HSPICE-style .alter blocks) and
    corners_ngspice.control (ngspice: alterparam + reset + run).

    Example:  optiyield wcd specs/csva_4sigma.yaml --out out/csva_4sigma
    """
    problem = _problem(spec_path)
    spec = problem.spec
    from optiyield.outdir import prepare

    folder = out or Path("out") / spec.name
    design = _design_at(at, folder)
    with _api_errors():
        prepare(folder)
    with _engine(spec, workers, cluster) as engine, _api_errors(), \
            console.status(f"{spec.name}: worst-case searches"):
        result = problem.worst_case(design, explore=explore, seed=seed, engine=engine)
    table = Table(title=f"{spec.name}: worst-case distances at the {at} design")
    for column in ("bound", "β", "Φ(β)", "Φ(−β)", "measure at corner", "search"):
        table.add_column(column, justify="left" if column in ("bound", "search") else "right")
    for c in result.corners:
        unit = spec.testbench.unit(c.measure)
        table.add_row(c.label, f"{c.beta:+.3f}", f"{c.yield_linear:.6g}", f"{c.failure_linear:.3g}",
                      format_value(c.measure_value, unit) if c.has_point else "", f"{c.status} ({c.iterations} it)")
    console.print(table)
    for c in result.corners:
        if not c.has_point:
            continue
        corner = Table(title=f"corner {c.name} ({c.label}, β {c.beta:+.3f}): the {top} largest shifts")
        for column in ("coordinate", "shift (σ)", "parameter", "nominal", "corner"):
            corner.add_column(column, justify="left" if column in ("coordinate", "parameter") else "right")
        order = sorted(c.u, key=lambda k: -abs(c.u[k]))[:top]
        for coordinate in order:
            parameter = _parameter_of(spec, coordinate)
            corner.add_row(coordinate, f"{c.u[coordinate]:+.3f}", parameter,
                           format_eng(c.nominal[parameter]) if parameter in c.nominal else "",
                           format_eng(c.values[parameter]) if parameter in c.values else "")
        console.print(corner)
    console.print(f"{result.simulations} simulations in {result.batches} engine calls"
                  + (f" ({result.explored} exploring)" if result.explored else ""), highlight=False)
    written = result.save(folder)
    console.print(f"written to [bold]{written['csv']}[/], [bold]{written['json'].name}[/] and "
                  f"[bold]{folder / 'corners'}[/]", highlight=False)


def _parameter_of(spec, coordinate: str) -> str:  # noqa: ANN001 - Spec
    """The parameter a standard-normal coordinate moves (``draw`` → its first target, ``draw[p]`` → p)."""
    if coordinate.endswith("]") and "[" in coordinate:
        return coordinate[coordinate.index("[") + 1:-1]
    for draw in spec.model.draws:
        if draw.name == coordinate:
            return draw.targets[0]
    return coordinate


@app.command("run")
def run_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file with run.steps.")],
    out: OutOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from OUT/store.sqlite; "
                                         "finished simulations are not repeated.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete an existing store and start over.")] = False,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1,
                                                help="Parallel ngspice processes (default: one per core).")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help=CLUSTER_HELP)] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Open the live dashboard while the run goes on "
                                        "(see `optiyield serve`); it keeps serving the report afterwards.")] = False,
    host: Annotated[str, typer.Option("--host", help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port of the dashboard.")] = 8050,
) -> None:
    """Run the spec's optimization steps (run.steps), e.g. minimax → yield → verify.

    Every evaluation is journaled in OUT/store.sqlite; an interrupted run continues with --resume.
    Prints the start and final yield with intervals, per-spec yields of the verification sample and the
    simulations used; writes run_summary.json and the verification outputs to OUT.

    With --serve, a local web page follows the run (yield, margins, design, cost, failures) and becomes
    the report when it ends.

    Example:  optiyield run specs/csva.yaml --out out/csva-run --serve
    """
    problem = _problem(spec_path)
    spec = problem.spec
    folder = out or Path("out") / spec.name
    if resume and fresh:  # before an engine starts (the API checks it too)
        raise _fail("--resume and --fresh exclude each other")
    serving = {"host": host, "port": port} if serve else False
    with _engine(spec, workers, cluster) as engine, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed} samples"),
            TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"{spec.name}: starting", total=None)

        def on_iteration(record) -> None:  # noqa: ANN001 - IterationRecord
            from optiyield.api import _describe

            progress.update(task, description=_describe(record))

        def on_step(step) -> None:  # noqa: ANN001 - StepReport
            progress.console.print(f"[green]✓[/] {step.label}: {step.cost.simulations} simulations "
                                   f"({step.cost.cached} from the store), {step.cost.wall_seconds:.1f} s",
                                   highlight=False)

        with _api_errors(), _dashboard_errors():
            result = problem.run(folder, resume=resume, fresh=fresh, engine=engine,
                                 progress=lambda n: progress.advance(task, n), on_iteration=on_iteration,
                                 on_step=on_step, serve=serving, on_serve=_announce)
    try:  # a Ctrl-C while the summary prints must still stop the dashboard's server thread
        for note in result.notes:
            errors.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        _print_run_summary(result.report)
        console.print(f"results written to [bold]{folder}[/]", highlight=False)
        if result.touchstone_path is not None:
            console.print(f"S-parameters of the final design: [bold]{result.touchstone_path}[/]", highlight=False)
        if result.report_path is not None:
            console.print(f"report: [bold]{result.report_path}[/]", highlight=False)
        else:
            errors.print(f"[yellow]warning:[/] report not written: {result.report_error} (retry with: optiyield report "
                         f"{folder})", highlight=False)
        if result.dashboard is not None:
            console.print(f"the dashboard at {result.dashboard.url} now shows the report; Ctrl-C to stop serving",
                          highlight=False)
            result.dashboard.thread.join()
    except KeyboardInterrupt:
        if result.dashboard is None:
            raise
    finally:
        if result.dashboard is not None:
            result.dashboard.stop()


def _announce(dashboard: Any) -> None:
    console.print(f"live dashboard: [bold]{dashboard.url}[/]", highlight=False)


@contextmanager
def _dashboard_errors() -> Iterator[None]:
    from optiyield.dashboard import DashboardUnavailable

    try:
        yield
    except DashboardUnavailable as exc:
        raise _fail(str(exc)) from None


def _print_run_summary(report) -> None:  # noqa: ANN001
    def pct(est) -> str:  # noqa: ANN001
        return f"{est.value * 100:.1f} % [{est.low * 100:.1f}, {est.high * 100:.1f}]"

    table = Table(title=f"{report.spec.name}: optimization run (sims = new simulations, stored = served from "
                  "the store, s = wall seconds)")
    for column in ("step", "yield before", "yield after", "sims", "stored", "s"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in report.steps:
        after = step.yield_after if step.verify is None else step.verify.summary.overall
        table.add_row(step.label, pct(step.yield_before) if step.yield_before else "",
                      pct(after) if after else "", str(step.cost.simulations), str(step.cost.cached),
                      f"{step.cost.wall_seconds:.1f}")
    console.print(table)
    n = report.start_yield.n
    console.print(f"yield on the {n} optimization outcomes: start {pct(report.start_yield)} → "
                  f"final {pct(report.final_yield)}", highlight=False)
    design = Table(title="design variables")
    for column in ("variable", "start", "final"):
        design.add_column(column, justify="right")
    for name, value in report.x_final.items():
        design.add_row(name, format_eng(report.x_start[name]), format_eng(value))
    console.print(design)
    if report.regions:
        regions = Table(title="operating-point regions at the final design (nominal; spec `regions:`)")
        for column in ("device", "region", "margin", "measures", "met"):
            regions.add_column(column, justify="right" if column == "margin" else "left")
        for entry in report.regions:
            measures = ", ".join(f"{name} {format_eng(value)}V" for name, value in entry["values"].items())
            regions.add_row(entry["device"], entry["region"], f"{format_eng(entry['margin'])}V", measures,
                            "yes" if entry["met"] else "[red]NO[/]")
        console.print(regions)
    verify = report.verify
    if verify is not None:
        _print_summary(report.spec, verify)
    _print_reliability(report.reliability)
    cost = report.cost
    console.print(f"total: {cost.simulations} simulations ({cost.cached} served from the store), "
                  f"{cost.ngspice_seconds:.1f} s ngspice time, {cost.wall_seconds:.1f} s wall", highlight=False)


def _print_reliability(data: dict[str, Any]) -> None:
    """The run's high-sigma figures: β per spec bound at the final design, the failure probability estimate."""
    worst, failure = data.get("worst_case"), (data.get("failure") or {}).get("failure")
    if not worst and not failure:
        return
    per_bound = (failure or {}).get("details", {}).get("per_bound") or {}
    table = Table(title="high sigma: worst-case distance β and failure probability per spec bound")
    for column in ("bound", "β", "Φ(−β)", "estimated failure probability", "sigma level"):
        table.add_column(column, justify="left" if column == "bound" else "right")
    labels = list((worst or {}).get("beta") or per_bound)
    for label in labels:
        beta = (worst or {}).get("beta", {}).get(label)
        est = per_bound.get(label)
        table.add_row(label, "" if beta is None else f"{beta:+.3f}",
                      "" if beta is None else f"{_phi(-beta):.3g}",
                      "" if est is None else f"{est['probability']:.3g} [{est['low']:.3g}, {est['high']:.3g}]",
                      "" if est is None else f"{est['sigma']:.2f}")
    if failure:
        table.add_section()
        table.add_row("[bold]all specs[/]", "", "", f"[bold]{failure['probability']:.3g}[/] [{failure['low']:.3g}, "
                      f"{failure['high']:.3g}] ({failure['method']}, {failure['simulations']} sims)",
                      f"[bold]{failure['sigma']:.2f}[/]")
    console.print(table)
    if worst:
        reached = "reached" if worst.get("reached") else "NOT reached"
        console.print(f"centering target β ≥ {worst['target']:g} {reached}: smallest β {worst['beta_min']:.3f}",
                      highlight=False)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _print_summary(spec, result) -> None:  # noqa: ANN001
    summary = result.summary
    table = Table(title=f"{spec.name}: Monte Carlo yield ({len(result.table)} samples, seed {result.seed}, "
                  f"{result.sampler})")
    for column in ("spec", "limit", "median", "yield", "95 % interval", "violations"):
        table.add_column(column, justify="right" if column != "spec" else "left")
    ok = result.table["status"] != "failed"
    for name, bound in spec.file.specs.items():
        est = summary.per_spec[name]
        limit = " ".join(part for part in (
            f"≥ {format_eng(bound.min)}" if bound.min is not None else "",
            f"≤ {format_eng(bound.max)}" if bound.max is not None else "") if part)
        median = result.table.loc[ok, name].median()
        table.add_row(name, limit, format_eng(float(median)), f"{est.value * 100:.1f} %",
                      f"[{est.low * 100:.1f}, {est.high * 100:.1f}] %", str(summary.failures_per_spec[name]))
    overall = summary.overall
    table.add_section()
    table.add_row("[bold]overall[/]", "all specs", "", f"[bold]{overall.value * 100:.1f} %[/]",
                  f"[{overall.low * 100:.1f}, {overall.high * 100:.1f}] %", str(overall.n - overall.passed))
    console.print(table)
    failures = overall.n - overall.passed
    if overall.n:
        from optiyield.reliability.montecarlo import clopper_pearson
        from optiyield.reliability.result import sigma_level

        low, high = clopper_pearson(failures, overall.n)
        sigma = (f"sigma level {sigma_level(failures / overall.n):.2f} [{sigma_level(high):.2f}, "
                 f"{sigma_level(low):.2f}]" if failures else f"sigma level ≥ {sigma_level(high):.2f}")
        console.print(f"failure probability {failures}/{overall.n} = {failures / overall.n:.3g} "
                      f"[{low:.3g}, {high:.3g}] (Clopper–Pearson), {sigma}"
                      + ("" if failures else "; plain Monte Carlo sees no failure: --method is estimates it"),
                      highlight=False, soft_wrap=True)
    console.print(f"failed simulations: {summary.failed_simulations}   "
                  f"throughput: {result.samples_per_second:.0f} samples/s "
                  f"({result.runs} ngspice runs, {result.ngspice_seconds:.2f} s ngspice time, "
                  f"{result.wall_seconds:.2f} s wall)", highlight=False)
    if summary.failed_simulations:
        for reason, count in result.failed["reason"].value_counts().head(5).items():
            console.print(f"  {count} × {reason}", highlight=False, soft_wrap=True)


@app.command("sweep")
def sweep_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file (its design bounds are sampled).")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="Number of design points.")] = 1000,
    method: Annotated[str, typer.Option("--method", help="sobol, lhs or grid (full factorial).")] = "sobol",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Parquet file (default: data/<spec>.parquet).")
                   ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampling plan.")] = 0,
    variation: Annotated[bool, typer.Option("--variation", help="Give every point one Monte Carlo outcome of "
                                            "the statistical parameters (deviate columns z:0, z:1, …): the "
                                            "data of `optiyield train --model yield`.")] = False,
    chunk: Annotated[int, typer.Option("--chunk", min=1, help="Points per saved chunk (the resume unit).")] = 1000,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1,
                                                help="Parallel ngspice processes (default: one per core).")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help=CLUSTER_HELP)] = None,
) -> None:
    """Sample the design space and simulate every point into a Parquet dataset (for ML models).

    Rows hold the design variables, every measure, and status/reason (failed points are kept and
    flagged); statistical parameters stay at nominal, or with --variation each point gets its own Monte
    Carlo outcome (drawn with the spec's sampler and --seed). Chunks are saved as they finish, so running
    the same command again continues an interrupted sweep.

    Example:  optiyield sweep specs/csva.yaml --n 4096 --method sobol --out data/csva.parquet
              optiyield sweep specs/csva.yaml --n 65536 --variation --out data/csva_variation.parquet
    """
    from optiyield.dataset import design_plan, sweep_dataset, with_variation

    spec = _load(spec_path)
    if method not in ("sobol", "lhs", "grid"):
        errors.print(f"[bold red]error:[/] --method: expected sobol, lhs or grid, got {method!r}")
        raise typer.Exit(2)
    plan = design_plan(spec, n, method, seed)  # type: ignore[arg-type]
    if variation:
        plan = with_variation(spec, plan, seed)
    target = out or Path("data") / f"{spec.name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    engine = _engine(spec, workers, cluster)
    with engine, Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"sweeping {spec.name}", total=len(plan))
        try:
            result = sweep_dataset(spec, plan, engine, target, chunk, lambda k: progress.advance(task, k))
        except ValueError as exc:
            errors.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
    failed = int((result.table["status"] == "failed").sum()) if "status" in result.table else 0
    console.print(f"{len(result.table)} points ({method}) → [bold]{target}[/]: {failed} failed, "
                  f"{result.simulated_chunks} chunks simulated, {result.reused_chunks} reused from an earlier run",
                  highlight=False)


def _ml_errors() -> tuple[type[Exception], ...]:
    """Errors of the ML layer that are the user's to fix (missing extra, bad or mismatched model file)."""
    from optiyield.propose.inverse import ModelFileError
    from optiyield.propose.regressors import MissingDependency

    return ModelFileError, MissingDependency


@app.command("train")
def train_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file the dataset was swept from.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Parquet dataset from `optiyield sweep`.")],
    model: Annotated[str, typer.Option("--model", "-m", help="mlp, transformer, svr, rf, knn or lookup "
                                       "(1-nearest-neighbour baseline): an inverse model; or yield: a forward "
                                       "model of the measures over design × variation, trained on a "
                                       "`sweep --variation` dataset.")] = "mlp",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model file (default: models/<spec>_<model>.oym)."
                                             )] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Training epochs (torch models; default 100, "
                                               "150 for yield).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Mini-batch size (torch models).")] = 100,
    learning_rate: Annotated[float, typer.Option("--lr", help="Adam learning rate (torch models).")] = 1e-3,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Held-out share of the rows.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and of the weights.")] = 0,
    surrogate: Annotated[bool, typer.Option("--surrogate/--no-surrogate",
                                            help="Also train a forward surrogate to rank candidates.")] = True,
) -> None:
    """Train an inverse model (spec measures → design variables) on a sweep dataset and save it, or a yield
    model (design × variation → measures, --model yield) on a `sweep --variation` dataset.

    AICircuit's protocol by default: L1 loss, [-1, 1] scalers fitted on the training split only, 90/10
    split, Adam 1e-3, 100 epochs (yield: MSE, 3 × 128 hidden units, 150 epochs). The model file holds the
    scalers, the weights and the spec's design variables and measure names. Needs the ML extra: pip
    install -e '.[ml]'.

    Example:  optiyield train specs/csva.yaml --data data/csva.parquet --model mlp --out models/csva_mlp.oym
              optiyield train specs/csva.yaml --data data/csva_variation.parquet --model yield
    """
    import dataclasses

    from optiyield.propose.inverse import SURROGATE_OPTIONS, load_dataset, train_inverse
    from optiyield.propose.regressors import KINDS, TrainOptions
    from optiyield.propose.yield_model import KIND, train_yield_model

    spec = _load(spec_path)
    if model not in (*KINDS, KIND):
        errors.print(f"[bold red]error:[/] --model: expected one of {', '.join((*KINDS, KIND))}, got {model!r}")
        raise typer.Exit(2)
    try:
        if model == KIND:
            options = dataclasses.replace(SURROGATE_OPTIONS, epochs=epochs or SURROGATE_OPTIONS.epochs,
                                          batch_size=batch_size, learning_rate=learning_rate, seed=seed)
            with console.status(f"training a yield model on {data}"):
                trained = train_yield_model(spec, data, options, test_fraction)
        else:
            dataset = load_dataset(data, spec)
            options = TrainOptions(epochs=epochs or 100, batch_size=batch_size, learning_rate=learning_rate,
                                   seed=seed)
            with console.status(f"training {model} on {len(dataset)} rows"):
                trained = train_inverse(spec, dataset, model, options, test_fraction,
                                        surrogate=surrogate and model != "lookup")
        target = trained.save(out or Path("models") / f"{spec.name}_{model}.oym")
    except (FileNotFoundError, ValueError, *_ml_errors()) as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    scores = trained.scores
    console.print(f"{model}: {scores['train']} training rows, {scores['test']} test rows "
                  f"({scores['dropped']} failed rows dropped) → [bold]{target}[/]", highlight=False)
    per_design = scores.get("test_median_rel_error")
    per_measure = scores.get("surrogate_test_mae_over_range") if model == KIND else None
    if per_design or per_measure:
        table = Table("design variable", "median relative error (test split)") if per_design else \
            Table("measure", "mean absolute error / range (test split)")
        for name, value in (per_design or per_measure).items():
            table.add_row(name, f"{value * 100:.2f} %")
        console.print(table)
    if "test_pass_agreement" in scores:
        console.print(f"pass / fail agreement on the test split: {scores['test_pass_agreement']:.1%} "
                      f"({scores['test_pass_fraction']:.1%} of its rows pass)")


@app.command("propose")
def propose_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file: its specs are the query.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model file from `optiyield train`.")],
    candidates: Annotated[int, typer.Option("--candidates", "-k", min=1, help="Diverse candidates.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the query targets.")] = 0,
    check_samples: Annotated[int | None, typer.Option("--check-samples", min=1, help="Yield models: Monte Carlo "
                                                      "outcomes (the spec's sampler and seed) each candidate is "
                                                      "re-simulated over (default 25).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the candidates to this CSV file.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1,
                                                help="Parallel ngspice processes (default: one per core).")] = None,
) -> None:
    """Propose designs for the spec's thresholds with a trained model, and re-simulate every one.

    Prints each candidate's simulated measures and minimax error (≤ 0: every spec met). A yield model
    (`train --model yield`) ranks candidates by predicted yield; each is re-simulated over --check-samples
    outcomes and its measured yield on them printed (measures and error: medians over the outcomes). Use
    the same model as the first run step with {propose: {model: FILE, candidates: 8}}.

    Example:  optiyield propose specs/csva.yaml --model models/csva_mlp.oym --candidates 8
              optiyield propose specs/csva.yaml --model models/csva_yield.oym --candidates 4
    """
    from optiyield.optim.evaluator import Evaluator
    from optiyield.propose import propose_start
    from optiyield.propose.yield_model import load_model, model_proposer
    from optiyield.stats.variation import OutcomeSet

    spec = _load(spec_path)
    engine = _engine(spec, workers, None)
    try:
        proposer = model_proposer(load_model(model, spec))
        outcomes = OutcomeSet.draw(spec.model, check_samples or proposer.check_samples,  # type: ignore[attr-defined]
                                   spec.run.sampler, spec.run.seed) \
            if hasattr(proposer, "check_samples") else None  # type: ignore[arg-type]
        with engine:
            evaluator = Evaluator(spec, engine)
            proposal = propose_start(proposer, spec, evaluator, candidates, seed, outcomes=outcomes)
    except _ml_errors() as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    extra = () if outcomes is None else ("predicted yield", f"yield on {outcomes.n} outcomes")
    table = Table("#", *evaluator.names, *spec.file.specs, "minimax error", *extra)
    for k, x in enumerate(proposal.designs):
        marker = " ✓" if proposal.error[k] <= 0 else ""
        yields = () if proposal.passed is None else (f"{proposer.predicted[k]:.1%}",  # type: ignore[attr-defined]
                                                     f"{proposal.passed[k]:.1%}")
        table.add_row(str(k), *(format_eng(v) for v in x),
                      *(format_value(float(proposal.measures[m][k]), spec.testbench.unit(m))
                        for m in spec.file.specs), f"{proposal.error[k]:+.3f}{marker}", *yields)
    console.print(table)
    met = int((proposal.error <= 0).sum())
    console.print(f"{met} of {len(proposal.designs)} candidates meet every spec"
                  f"{'' if proposal.passed is None else ' (median outcome)'}; best: #{proposal.best}",
                  highlight=False)
    if out is not None:
        proposal.frame(evaluator.names).to_csv(out, index_label="candidate")


@app.command("sensitivity")
def sensitivity_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file.")],
    out: OutOption = None,
    at: AtOption = "start",
    top: Annotated[int, typer.Option("--top", min=1, help="Parameters shown per spec.")] = 5,
    cluster: Annotated[str | None, typer.Option("--cluster", help=CLUSTER_HELP)] = None,
) -> None:
    """Rank design and statistical parameters by their effect on each spec (batched central differences).

    Design variables move by ±1 % of their range, variation sources by ± one sigma (or ± tolerance);
    all perturbed points run in one batched ngspice call. Writes OUT/sensitivity.json (shown in the
    HTML report).

    Example:  optiyield sensitivity specs/csva.yaml --at final --out out/csva
    """
    import json

    problem = _problem(spec_path)
    spec = problem.spec
    folder = out or Path("out") / spec.name
    design = None
    if at == "final":
        summary = folder / "run_summary.json"
        if not summary.exists():
            errors.print(f"[bold red]error:[/] --at final: no {summary} (run `optiyield run` first)")
            raise typer.Exit(2)
        design = json.loads(summary.read_text())["design_final"]
    elif at != "start":
        errors.print(f"[bold red]error:[/] --at: expected start or final, got {at!r}")
        raise typer.Exit(2)
    with _engine(spec, None, cluster) as engine, _api_errors():
        sens = problem.sensitivity(design, engine=engine)
    with _api_errors():
        sens.save(folder)
    result = sens.raw
    for measure, entries in result["spec"].items():
        unit = spec.testbench.unit(measure)
        table = Table(title=f"{measure}: nominal {format_value(result['nominal'][measure], unit)} "
                      f"at the {at} design")
        for column in ("parameter", "kind", "step", "effect", "effect / spec scale"):
            table.add_column(column, justify="left" if column in ("parameter", "kind", "step") else "right")
        for entry in entries[:top]:
            table.add_row(entry["parameter"], entry["kind"], entry["step"],
                          format_value(entry["effect"], unit), f"{entry['normalized']:+.4f}")
        console.print(table)
    console.print(f"{result['simulations']} simulations; written to {folder / 'sensitivity.json'}", highlight=False)


@app.command("corners")
def corners_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file with `corners:`.")],
    at: AtOption = "start",
    out: OutOption = None,
    samples: Annotated[int | None, typer.Option("--samples", "-n", min=1, max=MAX_SAMPLES,
                                                help="Monte Carlo outcomes inside each corner marked monte_carlo "
                                                "(default: none, each corner at its nominal point).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the outcomes (default: run.seed).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1,
                                                help="Parallel ngspice processes (default: one per core).")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help=CLUSTER_HELP)] = None,
) -> None:
    """Every spec at every PVT corner of the spec: the corners × specs table (ADE's corner view).

    Prints each corner's measures (✗: the spec is violated there) and the worst corner of each spec with
    its margin; with --samples, the yield per corner and across corners (an outcome passes only at every
    corner). Writes OUT/corners.csv and OUT/corners.json (the HTML report shows them).

    Example:  optiyield corners specs/sky130_ota_corners.yaml --at start --out out/sky130_corners
    """
    import json

    problem = _problem(spec_path)
    spec = problem.spec
    if spec.corners is None:
        raise _fail(f"{spec_path}: no `corners:` in this spec (docs/corners.md shows how to add them)")
    folder = out or Path("out") / spec.name
    design = None
    if at == "final":
        summary = folder / "run_summary.json"
        if not summary.exists():
            raise _fail(f"--at final: no {summary} (run `optiyield run` first, or give its folder with --out)")
        design = json.loads(summary.read_text())["design_final"]
    elif at != "start":
        raise _fail(f"--at: expected start or final, got {at!r}")
    from optiyield.outdir import prepare

    with _api_errors():
        prepare(folder)
    total = len(spec.corners) * (samples or 1)
    with _engine(spec, workers, cluster) as engine, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True) as progress, _api_errors():
        task = progress.add_task(f"{spec.name}: {len(spec.corners)} corners", total=total)
        result = problem.corners(design, samples=samples, seed=seed, engine=engine,
                                 progress=lambda n: progress.advance(task, n))
    with _api_errors():
        written = result.save(folder)
    _print_corners(result, at)
    console.print(f"written: {written['csv']}, {written['json']}", highlight=False)
    if (folder / "run_summary.json").exists() or (folder / "summary.json").exists():
        _write_report(folder, spec)


def _print_corners(result, at: str) -> None:  # noqa: ANN001 - CornerResult
    table_data = result.result
    spec = result.problem.spec
    frame = result.table
    mc = table_data.monte_carlo
    title = (f"{spec.name}: {len(frame)} corners at the {at} design" +
             (f", {table_data.samples} Monte Carlo samples per sampled corner (yield; medians)" if mc else
              " (✗: spec violated)"))
    table = Table(title=title)
    table.add_column("corner", justify="left", no_wrap=True)
    for name in spec.file.specs:
        table.add_column(name, justify="right")
    table.add_column("yield" if mc else "pass", justify="right")
    for corner, row in frame.iterrows():
        cells = []
        for name in spec.file.specs:
            text = format_value(float(row[name]), spec.testbench.unit(name))
            if mc:
                text += f" ({row[f'yield {name}'] * 100:.0f} %)"
            elif row[f"margin {name}"] < 0:
                text += " ✗"
            cells.append(text)
        last = f"{row['yield'] * 100:.1f} %" if mc else ("yes" if row["pass"] else "[red]no[/]")
        table.add_row(str(corner), *cells, last)
    console.print(table)
    worst = Table(title="worst corner per spec")
    for column in ("spec", "limit", "worst corner", "value", "margin", "relative margin",
                   *(("yield",) if mc else ()), "every corner"):
        worst.add_column(column, justify="left" if column in ("spec", "worst corner") else "right",
                         no_wrap=column == "worst corner")
    for name, row in result.worst.iterrows():
        bound = spec.file.specs[str(name)]
        limit = " ".join(part for part in (f"≥ {format_eng(bound.min)}" if bound.min is not None else "",
                                           f"≤ {format_eng(bound.max)}" if bound.max is not None else "") if part)
        unit = spec.testbench.unit(str(name))
        worst.add_row(str(name), limit, str(row["worst corner"]), format_value(float(row["value"]), unit),
                      format_value(float(row["margin"]), unit), f"{row['relative margin']:+.3f}",
                      *((f"{row['yield'] * 100:.1f} %",) if mc else ()),
                      "pass" if row["pass"] else "[red]fail[/]")
    console.print(worst)
    passing = int(table_data.passed.all(axis=1).sum())
    cost = result.cost
    console.print(f"{passing} of {len(frame)} corners meet every spec"
                  + (f"; yield across corners {result.overall.value * 100:.1f} % [{result.overall.low * 100:.1f}, "
                     f"{result.overall.high * 100:.1f}]" if mc else "")
                  + f". {cost['simulations']} simulations in {cost['runs']} ngspice runs, "
                  f"{cost['ngspice_seconds']:.2f} s ngspice time, {cost['wall_seconds']:.2f} s wall", highlight=False)


def _write_report(folder: Path, spec) -> None:  # noqa: ANN001 - spec: Spec
    """Write OUT/report.html after a command; a report problem is a warning, the results stay written."""
    from optiyield.report.html import write_report

    try:
        path = write_report(folder, spec)
    except Exception as exc:  # noqa: BLE001 - never lose a finished run to a report problem
        errors.print(f"[yellow]warning:[/] report not written: {exc} (retry with: optiyield report {folder})",
                     highlight=False)
        return
    console.print(f"report: [bold]{path}[/]", highlight=False)


@app.command("report")
def report_command(
    folder: Annotated[Path, typer.Argument(metavar="OUTDIR", help="Output folder of optiyield run or yield.")],
    spec_path: Annotated[Path | None, typer.Option("--spec", help="Spec YAML file (default: the spec file named "
                                                   "in OUTDIR/run_summary.json or summary.json).")] = None,
) -> None:
    """Write OUTDIR/report.html: one self-contained HTML page of an output folder.

    Shows the verified yield, the spec table with margins, histograms before and after optimization,
    yield and objective traces, the design change, cost per step, failed simulations, the two most
    yield-limiting specs and, if OUTDIR/sensitivity.json exists, the sensitivities. Figures are embedded;
    the file needs no network. `optiyield run` and `optiyield yield` write it too.

    Example:  optiyield report out/csva --spec specs/csva.yaml
    """
    from optiyield.report.html import ReportError, write_report

    spec = _load(spec_path) if spec_path is not None else None
    try:
        path = write_report(folder, spec)
    except ReportError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"report: [bold]{path}[/]", highlight=False)


@app.command("serve")
def serve_command(
    folder: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder of a running or finished "
                                           "`optiyield run`.")],
    spec_path: Annotated[Path | None, typer.Option("--spec", help="Spec YAML file (default: the one the run "
                                                   "names in OUT/run_info.json or run_summary.json).")] = None,
    host: Annotated[str, typer.Option("--host", help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")] = 8050,
) -> None:
    """Serve a live web page that follows a run from its folder, until Ctrl-C.

    The page shows the yield with its interval per iteration, each spec's margin, the current design against
    its bounds, the cost per step and failed simulations, and updates while the run goes on; when the run
    ends it becomes the full report. It only reads OUT (never simulates) and needs no network: the chart
    library is served from the installed package. Needs the extra: pip install 'optiyield[dashboard]'.

    Example:  optiyield serve out/csva   (then open http://127.0.0.1:8050/)
    """
    from optiyield.dashboard import serve

    spec = _problem(spec_path).spec if spec_path is not None else None
    if not folder.is_dir():
        raise _fail(f"{folder}: no such folder (start the run first, e.g. optiyield run SPEC --out {folder})")

    def ready(url: str) -> None:
        console.print(f"following {folder}: open [bold]{url}[/] (Ctrl-C to stop)", highlight=False)

    with _dashboard_errors():
        try:
            serve(folder, spec, host=host, port=port, ready=ready)
        except KeyboardInterrupt:
            return


@app.command("touchstone")
def touchstone_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file of an RF testbench.")],
    out: OutOption = None,
    at: AtOption = "start",
    sweep: Annotated[float | None, typer.Option("--sweep", help="The sweep value to export, for a testbench "
                                                "with a sweep (e.g. a VGA's gain state).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="File name without suffix (default: the spec's "
                                             "name and the design point).")] = None,
) -> None:
    """Write the S-parameters of an RF testbench at a design to a Touchstone file (.s2p, or .s1p).

    The ports are those of the testbench's RF measures (port 1: the ac source behind z0; port 2: the load
    zl); every frequency of its .ac sweep is written. S11/S21 come from the testbench's .ac run, S12/S22
    from a second run driving port 2 (docs/touchstone.md). Needs the extra: pip install 'optiyield[rf]'.

    Example:  optiyield touchstone specs/lna.yaml --at final --out out/lna
    """
    import json

    from optiyield.touchstone import TouchstoneError

    problem = _problem(spec_path)
    folder = out or Path("out") / problem.name
    design = None
    if at == "final":
        summary = folder / "run_summary.json"
        if not summary.exists():
            raise _fail(f"--at final: no {summary} (run `optiyield run` first)")
        design = json.loads(summary.read_text())["design_final"]
    elif at != "start":
        raise _fail(f"--at: expected start or final, got {at!r}")
    try:
        with _api_errors():
            path = problem.touchstone(folder / (name or f"{problem.name}_{at}"), design, at=sweep)
    except TouchstoneError as exc:
        raise _fail(str(exc)) from None
    console.print(f"S-parameters at the {at} design: [bold]{path}[/]", highlight=False)


@app.command("fit-parasitics")
def fit_parasitics_command(
    table_path: Annotated[Path, typer.Argument(metavar="TABLE", help="CSV with columns N, w_um, M, cgs_fF, "
                                               "cgd_fF, cds_fF (one extracted device per row).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the coefficients to this YAML file "
                                             "(usable as a testbench's parasitic_coefficients).")] = None,
) -> None:
    """Fit the parasitic-capacitance regressions C = (a + b·N + c·w)·M, in fF, to extracted data.

    N is the number of fingers, w the finger width in µm, M the multiplier. Each of Cgs, Cgd, Cds is fitted
    by least squares as C/M against [1, N, w]; prints the coefficients, R² (of C/M) and the RMS residual
    of C. The YAML written by --out is accepted by `parasitic_coefficients:` in testbench.yaml (with
    `parasitics: regression`).

    Example:  optiyield fit-parasitics extracted.csv --out circuits/lna/parasitics.yaml
    """
    from optiyield.parasitics import CAPACITANCES, ParasiticError, fit_table, write_coefficients

    try:
        result = fit_table(table_path)
    except ParasiticError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    table = Table(title=f"C = (a + b·N + c·w)·M fF, fitted to {result.rows} rows of {table_path.name}")
    for column in ("capacitance", "a (fF)", "b (fF/finger)", "c (fF/µm)", "R² (C/M)", "RMS residual (fF)"):
        table.add_column(column, justify="left" if column == "capacitance" else "right")
    for name in CAPACITANCES:
        regression = result.coefficients.regression(name)
        table.add_row(name.capitalize(), f"{regression.a:.4g}", f"{regression.b:.4g}", f"{regression.c:.4g}",
                      f"{result.r2[name]:.5f}", f"{result.rms_ff[name]:.3g}")
    console.print(table)
    if out is not None:
        write_coefficients(out, result.coefficients)
        console.print(f"coefficients written to [bold]{out}[/] (testbench: parasitics: regression, "
                      f"parasitic_coefficients: {out.name})", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
