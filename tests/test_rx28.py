"""The 28 GHz receiver system (LNA -> Gilbert mixer -> RC low-pass -> IF amplifier -> 50 ohm) through ngspice:
physical nominal figures, dc power against the bias, the spec, and a Monte Carlo through the CLI.

There is no AICircuit dataset for this system, so the checks are physical: conversion gain above 0 dB at
the 100 MHz IF and larger on the IF chain's low-frequency plateau; a receiver noise figure above the LNA's
own (the mixer and IF amplifier add noise) and, SSB with an unfiltered image band, 2-5 dB above the DSB
figure (10 log10(1 + |H(27.8 GHz)/H(28 GHz)|^2), measured 3.5 dB); a passive RF port; the
ideal-current-source biased blocks drawing VDD times their bias current (mixer within 10 %: part of its tail
current comes from the forward-biased source junctions at -0.6 V; measured 3.3 % low). The quasi-static
conversion gain was validated once against a direct 51 ns transient (docs/circuits.md, RX28).
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, simulate_points

from optiyield.spec import load_spec

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "rx28.yaml"


@pytest.fixture(scope="module")
def simulated():
    spec = load_spec(SPEC)
    return simulate_points(spec, [{}, {"Itail": 2.2e-3, "Ibias_Amp": 1.8e-3}])


def test_nominal_point_is_physical(simulated):
    v = simulated
    assert v["gain"][0] > 0                                        # dB at the 100 MHz IF, nominal design
    assert np.isfinite(v["gain"]).all()                            # (the lower-bias point loses ~5 dB)
    assert (v["gain_lowif"] > v["gain"]).all()                     # the RC low-pass (about 21 MHz) rolls off
    assert ((v["nf_lna"] > 0) & (v["nf_lna"] < 10)).all()          # dB, F > 1
    assert (v["nf"] > v["nf_lna"] + 0.01).all()                    # mixer + IF amplifier add noise
    assert ((v["nf"] - v["nf_dsb"] > 2) & (v["nf"] - v["nf_dsb"] < 5)).all()   # image band (3 dB if flat)
    assert (v["nf"] < 15).all()
    assert (v["s11"] < 0).all()                                    # passive RF port
    assert ((v["lna_gain"] > -10) & (v["lna_gain"] < 30)).all()    # dB
    assert ((v["mix_gain"] > -20) & (v["mix_gain"] < 20)).all()    # dB, gates -> mixer outputs
    assert ((v["amp_gain"] > -30) & (v["amp_gain"] < 30)).all()    # dB


def test_dc_power_is_consistent_with_the_bias(simulated):
    v = simulated
    itail = np.array([2.5e-3, 2.2e-3])
    ibias = np.array([2e-3, 1.8e-3])
    np.testing.assert_allclose(v["power_amp"], 1.2 * ibias, rtol=1e-3)     # all of Ibias from VDDA
    np.testing.assert_allclose(v["power_mix"], 1.2 * itail, rtol=0.1)
    np.testing.assert_allclose(v["power"], v["power_lna"] + v["power_mix"] + v["power_amp"], rtol=1e-9)
    assert ((v["power_lna"] > 5e-3) & (v["power_lna"] < 40e-3)).all()


def test_spec_validates():
    assert "one process per sample" in run_cli("validate", SPEC)


def test_monte_carlo_through_cli(tmp_path):
    """50 samples through the CLI (in-process: a fresh interpreter's imports cost 5-25 s on the loaded machine)."""
    assert "failed simulations: 0" in run_cli("yield", SPEC, "-n", 50, "--out", tmp_path / "out")
    assert (tmp_path / "out" / "summary.json").exists()
