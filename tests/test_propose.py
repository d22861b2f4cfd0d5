"""The ML warm start through ngspice, end to end on the CSVA: sweep → train → propose → re-simulate,
and the proposer as the first step of `optiyield run`."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_ml, run_cli, simulate_points, small_csva_spec

from optiyield.errors import SpecError
from optiyield.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "csva.yaml"
pytestmark = pytest.mark.ngspice


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    require_ml()  # every test that uses a trained model skips without the [ml] extra
    folder = tmp_path_factory.mktemp("warm")
    run_cli("sweep", SPEC, "--n", 512, "--out", folder / "csva.parquet")
    out = run_cli("train", SPEC, "--data", folder / "csva.parquet", "--model", "mlp",
                  "--out", folder / "csva_mlp.oym")
    assert "461 training rows, 51 test rows" in out
    return folder


def test_proposed_candidates_are_resimulated_and_meet_the_spec(trained):
    out = run_cli("propose", SPEC, "--model", trained / "csva_mlp.oym", "-k", 4, "--out", trained / "cands.csv")
    assert "candidates meet every spec" in out
    table = pd.read_csv(trained / "cands.csv")
    assert len(table) == 4
    spec = load_spec(SPEC)
    design = list(spec.file.design)
    simulated = simulate_points(spec, [dict(zip(design, row, strict=True)) for row in table[design].to_numpy()])
    for name in spec.file.specs:  # the printed figures are real simulations of the printed designs
        assert np.allclose(table[name], simulated[name], rtol=1e-9), name
    best = table["minimax_error"].min()
    assert best <= 0.0, f"no candidate of the trained MLP meets the CSVA spec (best error {best:+.3f})"
    lower = np.array([v.min for v in spec.file.design.values()])
    upper = np.array([v.max for v in spec.file.design.values()])
    assert (table[design].to_numpy() >= lower).all() and (table[design].to_numpy() <= upper).all()


def test_propose_step_gives_the_optimizer_its_start(trained, tmp_path):
    steps = [{"propose": {"model": str(trained / "csva_mlp.oym"), "candidates": 4}},
             {"nominal": "minimax", "until": "feasible", "max_iter": 10}]
    spec_file = small_csva_spec(tmp_path, samples=16, steps=steps)
    out = run_cli("run", spec_file, "--out", tmp_path / "run")
    assert "propose (csva_mlp.oym, 4 candidates)" in out
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    propose, nominal = summary["steps"]
    proposals = pd.read_csv(tmp_path / "run" / "proposals.csv")
    best = proposals.loc[proposals["minimax_error"].idxmin()]
    assert propose["result"]["design"] == pytest.approx({k: best[k] for k in ("VDD", "Vgate", "W", "Rd")})
    assert propose["result"]["simulations"] == 4  # the step itself; yield figures around it are extra
    # the start met every spec, so `until: feasible` spends nothing more (the start is in the store)
    assert best["minimax_error"] <= 0 and nominal["result"]["simulations"] == 0
    assert summary["design_final"] == pytest.approx(propose["result"]["design"])


def test_missing_model_file_is_a_spec_error(tmp_path):
    spec_file = small_csva_spec(tmp_path, steps=[{"propose": {"model": "nowhere.oym"}}])
    with pytest.raises(SpecError, match=r"run.steps\[0\].propose.model: model file 'nowhere.oym' not found"):
        load_spec(spec_file)


def test_train_and_propose_refuse_bad_input(trained, tmp_path):
    from typer.testing import CliRunner

    from optiyield.cli import app

    lna = ROOT / "specs" / "lna.yaml"
    result = CliRunner().invoke(app, ["propose", str(lna), "--model", str(trained / "csva_mlp.oym")])
    assert result.exit_code == 2 and "trained for design variables" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["train", str(lna), "--data", str(trained / "csva.parquet")])
    assert result.exit_code == 2 and "columns C1, C2" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["train", str(SPEC), "--data", str(trained / "csva.parquet"), "--model", "gp"])
    assert result.exit_code == 2 and "expected one of mlp, transformer" in " ".join(result.output.split())


class FixedProposer:
    """A proposer with a fixed list of candidates (the protocol's simplest implementation)."""

    name = "fixed"

    def __init__(self, designs: np.ndarray) -> None:
        self.designs = designs

    def propose(self, spec, count, seed=0):  # noqa: ANN001, ANN201 - protocol signature
        return self.designs[:count]


def test_sequential_proposal_stops_at_the_first_candidate_meeting_every_spec(trained):
    from optiyield.optim.evaluator import Evaluator
    from optiyield.propose import propose_start
    from optiyield.sim.engine import Engine

    spec = load_spec(SPEC)
    good = pd.read_csv(trained / "cands.csv").sort_values("minimax_error")[list(spec.file.design)].to_numpy()[0]
    evaluator = Evaluator(spec, Engine(workers=2))
    bad = evaluator.lower.copy()  # lowest supply, bias, width and load: far too little gain
    proposal = propose_start(FixedProposer(np.vstack([bad, good, good * 1.01])), spec, evaluator, 3,
                             sequential=True)
    assert evaluator.meter.simulations == 2 and len(proposal.designs) == 2
    assert proposal.error[0] > 0 >= proposal.error[1] and proposal.best == 1
    batch = propose_start(FixedProposer(np.vstack([bad, good, good * 1.01])), spec, evaluator, 3)
    assert len(batch.designs) == 3 and np.allclose(batch.error[:2], proposal.error)
