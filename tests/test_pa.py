"""The 28 GHz PA testbench through ngspice: physical nominal figures, agreement with AICircuit's Spectre
data, the spec, and a Monte Carlo through the command line.

Reference rows copied from AICircuit's PA dataset (github.com/AvestimehrResearchGroup/AICircuit, MIT
licence; Cadence Spectre sp analysis and harmonic balance swept in pin from -30 to 10 dBm in 1 dB steps,
PTM 45 nm LP card, values rounded to 3-4 significant digits). Line numbers count the CSV header as line
1. Columns: L1p, L1s, L3p, L3s, Lm (H), Wn1, Wn2 (m), S11, S22 (dB), LargeSignalPowerGain (dB), PAE (%),
DrainEfficiency (%), PSAT (dBm), PowerConsumption (W).

Line 2 is their default design (the spec's start point). Its PAE, drain efficiency and PSAT are those of
a sweep that stopped near pin = -9 dBm (their harmonic balance; see docs/circuits.md), so only its S11,
S22, gain and power are compared. The other rows are compared on every metric.
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, simulate_points

from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "pa_28ghz.yaml"

SPECTRE_ROWS = [  # (CSV line, L1p, L1s, L3p, L3s, Lm, Wn1, Wn2, S11, S22, gain, PAE, DE, PSAT, power)
    (2, 3.5e-10, 8e-11, 4.75e-10, 6e-11, 1.75e-10, 2.2e-05, 3.2e-05, -27.23, -31.08, 14.94, 10.62, 11.47, 2.285,
     0.0146),
    (1525, 3.5e-10, 1.2e-10, 7.13e-10, 9e-11, 8.75e-11, 2.8e-05, 2.8e-05, -9.327, -4.736, 15.72, 12.42, 15.18, 4.311,
     0.0156),
    (4069, 5.25e-10, 8e-11, 7.13e-10, 6e-11, 2.63e-10, 1.6e-05, 2.4e-05, -0.442, -11.2, 19.74, 17.09, 19.01, 3.447,
     0.0108),
    (2422, 1.75e-10, 4e-11, 4.75e-10, 9e-11, 2.63e-10, 2.2e-05, 2.4e-05, -0.166, -6.692, 18.04, 11.82, 14.03, 2.892,
     0.0127),
]
DESIGN = ("L1p", "L1s", "L3p", "L3s", "Lm", "Wn1", "Wn2")


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def simulated(spec):
    rows = np.array(SPECTRE_ROWS)
    return rows, simulate_points(spec, [dict(zip(DESIGN, r[1:8], strict=True)) for r in rows])


def test_nominal_point_is_physical(simulated):
    _, v = simulated
    assert (v["s11"] < 0).all() and (v["s22"] < 0).all()           # passive ports: |S| < 1
    assert ((v["power"] > 5e-3) & (v["power"] < 30e-3)).all()       # W, 1.2 V supply
    assert ((v["gain"] > 5) & (v["gain"] < 30)).all()                # dB: it amplifies
    assert ((v["psat"] > -5) & (v["psat"] < 10)).all()               # dBm
    # PAE < drain efficiency < 100 %: the input power counts against PAE, and Pout < Pdc
    assert ((v["pae"] > 0) & (v["pae"] < v["de"]) & (v["de"] < 100)).all()
    # Pout(sat) < DE * Pdc is impossible to beat: max Pout <= (max DE) * (dc power at that drive); the
    # large-signal dc power stays within 30 % of the operating point here
    assert (10 ** (v["psat"] / 10) * 1e-3 <= v["de"] / 100 * v["power"] * 1.3).all()


def test_small_signal_gain_and_power_agree_with_spectre(simulated):
    """S11/S22 within 0.1 dB (measured <= 0.03 dB), large-signal gain within 0.15 dB (measured 0.10 dB,
    of which up to 0.06 dB is the 1 ps transient step), power within 1 % (2-3 significant digits)."""
    rows, v = simulated
    np.testing.assert_allclose(v["s11"], rows[:, 8], atol=0.1)
    np.testing.assert_allclose(v["s22"], rows[:, 9], atol=0.1)
    np.testing.assert_allclose(v["gain"], rows[:, 10], atol=0.15)
    np.testing.assert_allclose(v["power"], rows[:, 14], rtol=1e-2)


def test_large_signal_figures_agree_with_spectre(simulated):
    """Rows 1525, 4069, 2422 (not line 2, see the module docstring). Drain efficiency within 2 % (measured
    1.1 %) and PSAT within 0.1 dB (measured 0.04 dB): both peak at the top of the sweep, which our 7-point
    grid contains. PAE peaks anywhere from -14 to +8 dBm; on 7 points it is at most their 1 dB-grid value
    plus 1.5 % and within 6 % below it (measured: see docs/circuits.md)."""
    rows, v = simulated
    rows, pae, de, psat = rows[1:], v["pae"][1:], v["de"][1:], v["psat"][1:]
    np.testing.assert_allclose(de, rows[:, 12], rtol=2e-2)
    np.testing.assert_allclose(psat, rows[:, 13], atol=0.1)
    assert (pae <= rows[:, 11] * 1.015).all()
    assert (pae >= rows[:, 11] * 0.94).all()


def test_spec_validates():
    assert "sweep of pin over 7 points" in run_cli("validate", SPEC)


def test_monte_carlo_through_cli(tmp_path):
    assert "failed simulations: 0" in run_cli("yield", SPEC, "-n", 50, "--out", tmp_path / "out")
