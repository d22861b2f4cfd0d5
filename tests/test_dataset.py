"""Design-space datasets (`optiyield sweep`): the sampling plan, chunked simulation through ngspice,
resuming from the chunks on disk, and the Parquet table."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optiyield.dataset import design_plan, sweep_dataset
from optiyield.sim.engine import Engine
from optiyield.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "specs" / "csva.yaml")


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300), st.sampled_from(["sobol", "lhs", "grid"]), st.integers(0, 10**6))
def test_plan_stays_inside_the_design_bounds_and_is_reproducible(n, method, seed):
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    plan = design_plan(spec, n, method, seed)
    assert list(plan.columns) == list(spec.file.design)
    for name, var in spec.file.design.items():
        assert (plan[name] >= var.min).all() and (plan[name] <= var.max).all()
    if method != "grid":
        assert len(plan) == n
    pd.testing.assert_frame_equal(plan, design_plan(spec, n, method, seed))


def test_grid_is_full_factorial(spec):
    plan = design_plan(spec, 100, "grid")          # 4 variables: floor(100 ** 0.25) = 3 levels
    assert len(plan) == 3**4
    assert all(plan[name].nunique() == 3 for name in plan.columns)


@pytest.mark.ngspice
def test_sweep_simulates_in_chunks_and_resumes(spec, tmp_path):
    plan = design_plan(spec, 40, "lhs", seed=3)
    out = tmp_path / "csva.parquet"
    with Engine(workers=2) as engine:
        first = sweep_dataset(spec, plan, engine, out, chunk=16)
        assert (first.simulated_chunks, first.reused_chunks) == (3, 0)
        table = pd.read_parquet(out)
        assert len(table) == 40 and set(spec.testbench.measure_names) <= set(table.columns)
        assert (table["status"] != "failed").all() and np.isfinite(table["gain_db"]).all()
        np.testing.assert_allclose(table[list(plan.columns)].to_numpy(), plan.to_numpy())
        # an interrupted run: the last chunk never got written; the next run simulates only that one
        (tmp_path / "csva.parquet.parts" / "part-00002.parquet").unlink()
        again = sweep_dataset(spec, plan, engine, out, chunk=16)
        assert (again.simulated_chunks, again.reused_chunks) == (1, 2)
        pd.testing.assert_frame_equal(pd.read_parquet(out), table, rtol=1e-9)
        with pytest.raises(ValueError, match="different sweep"):
            sweep_dataset(spec, design_plan(spec, 50, "lhs"), engine, out, chunk=16)


@pytest.mark.ngspice
def test_sweep_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "optiyield", "sweep", str(ROOT / "specs" / "csva.yaml"), "--n", "32",
                           "--method", "sobol", "--out", str(tmp_path / "d.parquet")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "32 points (sobol)" in done.stdout
    assert len(pd.read_parquet(tmp_path / "d.parquet")) == 32
    bad = subprocess.run([sys.executable, "-m", "optiyield", "sweep", str(ROOT / "specs" / "csva.yaml"),
                          "--method", "random", "--out", str(tmp_path / "e.parquet")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--method" in bad.stderr
