"""The common-source amplifier through ngspice agrees with AICircuit's Spectre data.

Reference rows copied from AICircuit's CSVA dataset (github.com/AvestimehrResearchGroup/AICircuit,
MIT licence; Cadence Spectre with the PTM 45 nm LP card, values rounded to 3-4 significant digits).
Line numbers count the CSV header as line 1. Columns: VDD, Vgate, Wn, Rd, Bandwidth (Hz),
PowerConsumption (W), VoltageGain (dB).
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import simulate_points

from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]

SPECTRE_ROWS = [  # (CSV line, VDD, Vgate, W, Rd, bandwidth, power, gain_db)
    (2, 1.2, 0.8, 5e-06, 1000, 217000000.0, 0.000869, 10.46),
    (507, 1.2, 0.65, 1e-05, 800, 261000000.0, 0.000577, 10.83),
    (4025, 1.5, 0.75, 6e-06, 2100, 136000000.0, 0.000832, 14.66),
    (7803, 1.8, 0.9, 4e-06, 1600, 177000000.0, 0.00164, 10.76),
]


@pytest.fixture(scope="module")
def simulated():
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    rows = np.array(SPECTRE_ROWS)
    points = [{"VDD": r[1], "Vgate": r[2], "W": r[3], "Rd": r[4]} for r in rows]
    return rows, simulate_points(spec, points)


def test_bandwidth_within_one_percent(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["bw"], rows[:, 5], rtol=0.01)


def test_power_within_one_percent(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["power"], rows[:, 6], rtol=0.01)


def test_gain_within_rounding(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["gain_db"], rows[:, 7], atol=0.01)


def test_nominal_point_is_physical(simulated):
    _, values = simulated
    """A single-pole RC load: |H| = A0/sqrt(1+(f/f3)^2), so the unity-gain frequency is f3·sqrt(A0²−1)."""
    a0 = 10 ** (values["gain_db"] / 20)
    assert (a0 > 1).all()
    np.testing.assert_allclose(values["ugf"], values["bw"] * np.sqrt(a0**2 - 1), rtol=0.02)
