"""The ``optiyield`` command line: a thin typer app over spec → Monte Carlo → report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optiyield import __version__
from optiyield.errors import SpecError
from optiyield.sim.runner import NgspiceNotFound
from optiyield.units import format_eng

app = typer.Typer(
    help="Yield-driven design of analog and RF circuits on ngspice.\n\n"
    "Example:  optiyield yield specs/csva.yaml --samples 1000 --out out/csva",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


def _load(spec_path: Path):  # noqa: ANN202 - returns Spec
    from optiyield.spec import load_spec

    try:
        return load_spec(spec_path)
    except SpecError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        console.print(f"optiyield {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """optiyield: Monte Carlo yield, minimax and yield optimization of ngspice testbenches."""


@app.command("validate")
def validate(spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file.")]) -> None:
    """Check a spec file and its testbench without simulating.

    Example:  optiyield validate specs/csva.yaml
    """
    spec = _load(spec_path)
    tb = spec.testbench
    console.print(f"[green]ok[/] {spec_path}: spec {spec.name!r}, testbench {tb.name!r} "
                  f"({'batched copies' if tb.copies else 'one process per sample'}), "
                  f"{len(spec.file.design)} design variables, {spec.model.dims} random dimensions, "
                  f"{len(spec.file.specs)} specs", highlight=False)


@app.command("yield")
def yield_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec YAML file.")],
    samples: Annotated[int | None, typer.Option("--samples", "-n", min=1,
                                                help="Monte Carlo samples (default: run.samples).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: run.seed).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="mc or sobol (default: run.sampler).")] = None,
    ci_width: Annotated[float | None, typer.Option(
        "--ci-width", help="Stop once the yield interval is narrower than this (e.g. 0.05); "
        "--samples is then the maximum.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1,
                                                help="Parallel ngspice processes (default: one per core).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: out/<spec name>).")] = None,
) -> None:
    """Monte Carlo yield of a spec at its start point.

    Prints per-spec yields, the overall yield with its 95 % interval, failed simulations and
    throughput; writes samples.csv/.parquet, summary.json and a histogram per spec to --out.

    Example:  optiyield yield specs/csva.yaml --samples 2000 --seed 7 --out out/csva
    """
    from optiyield.montecarlo import run_monte_carlo
    from optiyield.report.files import write_outputs
    from optiyield.sim.engine import Engine

    spec = _load(spec_path)
    if sampler not in (None, "mc", "sobol"):
        errors.print(f"[bold red]error:[/] --sampler: expected mc or sobol, got {sampler!r}")
        raise typer.Exit(2)
    try:
        engine = Engine(workers=workers or spec.run.workers)
    except NgspiceNotFound as exc:
        errors.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(3) from None
    total = samples or spec.run.samples
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"simulating {spec.name}", total=total)
        result = run_monte_carlo(spec, engine, samples=samples, seed=seed, sampler=sampler,
                                 ci_width=ci_width, progress=lambda n: progress.advance(task, n))
    folder = out or Path("out") / spec.name
    write_outputs(spec, result, folder)
    _print_summary(spec, result)
    console.print(f"results written to [bold]{folder}[/]", highlight=False)


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
    console.print(f"failed simulations: {summary.failed_simulations}   "
                  f"throughput: {result.samples_per_second:.0f} samples/s "
                  f"({result.runs} ngspice runs, {result.ngspice_seconds:.2f} s ngspice time, "
                  f"{result.wall_seconds:.2f} s wall)", highlight=False)
    if summary.failed_simulations:
        for reason, count in result.failed["reason"].value_counts().head(5).items():
            console.print(f"  {count} × {reason}", highlight=False, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    app()
