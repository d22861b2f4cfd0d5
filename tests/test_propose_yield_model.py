"""Yield models: the variation dataset (`sweep --variation`), training (`train --model yield`), the proposer
that maximises the predicted yield, and the `propose` step that checks its candidates over the run's
outcomes. The dataset and the flow run through ngspice on the CSVA; the proposer's mathematics is pinned
with an analytic stand-in for the surrogate."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import needs_ml, require_ml, run_cli, small_csva_spec
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from typer.testing import CliRunner

from optiyield.cli import app
from optiyield.dataset import design_plan, deviate_columns, parameter_rows, with_variation
from optiyield.montecarlo import sample_matrix
from optiyield.objective import ErrorModel
from optiyield.optim.evaluator import Evaluator
from optiyield.sim.engine import Engine
from optiyield.spec import load_spec
from optiyield.stats.sampling import UniformSource
from optiyield.stats.variation import OutcomeSet

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "csva.yaml"


@pytest.fixture(scope="module")
def csva():
    return load_spec(SPEC)


def one_outcome(spec, z: np.ndarray) -> OutcomeSet:
    """An outcome set holding exactly the deviates ``z`` (1, dims)."""
    return OutcomeSet(spec.model, np.atleast_2d(z), UniformSource(spec.model.dims, "mc", 0))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10**6))
def test_each_row_pairs_its_design_with_its_own_outcome(n, seed):
    spec = load_spec(SPEC)
    plan = with_variation(spec, design_plan(spec, n, "lhs", seed), seed)
    assert list(plan.columns) == [*spec.file.design, *deviate_columns(spec.model.dims)]
    pd.testing.assert_frame_equal(plan, with_variation(spec, design_plan(spec, n, "lhs", seed), seed))
    rows = parameter_rows(spec, plan)
    design = plan[list(spec.file.design)].to_numpy()
    z = plan[deviate_columns(spec.model.dims)].to_numpy()
    for i in range(n):
        expected = sample_matrix(spec, one_outcome(spec, z[i]), dict(zip(spec.file.design, design[i], strict=True)))
        np.testing.assert_allclose(rows[i], expected[0], rtol=1e-12)


def test_a_nominal_plan_keeps_the_statistical_parameters_at_nominal(csva):
    plan = design_plan(csva, 8, "sobol")
    rows = parameter_rows(csva, plan)
    for i, design in enumerate(plan.to_numpy()):
        nominal = csva.nominal(dict(zip(csva.file.design, design, strict=True)))
        np.testing.assert_allclose(rows[i], [nominal[p] for p in csva.parameters])


@pytest.mark.ngspice
def test_variation_sweep_rows_are_the_simulations_of_their_outcomes(csva, tmp_path):
    run_cli("sweep", SPEC, "--n", 24, "--variation", "--seed", 5, "--out", tmp_path / "v.parquet")
    table = pd.read_parquet(tmp_path / "v.parquet")
    assert len(table) == 24 and set(deviate_columns(csva.model.dims)) <= set(table.columns)
    assert table[deviate_columns(csva.model.dims)].std().gt(0.3).all()  # real deviates, not zeros
    with Engine(workers=2) as engine:
        evaluator = Evaluator(csva, engine)
        for i in (0, 7, 23):
            row = table.iloc[i]
            x = row[list(csva.file.design)].to_numpy(dtype=float)
            z = row[deviate_columns(csva.model.dims)].to_numpy(dtype=float)
            simulated = evaluator.responses(x, one_outcome(csva, z)).values
            for name in csva.file.specs:
                assert simulated[name][0, 0] == pytest.approx(row[name], rel=1e-9), (i, name)


class AnalyticSurrogate:
    """Stands in for the trained MLP: gain_db = 10 + 4·u_W + 2·z0, bw = 200 MHz·(1 + u_Rd) + 100 MHz·z3,
    power = 400 µW·(1 + u_VDD), always within its 850 µW (u: position in the design range; z0 and z3: the
    CSVA's independent standard normal deviates, Rd's and dvth's)."""

    def __init__(self, spec) -> None:
        self.lower, self.upper = spec.design_bounds

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        u = (inputs[:, :4] - self.lower) / (self.upper - self.lower)
        z = inputs[:, 4:]
        return np.column_stack([10 + 4 * u[:, 2] + 2 * z[:, 0], 200e6 * (1 + u[:, 3]) + 100e6 * z[:, 3],
                                400e-6 * (1 + u[:, 0])])


@needs_ml
def test_predicted_yield_is_the_pass_fraction_and_the_proposer_finds_its_maximum(csva):
    from optiyield.propose.yield_model import YieldModel, YieldModelProposer

    lower, upper = csva.design_bounds
    model = YieldModel(csva.name, tuple(csva.file.design), lower, upper, csva.model.dims,
                       tuple(csva.file.specs), AnalyticSurrogate(csva))  # type: ignore[arg-type]
    errors = ErrorModel.from_specs(csva.file.specs)
    limits = {f.measure: f.limit for f in errors.functions}
    z = OutcomeSet.draw(csva.model, 20000, "mc", 3).z
    # one design: the gain and bw margins in sigmas give the exact yield Φ(a)·Φ(b)
    x = lower + np.array([0.2, 0.5, 0.6, 0.3]) * (upper - lower)
    a = (10 + 4 * 0.6 - limits["gain_db"]) / 2
    b = (200e6 * 1.3 - limits["bw"]) / 100e6
    assert model.predicted_yield(errors, x, z)[0] == pytest.approx(norm.cdf(a) * norm.cdf(b), abs=0.01)
    # the proposer: the best design maximises W and Rd (both margins grow with them)
    proposer = YieldModelProposer(model, outcomes=2000, pool=256)
    best = proposer.propose(csva, 3, seed=1)[0]
    u = (best - lower) / (upper - lower)
    assert u[2] > 0.9 and u[3] > 0.9, u
    assert proposer.predicted[0] == pytest.approx(
        norm.cdf((10 + 4 - limits["gain_db"]) / 2) * norm.cdf((400e6 - limits["bw"]) / 100e6), abs=0.02)
    assert np.all(np.diff(proposer.predicted) <= 1e-12)  # best predicted first


@pytest.fixture(scope="module")
def yield_model(tmp_path_factory):
    require_ml()
    folder = tmp_path_factory.mktemp("yield_model")
    run_cli("sweep", SPEC, "--n", 4096, "--variation", "--out", folder / "v.parquet")
    out = run_cli("train", SPEC, "--data", folder / "v.parquet", "--model", "yield", "--epochs", 50,
                  "--out", folder / "y.oym")
    assert "yield: " in out and "pass / fail agreement" in out
    return folder


@pytest.mark.ngspice
def test_yield_model_proposals_pass_where_the_start_does_not(yield_model, csva):
    out = run_cli("propose", SPEC, "--model", yield_model / "y.oym", "-k", 3, "--check-samples", 40,
                  "--out", yield_model / "cands.csv")
    assert "(median outcome)" in out
    table = pd.read_csv(yield_model / "cands.csv")
    assert len(table) == 3 and "yield_on_outcomes" in table.columns
    with Engine(workers=2) as engine:  # the start design passes no outcome; the best proposal most of them
        evaluator = Evaluator(csva, engine)
        outcomes = OutcomeSet.draw(csva.model, 400, "mc", 77)
        start = (evaluator.responses(evaluator.x0, outcomes).errors(evaluator.errors)[0] <= 0).all(-1).mean()
        best = table.loc[table["yield_on_outcomes"].idxmax(), list(csva.file.design)].to_numpy(dtype=float)
        found = (evaluator.responses(best, outcomes).errors(evaluator.errors)[0] <= 0).all(-1).mean()
    assert start == 0.0 and found >= 0.7, found


@pytest.mark.ngspice
def test_propose_step_starts_from_the_candidate_passing_most_outcomes(yield_model, tmp_path):
    spec_file = small_csva_spec(tmp_path, samples=30, steps=[
        {"propose": {"model": str(yield_model / "y.oym"), "candidates": 3, "check_samples": 12}}])
    run_cli("run", spec_file, "--out", tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    (propose,) = summary["steps"]
    proposals = pd.read_csv(tmp_path / "run" / "proposals.csv")
    assert propose["result"]["simulations"] == 3 * 12
    best = proposals.loc[proposals["yield_on_outcomes"].idxmax()]
    assert propose["result"]["design"] == pytest.approx({k: best[k] for k in ("VDD", "Vgate", "W", "Rd")})
    assert "over 12 outcomes" in propose["result"]["status"]


@needs_ml
def test_a_nominal_dataset_or_another_spec_is_refused_clearly(yield_model, tmp_path):
    run_cli("sweep", SPEC, "--n", 16, "--out", tmp_path / "nominal.parquet")
    result = CliRunner().invoke(app, ["train", str(SPEC), "--data", str(tmp_path / "nominal.parquet"),
                                      "--model", "yield"])
    assert result.exit_code == 2 and "sweep --variation" in " ".join(result.output.split())
    lna = ROOT / "specs" / "lna.yaml"
    result = CliRunner().invoke(app, ["propose", str(lna), "--model", str(yield_model / "y.oym")])
    assert result.exit_code == 2 and "trained for design variables" in " ".join(result.output.split())
