"""The two-stage voltage amplifier (TSVA) through ngspice agrees with AICircuit's Spectre data.

Reference rows copied from AICircuit's TSVA dataset (github.com/AvestimehrResearchGroup/AICircuit,
Dataset/TSVA/TSVA.csv, MIT licence; Cadence Spectre with the PTM 45 nm LP card, values rounded to 3-4
significant digits). Line numbers count the CSV header as line 1. Columns: C1, WNOUT, WPOUT, WCS, WN1,
WP1, Bandwidth (Hz), PowerConsumption (W), VoltageGain (dB). Line 2 is a high-gain row (first stage
balanced), line 10857 a high-power one (wide output PMOS).
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, simulate_points

from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "tsva.yaml"
NAMES = ("C1", "WNOUT", "WPOUT", "WCS", "WN1", "WP1")

SPECTRE_ROWS = [  # (CSV line, C1, WNOUT, WPOUT, WCS, WN1, WP1, bandwidth, power, gain_db)
    (2, 2e-13, 1.5e-06, 1.5e-06, 6e-06, 3e-06, 3e-06, 12300000.0, 0.0366, 33.41),
    (8400, 1.5e-13, 4.5e-06, 3.5e-06, 4e-06, 3.5e-06, 4.5e-06, 182000000.0, 0.0561, 20.07),
    (10857, 1.5e-13, 1.5e-06, 4.5e-06, 5e-06, 3.5e-06, 2.5e-06, 18500000.0, 0.122, 20.19),
    (18819, 2.5e-13, 3.5e-06, 3.5e-06, 5.5e-06, 3.75e-06, 4.25e-06, 116000000.0, 0.0467, 18.08),
]


@pytest.fixture(scope="module")
def simulated():
    spec = load_spec(SPEC)
    rows = np.array(SPECTRE_ROWS)
    points = [spec.nominal()] + [dict(zip(NAMES, r[1:7], strict=True)) for r in rows]
    return rows, simulate_points(spec, points)


def test_nominal_point_is_physical(simulated):
    _, values = simulated
    gain, bw, power, ugf = (values[m][0] for m in ("gain_db", "bw", "power", "ugf"))
    assert 10 < gain < 50  # dB, differential
    assert 1e6 < bw < 1e9  # Hz
    assert 10e-3 < power < 0.2  # W: 3.3 V supply, tens of mA
    assert bw < ugf < 20e9  # the gain crosses 0 dB above the -3 dB point


def test_gain_agrees_with_spectre(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["gain_db"][1:], rows[:, 9], atol=0.05)


def test_power_within_one_percent(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["power"][1:], rows[:, 8], rtol=0.01)


def test_bandwidth_within_one_percent(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["bw"][1:], rows[:, 7], rtol=0.01)


def test_spec_validates():
    spec = load_spec(SPEC)
    assert set(spec.parameters) >= {*NAMES, "dvth", "mu"}


def test_monte_carlo_through_the_cli(tmp_path):
    assert "failed simulations: 0" in run_cli("yield", SPEC, "-n", 50, "--out", tmp_path / "out")
