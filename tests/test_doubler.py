"""Bandler's 5 GHz FET frequency doubler (circuits/doubler_5ghz, specs/doubler_5ghz.yaml) through ngspice."""

from pathlib import Path

import numpy as np
import pytest
from conftest import simulate_points

from optiyield.objective import passes
from optiyield.optim.evaluator import Evaluator
from optiyield.sim.engine import Engine
from optiyield.spec import load_spec
from optiyield.stats.variation import OutcomeSet

pytestmark = pytest.mark.ngspice

SPEC = Path(__file__).resolve().parents[1] / "specs" / "doubler_5ghz.yaml"


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC)


def test_statistical_model_has_the_papers_34_parameters(spec) -> None:
    """6 design variables at Bandler's start; 34 statistical parameters (22 FET normal + 12 uniform)."""
    start = spec.design_start
    assert list(start) == ["Pin", "VGB", "VDB", "L1", "ll1", "ll2"]
    assert start == pytest.approx({"Pin": 2e-3, "VGB": -1.9, "VDB": 5.0, "L1": 5e-9, "ll1": 1e-3, "ll2": 5e-3})
    entries = spec.file.variation.parameters
    params = [p for e in entries for p in e.targets]
    assert len(params) == len(set(params)) == 34
    uniform = {p for e in entries if e.dist == "uniform" for p in e.targets}
    assert uniform == {"Pin", "VGB", "VDB", "L1", "ll1", "ll2", "L2", "L3", "C1", "C2", "w1", "w2"}
    outcomes = OutcomeSet.draw(spec.model, 4000, "mc", 3)
    assert outcomes.z.shape == (4000, 34)
    names = [e.draw_name for e in entries]
    z = outcomes.z
    assert np.corrcoef(z[:, names.index("Idss")], z[:, names.index("Vp0")])[0, 1] == pytest.approx(-0.6, abs=0.05)
    assert np.corrcoef(z[:, names.index("Rs")], z[:, names.index("Rd")])[0, 1] == pytest.approx(0.6, abs=0.05)


def test_stub_length_sets_spectral_purity_and_gain_is_physical(spec) -> None:
    """At Bandler's start (l2 = 5 mm) the open stub is short of lambda/4 at 5 GHz (5.83 mm on alumina):
    the fundamental leaks to the load. At lambda/4 the stub shorts f0 and 3 f0 and purity rises by > 10 dB.
    Conversion gain stays that of a real doubler (a few dB), and a bias in deep pinch-off kills it."""
    r = simulate_points(spec, [{}, {"ll2": 5.83e-3}, {"VGB": -3.0}])
    gain, purity = r["conv_gain"], r["purity"]
    assert 2.0 < gain[0] < 10.0
    assert purity[0] < 12.0
    assert purity[1] > purity[0] + 10.0
    assert gain[2] < gain[0] - 3.0
    assert np.all(np.isfinite(r["pin_dbm"])) and np.all(r["pin_dbm"] < 10 * np.log10(2.0))  # delivered <= available


def test_twenty_outcome_yield_through_ngspice(spec) -> None:
    """A 20-outcome Monte Carlo yield at a design near the quarter-wave stub: every sample simulates,
    purity varies with the statistical parameters, and the yield is a count of passing outcomes."""
    outcomes = OutcomeSet.draw(spec.model, 20, "mc", 1)
    evaluator = Evaluator(spec, Engine(workers=2))
    x = evaluator.x0.copy()
    x[list(evaluator.names).index("ll2")] = 5.83e-3
    responses = evaluator.responses(x, outcomes)
    assert responses.ok.all()
    purity = responses.values["purity"][0]
    assert np.std(purity) > 0.05
    count = int(passes(responses.errors(evaluator.errors)[0]).sum())
    expected = int(np.sum((responses.values["conv_gain"][0] >= 2.5) & (purity >= 20)))
    assert count == expected


def test_bandler_experiment_twenty_outcome_smoke(tmp_path) -> None:
    """The reproduction script end to end on 20 outcomes through ngspice: minimax, then one-sided l1 with
    IGAT, PAST and FAST on the same outcomes; the JSON keys of the issue, histograms and the markdown table.
    Each method returns the best phase's design on the common outcomes, so neither loses yield."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(root / "experiments" / "bandler_doubler.py"), "--outcomes", "20", "--max-iter", "2",
         "--past-max-iter", "1", "--minimax-iter", "3", "--json", str(out), "--figures", str(tmp_path / "fig"),
         "--markdown", str(tmp_path / "summary.md")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["outcomes"] == 20
    for key in ("yield_start", "yield_igat", "yield_past", "yield_fast"):
        assert 0.0 <= data[key] <= 1.0
        assert data[key] * 20 == pytest.approx(round(data[key] * 20))  # a count of the 20 outcomes
    assert min(data["yield_igat"], data["yield_past"], data["yield_fast"]) >= data["yield_start"]
    # FAST's Jacobian: forward differences on min(N, 2 (d + 1)) = 20 anchors here (d = 34), so n * 20 per gradient
    assert data["sims_fast"] >= 6 * 20 + 20 and data["ngspice_seconds_fast"] > 0
    # PAST's accepted iterations cost (n + 1) * N = 140 samples, IGAT's 20: PAST's start Jacobian alone is 140
    assert data["sims_igat"] >= 140 and data["sims_past"] >= 140
    assert (tmp_path / "fig" / "doubler_conv_gain_hist.png").stat().st_size > 0
    assert (tmp_path / "fig" / "doubler_purity_hist.png").stat().st_size > 0
    assert "| igat |" in (tmp_path / "summary.md").read_text() and "| fast |" in (tmp_path / "summary.md").read_text()
