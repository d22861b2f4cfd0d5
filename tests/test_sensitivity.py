"""Sensitivity ranking through ngspice on the CSVA: one batched call, physically right signs."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from optiyield.cli import app
from optiyield.sensitivity import perturbations, sensitivity
from optiyield.sim.engine import Engine
from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def csva():
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    return spec, sensitivity(spec, Engine(workers=2))


def effect(result, measure, parameter, kind):  # noqa: ANN001, ANN201
    (entry,) = [e for e in result["spec"][measure] if e["parameter"] == parameter and e["kind"] == kind]
    return entry


def test_signs_match_circuit_theory(csva):
    _, result = csva
    assert effect(result, "power", "dvth", "statistical")["effect"] < 0  # higher Vth, less current
    assert effect(result, "gain_db", "Rd", "design")["effect"] > 0  # gain ∝ gm·Rd
    assert effect(result, "bw", "Rd", "design")["effect"] < 0  # pole at 1/(2π Rd C)
    assert effect(result, "power", "VDD", "statistical")["effect"] > 0


def test_one_batched_call_and_sorted_rankings(csva):
    spec, result = csva
    directions = perturbations(spec, spec.design_start)
    assert result["simulations"] == 2 * len(directions) + 1 == 2 * (4 + 5) + 1
    for entries in result["spec"].values():
        magnitudes = [abs(e["normalized"]) for e in entries]
        assert magnitudes == sorted(magnitudes, reverse=True)


def test_design_effect_equals_direct_central_difference(csva):
    spec, result = csva
    engine = Engine(workers=1)
    step = 0.01 * (3000 - 500)
    nominal = spec.nominal()
    rows = []
    for sign in (1, -1):
        point = dict(nominal, Rd=nominal["Rd"] + sign * step)
        rows.append([point[p] for p in spec.parameters])
    direct = engine.run(spec.testbench.job(spec.parameters), np.array(rows)).values["bw"]
    assert effect(result, "bw", "Rd", "design")["effect"] == pytest.approx((direct[0] - direct[1]) / 2, rel=1e-9)
    assert effect(result, "bw", "Rd", "design")["normalized"] == pytest.approx(
        effect(result, "bw", "Rd", "design")["effect"] / 230e6)


def test_cli_writes_json(tmp_path):
    result = CliRunner().invoke(app, ["sensitivity", str(ROOT / "specs" / "csva.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "sensitivity.json").read_text())
    assert set(data["spec"]) == {"gain_db", "bw", "power"} and "dB" in result.output
    assert "mdB" not in result.output
