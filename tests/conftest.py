"""Shared test helpers."""

import importlib.util
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
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


#: The modules of the ``[ml]`` extra (pyproject.toml): inverse models and surrogates need all three.
ML_MODULES = ("torch", "sklearn", "joblib")


def _absent(module: str) -> bool:
    """Whether ``module`` cannot be imported (looked up without importing it: torch takes seconds)."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


#: The ``[ml]`` modules this interpreter lacks (empty when the extra is installed).
ML_MISSING = tuple(m for m in ML_MODULES if _absent(m))
ML_REASON = (f"the [ml] extra is not installed (no {', '.join(ML_MISSING)}): pip install -e '.[ml]' "
             "(make setup installs it)")
#: Mark a test that trains or loads inverse models / surrogates.
needs_ml = pytest.mark.skipif(bool(ML_MISSING), reason=ML_REASON)


def require_ml() -> None:
    """Skip the calling test or fixture when the ``[ml]`` extra is absent (see :data:`needs_ml`)."""
    if ML_MISSING:
        pytest.skip(ML_REASON)
