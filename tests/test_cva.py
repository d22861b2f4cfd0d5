"""The cascode voltage amplifier (CVA) through ngspice agrees with AICircuit's Spectre data.

Reference rows copied from AICircuit's CVA dataset (github.com/AvestimehrResearchGroup/AICircuit,
Dataset/CVA/CVA.csv, MIT licence; Cadence Spectre with the PTM 45 nm LP card, values rounded to 3-4
significant digits). Line numbers count the CSV header as line 1. Columns: Wbias, Rd, Wn1, Wn2,
Bandwidth (Hz), PowerConsumption (W), VoltageGain (dB).

Their bandwidth is not the true -3 dB frequency. Their Ocean script runs ``ac start=0 stop=10G``
with no step, which Spectre sweeps linearly in 50 steps of 200 MHz, and ``bandwidth(... 3 "low")``
interpolates |H| linearly between those points. So the dataset's value is off the true -3 dB
frequency by -4 % to +14 %, depending on where the pole falls between grid points (line 2 below:
94.4 MHz, true 82.6 MHz). The tests compare our gain and power directly, and for bandwidth apply
their procedure to our response (|H| at 0, 200, 400, 600 MHz) before comparing.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_cli, simulate_points

from optiyield import testbench as tb
from optiyield.measure import sampled_bandwidth
from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "cva.yaml"
CIRCUIT = ROOT / "circuits" / "cva"

SPECTRE_ROWS = [  # (CSV line, Wbias, Rd, Wn1, Wn2, bandwidth, power, gain_db)
    (2, 4.5e-06, 2000, 6e-06, 5e-06, 94400000.0, 0.000718, 15.18),
    (578, 4.5e-06, 1000, 6e-06, 5e-06, 157000000.0, 0.000724, 9.62),
    (8002, 7e-06, 700, 1.2e-05, 8e-06, 237000000.0, 0.00124, 11.53),
    (12002, 8e-06, 1700, 1.6e-05, 9e-06, 372000000.0, 0.00137, 5.02),
]
SPECTRE_STEP = 200e6  # Hz, their linear ac grid: 0 to 10 GHz in 50 steps


def spectre_bandwidth(gain_db: np.ndarray, grid_db: np.ndarray) -> np.ndarray:
    """AICircuit's bandwidth: the 3.000 dB point read off their 200 MHz linear grid (library function)."""
    bandwidth = sampled_bandwidth(gain_db, grid_db, SPECTRE_STEP)
    assert np.isfinite(bandwidth).all(), "bandwidth beyond the emulated grid"
    return bandwidth


@pytest.fixture(scope="module")
def simulated():
    spec = load_spec(SPEC)
    grid = {f"g{k}": {"fn": "gain_db_at", "out": "voutp", "in": "vinp", "f": k * SPECTRE_STEP} for k in (1, 2, 3)}
    bench = tb.build_testbench(
        tb.TestbenchFile.model_validate(
            {"name": "cva_spectre_grid", "netlist": "netlist.cir", "measures": {**yaml_measures(), **grid}}
        ),
        CIRCUIT,
        CIRCUIT / "testbench.yaml",
    )
    rows = np.array(SPECTRE_ROWS)
    points = [spec.nominal()] + [{"Wbias": r[1], "Rd": r[2], "Wn1": r[3], "Wn2": r[4]} for r in rows]
    return rows, simulate_points(spec, points, bench.job(spec.parameters))


def yaml_measures() -> dict:
    return yaml.safe_load((CIRCUIT / "testbench.yaml").read_text())["measures"]


def test_nominal_point_is_physical(simulated):
    _, values = simulated
    gain, bw, power, ugf = (values[m][0] for m in ("gain_db", "bw", "power", "ugf"))
    assert 10 < gain < 20  # dB, single-ended output over one input
    assert 50e6 < bw < 600e6  # Hz: Rd (1.2 kOhm) with the 1 pF load gives about 130 MHz
    assert 0.3e-3 < power < 2e-3  # W, 1.2 V supply
    # one dominant output pole: f_u = f_3dB * sqrt(A0^2 - 1)
    a0 = 10 ** (gain / 20)
    np.testing.assert_allclose(ugf, bw * np.sqrt(a0**2 - 1), rtol=0.03)


def test_gain_agrees_with_spectre(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["gain_db"][1:], rows[:, 7], atol=0.02)


def test_power_within_one_percent(simulated):
    rows, values = simulated
    np.testing.assert_allclose(values["power"][1:], rows[:, 6], rtol=0.01)


def test_bandwidth_by_their_procedure_within_one_and_a_half_percent(simulated):
    rows, values = simulated
    grid = np.column_stack([values[f"g{k}"][1:] for k in (1, 2, 3)])
    np.testing.assert_allclose(spectre_bandwidth(values["gain_db"][1:], grid), rows[:, 5], rtol=0.015)


def test_their_grid_explains_the_bandwidth_difference(simulated):
    """On line 2 the true -3 dB frequency is 12 % below their value; their grid accounts for it."""
    rows, values = simulated
    assert values["bw"][1] < 0.9 * rows[0, 5]


def test_spec_validates():
    spec = load_spec(SPEC)
    assert set(spec.parameters) >= {"Wbias", "Rd", "Wn1", "Wn2", "dvth", "mu"}


def test_monte_carlo_through_the_cli(tmp_path):
    assert "failed simulations: 0" in run_cli("yield", SPEC, "-n", 50, "--out", tmp_path / "out")
