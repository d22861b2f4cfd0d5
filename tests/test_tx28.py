"""The 28 GHz transmitter system (VCO -> buffers -> PA -> 50 ohm) through ngspice: physical nominal figures,
the Hann-windowed oscillator measures on synthetic waves, the spec, and a Monte Carlo through the CLI.

There is no AICircuit dataset for this system, so the checks are physical: the oscillation frequency is
near 28 GHz and within 10 % of the loaded tank's LC resonance 1/(2 pi sqrt(L C_total)) (from the .ac of the
same deck, measured 4 % apart at the nominal point); efficiencies are between 0 and 100 %; the VCO's dc
power is bounded by its bias mirror.
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, simulate_points

from optiyield.measure import hann, tran
from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "tx28.yaml"


@pytest.fixture(scope="module")
def simulated():
    spec = load_spec(SPEC)
    return simulate_points(spec, [{}, {"Wvar": 3.4e-6, "Iref": 450e-6}])


def test_nominal_point_is_physical(simulated):
    v = simulated
    assert ((v["fosc"] > 26e9) & (v["fosc"] < 31e9)).all()                  # near 28 GHz
    assert (np.abs(v["fosc"] / v["f_lc"] - 1) < 0.10).all()                 # the LC tank sets it
    assert ((v["tuning"] > 0.5e9) & (v["tuning"] < 0.3 * v["fosc"])).all()  # varactor tuning, Hz
    assert ((v["pout"] > -10) & (v["pout"] < 20)).all()                     # dBm into 50 ohm
    assert ((v["de"] > 0) & (v["de"] < 100)).all()
    assert ((v["pae"] > 0) & (v["pae"] < v["de"])).all()                    # the PA input power is positive
    assert ((v["pa_gain"] > 0) & (v["pa_gain"] < 40)).all()                 # dB
    assert (v["vswing"] > 0).all()
    # 50 ohm output: peak-to-peak swing and the fundamental's power agree within harmonic content
    p_swing = (v["vswing"] / 2) ** 2 / (2 * 50)
    assert (np.abs(10 * np.log10(p_swing / 1e-3) - v["pout"]) < 1.5).all()


def test_dc_power_is_consistent_with_the_bias(simulated):
    """VCO: Iref plus the mirrored tail (25 Wn6/Wn5) and buffer tails (2 x 10 Wbias/Wn5) at most (the tail
    device is in triode at the operating point, so less); PA supply: the total minus the VCO."""
    v = simulated
    iref = np.array([500e-6, 450e-6])
    bound = 1.2 * iref * (1 + 25 * 8 / 6 + 2 * 10 * 5 / 6)
    assert ((v["power_vco"] > 0.3 * bound) & (v["power_vco"] < 1.05 * bound)).all()
    assert ((v["power"] > v["power_vco"]) & (v["power"] < 0.1)).all()
    assert ((v["pdc_pa"] > 1e-3) & (v["pdc_pa"] < 0.05)).all()             # average PA supply power, W


def test_vco_phase_noise_is_in_a_sensible_range(simulated):
    """Hajimiri-Lee ISF phase noise at 1 MHz offset (tank and pair thermal noise only, docs/circuits.md VCO):
    a 28 GHz LC VCO with a tank Q of about 10 sits between -130 and -60 dBc/Hz (measured -113 dBc/Hz at both
    points). A NaN (no steady oscillation in the window, or a bad sense source) fails."""
    pn = simulated["pn"]
    assert ((pn > -130) & (pn < -60)).all()                                  # dBc/Hz


def test_hann_measures_on_synthetic_waves():
    t = np.linspace(0, 1e-9, 20001)
    f = np.array([28.3e9, 30.1e9])[:, None]
    v = 0.8 * np.cos(2 * np.pi * f * t + 0.3) + 0.15 * np.cos(4 * np.pi * f * t) + 0.4
    i = 0.01 * np.cos(2 * np.pi * f * t + 0.3 - 0.5)
    np.testing.assert_allclose(tran.oscillation_frequency(t, v, start=0.3e-9), f[:, 0], rtol=1e-4)
    np.testing.assert_allclose(hann.osc_harmonic_power(t, v, 50, start=0.3e-9), 0.8 ** 2 / 100, rtol=1e-4)
    np.testing.assert_allclose(hann.osc_harmonic_power(t, v, 50, harmonic=2, start=0.3e-9), 0.15 ** 2 / 100,
                               rtol=1e-3)
    np.testing.assert_allclose(hann.osc_delivered_power(t, v, i, start=0.3e-9), 0.8 * 0.01 * np.cos(0.5) / 2,
                               rtol=1e-4)
    np.testing.assert_allclose(hann.hann_average(t, v * i, start=0.3e-9), 0.8 * 0.01 * np.cos(0.5) / 2 + 0.0,
                               rtol=1e-3, atol=1e-7)
    # a 100 MHz component fitted from a tenth of its period under strong 56 GHz products
    w = 3e-4 * np.cos(2 * np.pi * 1e8 * t + 0.7) + 1e-4 + 1e-3 * np.cos(2 * np.pi * 55.9e9 * t)
    np.testing.assert_allclose(hann.fit_amplitude(t, w, 1e8, 10), 3e-4, rtol=3e-3)
    assert np.isnan(hann.fit_amplitude(t, w, 1e8, 1)).all()                 # window longer than the run


def test_spec_validates():
    assert "sweep" in run_cli("validate", SPEC)


def test_monte_carlo_through_cli(tmp_path):
    """50 samples through the CLI (in-process: a fresh interpreter's imports cost 5-25 s on the loaded machine)."""
    assert "failed simulations: 0" in run_cli("yield", SPEC, "-n", 50, "--out", tmp_path / "out")
    assert (tmp_path / "out" / "summary.json").exists()
