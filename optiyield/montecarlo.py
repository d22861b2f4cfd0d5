"""Monte Carlo yield of a spec at a design point: outcomes → batched ngspice → measures → yield.

Outcomes are drawn once per run from the spec's statistical model (seeded MC or scrambled Sobol) and
kept as an :class:`~optiyield.stats.variation.OutcomeSet`, so the same deviates can be re-applied at
another design point (common random numbers). With ``run.ci_width`` set, samples are added in chunks
until the yield interval is narrower than that width or ``run.samples`` is reached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optiyield.sim.engine import FAILED, SimResults, every_sample_failed
from optiyield.sim.protocol import Backend
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet
from optiyield.yield_ import YieldSummary, interval_narrower_than, yield_table


@dataclass
class MonteCarloResult:
    """One Monte Carlo yield run.

    ``table`` has one row per sample: parameter values (SI), measure values, ``status`` and ``reason``.
    ``design`` is the nominal design point; ``summary`` the yield figures; ``ngspice_seconds`` the summed
    ngspice process time; ``wall_seconds`` the elapsed time; ``runs`` the number of ngspice processes.
    """

    spec_name: str
    design: dict[str, float]
    table: pd.DataFrame
    summary: YieldSummary
    wall_seconds: float
    ngspice_seconds: float
    runs: int
    seed: int
    sampler: str

    @property
    def samples_per_second(self) -> float:
        """Simulated samples per second of wall time."""
        return len(self.table) / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def failed(self) -> pd.DataFrame:
        """Rows of samples whose simulation failed, with their reasons."""
        return self.table[self.table["status"] == FAILED]


def sample_matrix(spec: Spec, outcomes: OutcomeSet, design: Mapping[str, float] | None = None) -> np.ndarray:
    """Per-sample values of ``spec.parameters`` (shape (n, P), SI) for the outcomes at a design point."""
    nominal = spec.nominal(dict(design or {}))
    varied = outcomes.apply(nominal)
    columns = [varied.get(name, np.full(outcomes.n, nominal[name])) for name in spec.parameters]
    return np.column_stack(columns) if columns else np.zeros((outcomes.n, 0))


def simulate(spec: Spec, values: np.ndarray, engine: Backend,
             progress: Callable[[int], None] | None = None) -> SimResults:
    """Simulate per-sample parameter rows of ``spec`` (columns in ``spec.parameters`` order)."""
    return engine.run(spec.testbench.job(spec.parameters), values, progress)


def run_monte_carlo(
    spec: Spec,
    engine: Backend,
    *,
    samples: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    design: Mapping[str, float] | None = None,
    ci_width: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> MonteCarloResult:
    """Estimate the yield of ``spec`` at ``design`` (default: the start point).

    Arguments override the spec's ``run`` settings. Failed simulations count as failing samples; when
    every sample fails, :class:`~optiyield.sim.engine.EverySampleFailed` says why instead.
    """
    run = spec.run
    samples = samples or run.samples
    seed = run.seed if seed is None else seed
    sampler = sampler or run.sampler
    ci_width = ci_width if ci_width is not None else run.ci_width
    point = spec.nominal(dict(design or {}))
    first = min(samples, run.chunk) if ci_width else samples
    outcomes = OutcomeSet.draw(spec.model, first, sampler, seed)  # type: ignore[arg-type]
    parts: list[SimResults] = []
    done = 0
    while True:
        rows = sample_matrix(spec, outcomes, point)
        parts.append(simulate(spec, rows[done:], engine, progress))
        done = outcomes.n
        values = {name: np.concatenate([p.values[name] for p in parts]) for name in spec.testbench.measure_names}
        status = np.concatenate([p.status for p in parts])
        if not ci_width or done >= samples:
            break
        if interval_narrower_than(spec_yield(spec, values, status != FAILED).overall, ci_width):
            break
        outcomes = outcomes.extend(min(run.chunk, samples - done))
    if (status == FAILED).all():
        raise every_sample_failed(status, np.concatenate([p.reason for p in parts]), "of the Monte Carlo")
    return assemble(spec, point, rows, values, status, np.concatenate([p.reason for p in parts]),
                    wall_seconds=sum(p.wall_seconds for p in parts),
                    ngspice_seconds=sum(p.ngspice_seconds for p in parts), runs=sum(p.runs for p in parts),
                    seed=seed, sampler=sampler)


def assemble(spec: Spec, point: Mapping[str, float], rows: np.ndarray, values: Mapping[str, np.ndarray],
             status: np.ndarray, reason: np.ndarray, *, wall_seconds: float, ngspice_seconds: float, runs: int,
             seed: int, sampler: str) -> MonteCarloResult:
    """Build a :class:`MonteCarloResult` from per-sample parameter rows, measures, status and reasons."""
    table = pd.DataFrame(rows, columns=list(spec.parameters))
    for name in spec.testbench.measure_names:
        table[name] = values[name]
    table["status"] = np.asarray(status).astype(str)
    table["reason"] = np.asarray(reason).astype(str)
    table.insert(0, "sample", np.arange(len(table)))
    summary = spec_yield(spec, {n: table[n].to_numpy(dtype=float) for n in spec.file.specs},
                         table["status"].to_numpy() != FAILED)
    return MonteCarloResult(
        spec_name=spec.name, design={k: point[k] for k in spec.file.design}, table=table, summary=summary,
        wall_seconds=wall_seconds, ngspice_seconds=ngspice_seconds, runs=runs, seed=seed, sampler=sampler,
    )


def spec_yield(spec: Spec, values: Mapping[str, np.ndarray], ok: np.ndarray) -> YieldSummary:
    """Yield of the spec's limits over per-sample measure values; samples not ``ok`` count as failing."""
    return yield_table({n: values[n] for n in spec.file.specs}, np.asarray(ok, dtype=bool), spec.limits,
                       spec.run.confidence)
