"""Analytic checks of the ISF phase-noise functions (optiyield/measure/phase_noise.py) on synthetic
waveforms: a sinusoid's ISF, the pair-noise weight, the branch L and R, and the ideal RLC tank, whose
ISF phase noise must equal Leeson's textbook value with F = 1."""

import numpy as np
import pytest

from optiyield.measure import phase_noise as pn

F0 = 3.5e9


def _sine(amplitude: float = 2.0, periods: int = 30, points: int = 200, harmonic2: float = 0.0):
    t = np.arange(periods * points) / (points * F0)
    x = 2 * np.pi * F0 * t
    return t, amplitude * np.cos(x) + harmonic2 * np.cos(2 * x), x


def test_sinusoid_isf_is_minus_sine_and_rms2_half():
    t, v, _ = _sine()
    f0, period, _ = pn.steady_period(t, v[None, :])
    assert f0[0] == pytest.approx(F0, rel=1e-6)
    gamma = pn.isf(period)
    x = 2 * np.pi * np.arange(period.shape[1]) / period.shape[1]   # phase 0 = rising crossing of cos
    np.testing.assert_allclose(gamma[0], np.cos(x), atol=2e-3)     # -sin of (x - pi/2)
    assert pn.isf_rms2(period)[0] == pytest.approx(0.5, abs=1e-3)
    assert pn.tail_isf_rms2(period)[0] == pytest.approx(1 / 8, abs=1e-3)


def test_distorted_waveform_changes_isf():
    _, v, _ = _sine(harmonic2=0.6)   # strong 2nd harmonic: not a sinusoid any more
    t = np.arange(v.size) / (200 * F0)
    _, period, _ = pn.steady_period(t, v[None, :])
    assert abs(pn.isf_rms2(period)[0] - 0.5) > 0.02


def test_pair_weight_is_rael_abidi_for_a_sinusoid():
    amplitude = 1.7
    t, v, _ = _sine(amplitude)
    _, period, _ = pn.steady_period(t, v[None, :])
    assert pn.pair_noise_weight(period)[0] == pytest.approx(1 / (np.pi * amplitude), rel=2e-3)


def test_branch_inductance_and_resistance():
    t, v, x = _sine(1.2)
    inductance, resistance = 3e-9, 2e3
    i = v / resistance + 1.2 * np.sin(x) / (2 * np.pi * F0 * inductance)   # current into L || R
    f0, vp, ip = pn.steady_period(t, v[None, :], extra=i[None, :])
    l_est, r_est = pn.lc_tank_from_branch(f0, vp, ip)
    assert l_est[0] == pytest.approx(inductance, rel=1e-3)
    assert r_est[0] == pytest.approx(resistance, rel=1e-3)


def test_ideal_tank_equals_leeson():
    """A symmetric LC oscillator with sinusoidal differential amplitude A, per-side L and Rp, and only
    the tank's thermal noise: the ISF result must be Leeson's 2kT/P_s·(f0/(2·Q·Δf))², with the
    differential tank R_d = 2Rp, L_d = 2L, Q = R_d/(ω0·L_d) and P_s = A²/(2·R_d)."""
    amplitude, inductance, rp, i_tail = 2.4, 4e-9, 1.5e3, 3e-3
    t, vd, x = _sine(amplitude, periods=40)
    vb = -vd / 2                                          # p-side branch voltage (supply - v(p))
    # current of the inductor: (1/L)·∫vb dt with vb = -(A/2)cos x  ->  -(A/2)/(ωL)·sin x
    ib = vb / rp - (amplitude / 2) * np.sin(x) / (2 * np.pi * F0 * inductance) + i_tail / 2
    res = pn.lc_phase_noise(t, vd[None, :], ib[None, :], offset=1e6, gamma=0.0)
    assert res["l"][0] == pytest.approx(inductance, rel=1e-3)
    assert res["r"][0] == pytest.approx(rp, rel=1e-3)
    assert res["i_tail"][0] == pytest.approx(i_tail, rel=1e-6)
    r_d, l_d, w0 = 2 * rp, 2 * inductance, 2 * np.pi * F0
    leeson = pn.leeson_dbc(F0, 1e6, r_d / (w0 * l_d), amplitude**2 / (2 * r_d))
    assert res["pn"][0] == pytest.approx(float(leeson), abs=0.02)
    # textbook number for these values: kT/(R_d·C_d²·A²·Δω²)
    c_d = 1 / (w0**2 * l_d)
    kt = pn.BOLTZMANN * pn.ROOM_TEMPERATURE
    textbook = 10 * np.log10(kt / (r_d * c_d**2 * amplitude**2 * (2 * np.pi * 1e6) ** 2))
    assert float(leeson) == pytest.approx(textbook, abs=1e-9)
    # the pair's channel noise adds 4kT·γ·I/(π·A) (Rael-Abidi) and 20 dB/decade of offset holds
    with_pair = pn.lc_phase_noise(t, vd[None, :], ib[None, :], offset=1e6, gamma=1.0)
    ratio = (with_pair["pair"] / with_pair["tank"])[0]
    assert ratio == pytest.approx(i_tail / (np.pi * amplitude) / (0.5 / r_d), rel=5e-3)
    at_100k = pn.lc_phase_noise(t, vd[None, :], ib[None, :], offset=1e5, gamma=1.0)["pn"][0]
    assert at_100k - with_pair["pn"][0] == pytest.approx(20.0, abs=1e-9)


def test_no_oscillation_gives_nan():
    t = np.linspace(0, 5e-9, 2000)
    flat = np.full((1, t.size), 1.6)
    assert np.isnan(pn.phase_noise_dbc(t, flat, flat))[0]
    assert np.isnan(pn.oscillator_power(t, flat, 50.0))[0]


def test_oscillator_power_of_sinusoid():
    t, v, _ = _sine(2.0)
    assert pn.oscillator_power(t, v[None, :], 50.0)[0] == pytest.approx(4.0 / 100, rel=1e-3)   # linear resampling


def test_lc_tail_current_is_twice_the_branch_dc():
    t, vd, x = _sine(2.0)
    ib = 1.7e-3 + 0.4e-3 * np.sin(x)                # branch dc = I_tail/2 plus the tank's ac current
    assert pn.lc_tail_current(t, vd[None, :], ib[None, :])[0] == pytest.approx(3.4e-3, rel=1e-6)
    flat = np.full((1, t.size), 1.6)
    assert np.isnan(pn.lc_tail_current(t, flat, flat))[0]


def test_fm_noise_of_a_pushed_oscillator():
    """Narrowband FM: a tone i(t) = a·cos(2π·fm·t) pushes the frequency by K·a, so the phase deviation
    is β = K·a/fm and each sideband is (β/2)² of the carrier. A density S_x (one-sided) holds the power
    a²/2 = S_x·1 Hz, so L = (K²·S_x/fm²)/2 per Hz: the 1/f² slope and the K² scaling follow."""
    k, s, fm = 30e9, 3e-19, 1e6                      # 30 MHz/mA, A²/Hz, Hz
    beta = k * np.sqrt(2 * s) / fm                   # amplitude a = sqrt(2·S_x·1 Hz)
    assert pn.fm_noise_dbc(k, s, fm) == pytest.approx(10 * np.log10((beta / 2) ** 2), abs=1e-9)
    assert pn.fm_noise_dbc(k, s, 1e5) - pn.fm_noise_dbc(k, s, 1e6) == pytest.approx(20.0, abs=1e-9)
    assert pn.fm_noise_dbc(-2 * k, s, fm) - pn.fm_noise_dbc(k, s, fm) == pytest.approx(20 * np.log10(2), abs=1e-9)
