"""Shared test helpers."""

from collections.abc import Mapping, Sequence

import numpy as np
from typer.testing import CliRunner

from optiyield.cli import app
from optiyield.sim.engine import OK, Engine
from optiyield.sim.job import SimJob
from optiyield.spec import Spec


def simulate_points(spec: Spec, points: Sequence[Mapping[str, float]], job: SimJob | None = None) -> dict:
    """Simulate design points (parameter → value; the rest at the spec's nominal values) through ngspice
    in one batched call and return the measures; every simulation must succeed."""
    nominal = spec.nominal()
    values = np.array([[point.get(n, nominal[n]) for n in spec.parameters] for point in points])
    results = Engine(workers=2).run(job or spec.testbench.job(spec.parameters), values)
    assert (results.status == OK).all(), results.reason
    return results.values


def run_cli(*args: object) -> str:
    """Run an ``optiyield`` command in-process, assert it exits 0, and return its output with runs of
    whitespace collapsed (rich wraps long lines at the terminal width)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())
