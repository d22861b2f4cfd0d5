"""The two-stage Miller op-amp (13 design variables, per-device Vth mismatch) through ngspice."""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, simulate_points

from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "opamp2.yaml"
MISMATCH = tuple(f"mm{k}" for k in range(1, 9))


def test_spec_has_many_variables_and_per_device_mismatch():
    spec = load_spec(SPEC)
    assert len(spec.file.design) >= 10
    assert set(MISMATCH) <= set(spec.parameters)
    draws = {d.name: d for d in spec.model.draws}
    mismatch = [d for d in draws.values() if d.mode == "mismatch"]
    assert mismatch and set(mismatch[0].targets) == set(MISMATCH)


def test_nominal_point_is_a_working_amplifier():
    spec = load_spec(SPEC)
    values = simulate_points(spec, [spec.nominal()])
    gain, ugf, pm, power, offset = (values[m][0] for m in ("gain_db", "ugf", "pm", "power", "offset"))
    assert 50 < gain < 90  # dB, open loop
    assert 10e6 < ugf < 1e9  # Hz
    assert 45 < pm < 120  # degrees
    assert 50e-6 < power < 500e-6  # W
    assert abs(offset) < 3e-3  # V: no mismatch, only the systematic offset


def test_input_pair_mismatch_moves_the_offset_and_shrinks_with_area():
    """A 1-sigma Vth deviate on M2 (the non-inverting input) shifts the offset by about its Pelgrom
    step AVT/sqrt(W L); four times the input pair's area halves it."""
    spec = load_spec(SPEC)
    nominal = spec.nominal()
    w, length = nominal["W1"], nominal["L1"]
    step = 2.5e-9 / np.sqrt(w * length)
    points = [{}, {"mm2": 1.0}, {"W1": 4 * w}, {"W1": 4 * w, "mm2": 1.0}]
    offset = simulate_points(spec, points)["offset"]
    shift_small, shift_large = offset[1] - offset[0], offset[3] - offset[2]
    assert abs(shift_small) == pytest.approx(step, rel=0.25)
    assert abs(shift_large) == pytest.approx(abs(shift_small) / 2, rel=0.2)


def test_monte_carlo_through_the_cli(tmp_path):
    out = run_cli("yield", SPEC, "-n", 100, "--out", tmp_path / "out")
    assert "failed simulations: 0" in out
