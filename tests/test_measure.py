"""Tests for optiyield.measure: analytic transfer functions with known figures of merit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from optiyield.measure import ac as ac_module
from optiyield.measure import (
    bandwidth_3db,
    dc_power,
    gain_db_at,
    lf_gain_db,
    peak_frequency,
    peak_gain_db,
    phase_margin,
    total_dc_power,
    unity_gain_frequency,
)

#: 1 Hz .. 10 GHz, 20 points per decade (201 points), like ``.ac dec 20 1 10G``.
FREQ = np.logspace(0.0, 10.0, 201)

AC_FUNCTIONS: list[Callable[..., object]] = [
    lf_gain_db,
    bandwidth_3db,
    unity_gain_frequency,
    phase_margin,
    peak_gain_db,
    peak_frequency,
    lambda f, h: gain_db_at(f, h, 1e3),
]


def single_pole(f: np.ndarray, a0: float, fp: float) -> np.ndarray:
    """A0 / (1 + j f/fp)."""
    return a0 / (1.0 + 1j * f / fp)


def two_pole(f: np.ndarray, a0: float, p1: float, p2: float) -> np.ndarray:
    """A0 / ((1 + j f/p1)(1 + j f/p2))."""
    return a0 / ((1.0 + 1j * f / p1) * (1.0 + 1j * f / p2))


def resonant_lowpass(f: np.ndarray, f0: float, q: float) -> np.ndarray:
    """Second-order low-pass 1 / (1 - (f/f0)^2 + j f/(Q f0))."""
    u = f / f0
    return 1.0 / (1.0 - u**2 + 1j * u / q)


def two_pole_exact(a0: float, p1: float, p2: float) -> tuple[float, float]:
    """(unity-gain frequency, phase margin in degrees) of the two-pole response, solved numerically."""
    fu = brentq(lambda x: abs(two_pole(np.array(x), a0, p1, p2)) - 1.0, 1e-3, 1e12, xtol=1e-6, rtol=1e-14)
    return fu, 180.0 - np.degrees(np.arctan(fu / p1) + np.arctan(fu / p2))


def reference_phase_margin(freq: np.ndarray, h: np.ndarray) -> float:
    """Slow, per-sample phase margin with np.unwrap, implementing the documented convention."""
    mag = np.abs(h)
    db = 20.0 * np.log10(mag)
    phase = np.degrees(np.unwrap(np.angle(h)))
    for i in range(1, len(freq)):
        if mag[i - 1] > 1.0 >= mag[i]:
            t = (0.0 - db[i - 1]) / (db[i] - db[i - 1])
            phase_u = phase[i - 1] + t * (phase[i] - phase[i - 1])
            phase_dc = 180.0 if phase[0] >= 45.0 else (-180.0 if phase[0] < -135.0 else 0.0)
            return 180.0 + phase_u - phase_dc
    return float("nan")


# --------------------------------------------------------------------------- single pole


def test_single_pole_figures() -> None:
    a0, fp = 1e4, 1e3
    h = single_pole(FREQ, a0, fp)[np.newaxis, :]
    fu_exact = fp * np.sqrt(a0**2 - 1.0)
    pm_exact = 180.0 - np.degrees(np.arctan(fu_exact / fp))

    assert lf_gain_db(FREQ, h)[0] == pytest.approx(20.0 * np.log10(a0), abs=1e-4)
    assert bandwidth_3db(FREQ, h)[0] == pytest.approx(fp, rel=5e-3)
    assert unity_gain_frequency(FREQ, h)[0] == pytest.approx(a0 * fp, rel=5e-3)
    assert unity_gain_frequency(FREQ, h)[0] == pytest.approx(fu_exact, rel=5e-3)
    assert phase_margin(FREQ, h)[0] == pytest.approx(90.0, abs=0.1)
    assert phase_margin(FREQ, h)[0] == pytest.approx(pm_exact, abs=0.02)
    assert peak_gain_db(FREQ, h)[0] == pytest.approx(lf_gain_db(FREQ, h)[0])
    assert peak_frequency(FREQ, h)[0] == FREQ[0]
    assert bandwidth_3db(FREQ, h, ref="peak")[0] == pytest.approx(fp, rel=5e-3)


def test_single_pole_results_are_float_arrays_of_shape_k() -> None:
    h = np.stack([single_pole(FREQ, a0, 1e3) for a0 in (10.0, 100.0, 1000.0)])
    for fn in AC_FUNCTIONS:
        out = fn(FREQ, h)
        assert isinstance(out, np.ndarray)
        assert out.shape == (3,)
        assert out.dtype == np.float64
    np.testing.assert_allclose(lf_gain_db(FREQ, h), [20.0, 40.0, 60.0], atol=1e-4)


# --------------------------------------------------------------------------- two poles, phase margin


@pytest.mark.parametrize("p2", [2e5, 1e6, 3e6, 1e7, 4e7])
def test_two_pole_phase_margin_matches_analytic(p2: float) -> None:
    a0, p1 = 1e4, 1e3
    fu, pm = two_pole_exact(a0, p1, p2)
    h = two_pole(FREQ, a0, p1, p2)[np.newaxis, :]
    assert unity_gain_frequency(FREQ, h)[0] == pytest.approx(fu, rel=5e-3)
    assert phase_margin(FREQ, h)[0] == pytest.approx(pm, abs=0.2)


@pytest.mark.parametrize("p2", [2e5, 3e6, 4e7])
def test_inverting_amplifier_gives_same_phase_margin(p2: float) -> None:
    a0, p1 = 1e4, 1e3
    _, pm = two_pole_exact(a0, p1, p2)
    h = two_pole(FREQ, a0, p1, p2)
    both = np.stack([h, -h])
    out = phase_margin(FREQ, both)
    assert out[0] == pytest.approx(pm, abs=0.2)
    assert out[1] == pytest.approx(out[0], abs=1e-9)


def test_phase_margin_with_lag_already_at_the_first_frequency() -> None:
    # Sweep starts above the dominant pole: ~84 deg of lag at freq[0] must still count.
    a0, p1, p2 = 1e5, 10.0, 3e6
    freq = np.logspace(2.0, 10.0, 161)
    _, pm = two_pole_exact(a0, p1, p2)
    h = two_pole(freq, a0, p1, p2)
    out = phase_margin(freq, np.stack([h, -h]))
    np.testing.assert_allclose(out, pm, atol=0.2)


def test_unstable_three_pole_loop_has_negative_phase_margin_for_both_signs() -> None:
    # Three coincident poles, loop gain 1000: phase passes -180 deg before unity gain.
    h = 1e3 / (1.0 + 1j * FREQ / 1e4) ** 3
    out = phase_margin(FREQ, np.stack([h, -h]))
    expected = reference_phase_margin(FREQ, h)
    assert expected < 0.0
    np.testing.assert_allclose(out, expected, atol=1e-9)


def test_phase_margin_matches_np_unwrap_reference_on_random_loops() -> None:
    rng = np.random.default_rng(20240601)
    k = 300
    n_poles = rng.integers(1, 7, size=k)
    poles = 10.0 ** rng.uniform(1.0, 9.0, size=(k, 6))
    a0 = 10.0 ** rng.uniform(0.5, 6.0, size=(k, 1))
    sign = rng.choice([-1.0, 1.0], size=(k, 1))
    active = np.arange(6)[np.newaxis, :] < n_poles[:, np.newaxis]
    den = np.where(active[:, :, np.newaxis], 1.0 + 1j * FREQ / poles[:, :, np.newaxis], 1.0)
    h = sign * a0 / den.prod(axis=1)
    out = phase_margin(FREQ, h)
    expected = np.array([reference_phase_margin(FREQ, row) for row in h])
    np.testing.assert_allclose(out, expected, atol=1e-9, equal_nan=True)
    assert np.isfinite(out).sum() > k // 2  # most of them cross unity inside the sweep


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    max_step=st.floats(0.01, 0.99),
)
def test_fast_unwrap_equals_np_unwrap(seed: int, n: int, max_step: float) -> None:
    rng = np.random.default_rng(seed)
    k = 8
    phase = rng.uniform(-np.pi, np.pi, size=(k, 1)) + np.cumsum(
        rng.uniform(-max_step * np.pi, max_step * np.pi, size=(k, n)), axis=1
    )
    h = 10.0 ** rng.uniform(-3.0, 3.0, size=(k, n)) * np.exp(1j * phase)
    expected = np.unwrap(np.angle(h), axis=1)
    cols = [rng.integers(0, n, size=k), np.full(k, n - 1), np.zeros(k, dtype=np.intp)]
    got = ac_module._unwrapped_phase_at(h, cols)
    for col, values in zip(cols, got, strict=True):
        np.testing.assert_allclose(values, expected[np.arange(k), col], atol=1e-12)


# --------------------------------------------------------------------------- crossings that do not exist


def test_never_crossing_gives_nan() -> None:
    below = single_pole(FREQ, 0.5, 1e3)  # |h| < 1 everywhere
    above = single_pole(FREQ, 1e12, 1e9)  # |h| > 1 over the whole sweep
    flat = np.full(FREQ.size, 2.0 + 0j)  # never falls 3 dB
    h = np.stack([below, above, flat])
    ugf = unity_gain_frequency(FREQ, h)
    pm = phase_margin(FREQ, h)
    assert np.isnan(ugf).all()
    assert np.isnan(pm).all()
    bw = bandwidth_3db(FREQ, h)
    assert bw[0] == pytest.approx(1e3, rel=5e-3)
    assert np.isnan(bw[2])
    assert np.isnan(bandwidth_3db(FREQ, h, ref="peak")[2])


def test_unity_crossing_only_going_up_is_nan() -> None:
    highpass = 10.0 * (1j * FREQ / 1e6) / (1.0 + 1j * FREQ / 1e6)  # rises through 0 dB, never falls
    assert np.isnan(unity_gain_frequency(FREQ, highpass))
    assert np.isnan(phase_margin(FREQ, highpass))


def test_unity_gain_frequency_is_first_falling_crossing() -> None:
    # Rises above 1 around 1 kHz, falls back through 1 near 10 MHz: the falling crossing is reported.
    h = 10.0 * (1j * FREQ / 1e2) / ((1.0 + 1j * FREQ / 1e2) * (1.0 + 1j * FREQ / 1e6))
    fu = brentq(lambda x: abs(10.0 * (1j * x / 1e2) / ((1 + 1j * x / 1e2) * (1 + 1j * x / 1e6))) - 1, 1e6, 1e9)
    assert unity_gain_frequency(FREQ, h) == pytest.approx(fu, rel=5e-3)


# --------------------------------------------------------------------------- batches, NaN, shapes


@pytest.mark.filterwarnings("error")
def test_mixed_batch_gives_per_sample_results_without_warnings() -> None:
    good = two_pole(FREQ, 1e4, 1e3, 3e6)
    with_nan = good.copy()
    with_nan[150] = np.nan
    with_inf = good.copy()
    with_inf[3] = np.inf
    low_gain = single_pole(FREQ, 0.5, 1e3)
    zeros = np.zeros(FREQ.size, dtype=complex)
    good2 = single_pole(FREQ, 100.0, 1e5)
    h = np.stack([good, with_nan, with_inf, low_gain, zeros, good2])
    fu, pm = two_pole_exact(1e4, 1e3, 3e6)

    ugf = unity_gain_frequency(FREQ, h)
    assert ugf[0] == pytest.approx(fu, rel=5e-3)
    assert np.isnan(ugf[1:5]).all()
    assert ugf[5] == pytest.approx(1e5 * np.sqrt(100.0**2 - 1), rel=5e-3)

    out_pm = phase_margin(FREQ, h)
    assert out_pm[0] == pytest.approx(pm, abs=0.2)
    assert np.isnan(out_pm[1:5]).all()
    assert out_pm[5] == pytest.approx(90.57, abs=0.1)

    bw = bandwidth_3db(FREQ, h)
    assert bw[0] == pytest.approx(1e3, rel=5e-3)
    assert np.isnan(bw[1]) and np.isnan(bw[2])
    assert bw[3] == pytest.approx(1e3, rel=5e-3)
    assert np.isnan(bw[4])  # zero reference gain
    assert bw[5] == pytest.approx(1e5, rel=5e-3)

    lf = lf_gain_db(FREQ, h)
    assert lf[0] == pytest.approx(80.0, abs=1e-3)
    assert np.isnan(lf[1]) and np.isnan(lf[2])  # any non-finite value spoils the whole sample
    assert lf[4] == -np.inf
    assert peak_gain_db(FREQ, h)[4] == -np.inf  # all-zero sample: finite data, -inf dB
    assert peak_frequency(FREQ, h)[4] == FREQ[0]

    for fn in AC_FUNCTIONS:
        batch = np.asarray(fn(FREQ, h))
        single = np.array([fn(FREQ, row) for row in h])
        np.testing.assert_array_equal(batch, single)
        assert np.isnan(batch[1]) and np.isnan(batch[2])


def test_one_dimensional_h_gives_numpy_scalar() -> None:
    h = two_pole(FREQ, 1e4, 1e3, 3e6)
    for fn in AC_FUNCTIONS:
        out = fn(FREQ, h)
        assert isinstance(out, np.float64)
        assert np.shape(out) == ()
        assert out == np.asarray(fn(FREQ, h[np.newaxis, :]))[0]


def test_empty_batch_gives_empty_result() -> None:
    h = np.empty((0, FREQ.size), dtype=complex)
    for fn in AC_FUNCTIONS:
        out = fn(FREQ, h)
        assert isinstance(out, np.ndarray) and out.shape == (0,)


def test_real_valued_h_is_accepted() -> None:
    h = np.abs(single_pole(FREQ, 100.0, 1e3))[np.newaxis, :]
    assert bandwidth_3db(FREQ, h)[0] == pytest.approx(1e3, rel=5e-3)
    assert unity_gain_frequency(FREQ, h)[0] == pytest.approx(1e5, rel=5e-3)
    assert phase_margin(FREQ, h)[0] == pytest.approx(180.0)  # zero phase everywhere


@pytest.mark.filterwarnings("error")
def test_linear_sweep_from_zero_hz() -> None:
    # ".ac lin 1001 0 1meg": the first point is DC; the interval from 0 Hz is interpolated in f.
    freq = np.linspace(0.0, 1e6, 1001)
    a0, fp = 10.0, 1e4
    h = np.stack([single_pole(freq, a0, fp), -single_pole(freq, a0, fp)])
    fu = fp * np.sqrt(a0**2 - 1.0)
    np.testing.assert_allclose(lf_gain_db(freq, h), 20.0)
    np.testing.assert_allclose(bandwidth_3db(freq, h), fp, rtol=1e-4)
    np.testing.assert_allclose(unity_gain_frequency(freq, h), fu, rtol=1e-4)
    np.testing.assert_allclose(phase_margin(freq, h), 180.0 - np.degrees(np.arctan(fu / fp)), atol=0.01)
    np.testing.assert_array_equal(peak_frequency(freq, h), 0.0)
    np.testing.assert_allclose(peak_gain_db(freq, h), 20.0)
    np.testing.assert_allclose(gain_db_at(freq, h, 0.0), 20.0)
    # Between 0 Hz and the next point: linear in f on the dB values.
    y0, y1 = 20.0, 20.0 * np.log10(abs(single_pole(np.array(1e3), a0, fp)))
    np.testing.assert_allclose(gain_db_at(freq, h, 250.0), 0.75 * y0 + 0.25 * y1)


@pytest.mark.filterwarnings("error")
def test_crossing_in_the_interval_from_zero_hz() -> None:
    freq = np.array([0.0, 1e3, 2e3])
    h = np.array([[4.0, 0.5, 0.25], [4.0, 0.0, 0.0]], dtype=complex)
    ugf = unity_gain_frequency(freq, h)
    # dB from +12.04 to -6.02: 0 dB at t = 12.04 / 18.06 = 2/3 of the way, linear in f from 0 Hz.
    assert ugf[0] == pytest.approx(1e3 * 2.0 / 3.0)
    assert ugf[1] == 0.0  # falls to an exact zero: -inf dB, crossing at the left point
    np.testing.assert_allclose(bandwidth_3db(freq, h), [1e3 * (3.0103 / 18.0618), 0.0], rtol=1e-4)


def test_single_frequency_point() -> None:
    freq = np.array([1e3])
    h = np.array([[10.0 + 0j], [0.1 + 0j]])
    np.testing.assert_allclose(lf_gain_db(freq, h), [20.0, -20.0])
    np.testing.assert_allclose(gain_db_at(freq, h, 1e3), [20.0, -20.0])
    assert np.isnan(bandwidth_3db(freq, h)).all()
    assert np.isnan(unity_gain_frequency(freq, h)).all()
    assert np.isnan(phase_margin(freq, h)).all()
    np.testing.assert_allclose(peak_frequency(freq, h), [1e3, 1e3])


BAD_SHAPES = [
    pytest.param(FREQ[np.newaxis, :], np.ones((2, FREQ.size), complex), id="freq-2d"),
    pytest.param(FREQ, np.ones((2, 3, FREQ.size), complex), id="h-3d"),
    pytest.param(FREQ, np.ones((2, FREQ.size - 1), complex), id="length-mismatch"),
    pytest.param(FREQ, np.ones(FREQ.size + 1, complex), id="1d-length-mismatch"),
    pytest.param(FREQ, np.ones((FREQ.size, 2), complex), id="transposed"),
    pytest.param(np.array([]), np.ones((2, 0), complex), id="empty-freq"),
    pytest.param(FREQ[::-1], np.ones((2, FREQ.size), complex), id="descending-freq"),
    pytest.param(np.r_[-1.0, FREQ[1:]], np.ones((2, FREQ.size), complex), id="negative-freq"),
    pytest.param(np.r_[0.0, 0.0, FREQ[2:]], np.ones((2, FREQ.size), complex), id="two-zero-freqs"),
    pytest.param(np.r_[FREQ[:-1], np.nan], np.ones((2, FREQ.size), complex), id="nan-freq"),
    pytest.param(np.r_[FREQ[:1], FREQ[:-1]], np.ones((2, FREQ.size), complex), id="repeated-freq"),
    pytest.param(FREQ, np.full((2, FREQ.size), "x"), id="h-strings"),
    pytest.param(FREQ.astype(complex), np.ones((2, FREQ.size), complex), id="complex-freq"),
]


@pytest.mark.parametrize(("freq", "h"), BAD_SHAPES)
@pytest.mark.parametrize("fn", AC_FUNCTIONS)
def test_malformed_inputs_raise_value_error(fn: Callable[..., object], freq: np.ndarray, h: np.ndarray) -> None:
    with pytest.raises(ValueError):
        fn(freq, h)


def test_bandwidth_rejects_unknown_reference() -> None:
    with pytest.raises(ValueError, match="ref"):
        bandwidth_3db(FREQ, single_pole(FREQ, 10.0, 1e3), ref="dc")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- gain at a frequency


def test_gain_db_at_grid_point_and_between_points() -> None:
    a0, fp = 100.0, 1e3
    h = single_pole(FREQ, a0, fp)[np.newaxis, :]
    exact = lambda f: 20.0 * np.log10(abs(single_pole(np.array(f), a0, fp)))  # noqa: E731
    assert gain_db_at(FREQ, h, FREQ[60])[0] == pytest.approx(exact(FREQ[60]), abs=1e-12)
    for f in (3.3e2, 1.234e3, 7.7e6):
        assert gain_db_at(FREQ, h, f)[0] == pytest.approx(exact(f), abs=0.01)
    # Far above the pole the dB curve is a straight line in log f: interpolation is exact.
    assert gain_db_at(FREQ, h, 3.3e8)[0] == pytest.approx(exact(3.3e8), abs=1e-6)


@pytest.mark.filterwarnings("error")
def test_gain_db_at_sweep_ends_and_out_of_range() -> None:
    h = np.stack([single_pole(FREQ, 100.0, 1e3)] * 2)
    np.testing.assert_allclose(gain_db_at(FREQ, h, FREQ[0]), lf_gain_db(FREQ, h))
    assert np.isfinite(gain_db_at(FREQ, h, FREQ[-1] * (1 + 1e-12))).all()  # ngspice round-off at the end
    for f in (0.5, 2e10, -1.0, 0.0, float("nan"), float("inf")):  # no extrapolation: NaN, no exception
        out = gain_db_at(FREQ, h, f)
        assert out.shape == (2,) and np.isnan(out).all()
    for bad in ("1k", 1j, None):
        with pytest.raises(ValueError):
            gain_db_at(FREQ, h, bad)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("error")
def test_gain_db_at_next_to_exact_zero_is_minus_inf_not_nan() -> None:
    h = np.ones((1, FREQ.size), dtype=complex)
    h[0, 101] = 0.0
    f = np.sqrt(FREQ[100] * FREQ[101])
    assert gain_db_at(FREQ, h, f)[0] == -np.inf


# --------------------------------------------------------------------------- peaks


def test_resonant_peak_and_bandwidth_from_peak() -> None:
    f0, q = 1.234e5, 5.0
    freq = np.logspace(0.0, 10.0, 501)  # 50 points per decade
    h = resonant_lowpass(freq, f0, q)[np.newaxis, :]
    f_peak = f0 * np.sqrt(1.0 - 1.0 / (2.0 * q**2))
    g_peak = 20.0 * np.log10(q / np.sqrt(1.0 - 1.0 / (4.0 * q**2)))
    assert peak_frequency(freq, h)[0] == pytest.approx(f_peak, rel=5e-3)
    assert peak_gain_db(freq, h)[0] == pytest.approx(g_peak, abs=0.1)
    assert peak_gain_db(freq, h)[0] >= 20.0 * np.log10(np.abs(h).max())

    target = g_peak - 10.0 * np.log10(2.0)
    f_3db_peak = brentq(lambda x: 20 * np.log10(abs(resonant_lowpass(np.array(x), f0, q))) - target, f_peak, 1e7)
    f_3db_lf = brentq(lambda x: 20 * np.log10(abs(resonant_lowpass(np.array(x), f0, q))) + 3.0103, f_peak, 1e7)
    assert bandwidth_3db(freq, h, ref="peak")[0] == pytest.approx(f_3db_peak, rel=5e-3)
    assert bandwidth_3db(freq, h, ref="lf")[0] == pytest.approx(f_3db_lf, rel=5e-3)


def test_flat_response_peaks_at_lowest_frequency() -> None:
    h = np.full((2, FREQ.size), 3.0 + 4.0j)
    np.testing.assert_array_equal(peak_frequency(FREQ, h), [FREQ[0], FREQ[0]])
    np.testing.assert_allclose(peak_gain_db(FREQ, h), 20.0 * np.log10(5.0))


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(log_a0=st.floats(-1.0, 5.0), log_fp=st.floats(2.0, 8.5))
def test_single_pole_bandwidth_property(log_a0: float, log_fp: float) -> None:
    # fp at least two decades above freq[0], so that the gain at freq[0] is the DC gain to 0.0005 dB.
    a0, fp = 10.0**log_a0, 10.0**log_fp
    h = single_pole(FREQ, a0, fp)
    assert bandwidth_3db(FREQ, h) == pytest.approx(fp, rel=5e-3)
    assert lf_gain_db(FREQ, h) == pytest.approx(20.0 * log_a0, abs=1e-3)
    fu = unity_gain_frequency(FREQ, h)
    # With A0 near 1 the 0 dB crossing sits where |h| is nearly flat (ill-conditioned): check A0 >= 2.
    if a0 >= 2.0 and fp * np.sqrt(a0**2 - 1.0) < FREQ[-1] / 1.2:
        assert fu == pytest.approx(fp * np.sqrt(a0**2 - 1.0), rel=5e-3)
        assert 90.0 <= phase_margin(FREQ, h) < 180.0
    if a0 < 1.0:
        assert np.isnan(fu)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    log_scale=st.floats(-3.0, 3.0),
)
def test_measurements_are_invariant_under_frequency_scaling(seed: int, log_scale: float) -> None:
    # The same samples of h on a frequency axis scaled by s: frequencies scale by s, gains and PM do not.
    rng = np.random.default_rng(seed)
    k = 16
    p1 = 10.0 ** rng.uniform(1.0, 4.0, size=(k, 1))
    p2 = 10.0 ** rng.uniform(4.0, 9.0, size=(k, 1))
    q = rng.uniform(0.3, 3.0, size=(k, 1))
    u = FREQ / p2
    h = 10.0 ** rng.uniform(0.0, 5.0, size=(k, 1)) / ((1.0 + 1j * FREQ / p1) * (1.0 - u**2 + 1j * u / q))
    s = 10.0**log_scale
    freq_s = FREQ * s
    for fn in (bandwidth_3db, unity_gain_frequency, peak_frequency):
        np.testing.assert_allclose(fn(freq_s, h), s * fn(FREQ, h), rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(
        bandwidth_3db(freq_s, h, ref="peak"), s * bandwidth_3db(FREQ, h, ref="peak"), rtol=1e-9, equal_nan=True
    )
    for fn in (lf_gain_db, peak_gain_db, phase_margin):
        np.testing.assert_allclose(fn(freq_s, h), fn(FREQ, h), rtol=1e-9, atol=1e-9, equal_nan=True)


# --------------------------------------------------------------------------- DC power


def test_dc_power_sign_convention() -> None:
    # A 1.8 V supply sourcing 1 mA: ngspice reports i(vdd) = -1 mA, power delivered is +1.8 mW.
    assert dc_power(1.8, 0.0, -1e-3) == pytest.approx(1.8e-3)
    # A source absorbing power (current pushed into its + terminal) delivers negative power.
    assert dc_power(1.8, 0.0, 2e-3) == pytest.approx(-3.6e-3)
    # Negative rail "VSS vss 0 -1.8": current flows from the circuit into its + node (vss): i > 0.
    assert dc_power(-1.8, 0.0, 1e-3) == pytest.approx(1.8e-3)
    # Floating source between two nodes.
    assert dc_power(3.0, 1.0, -0.5) == pytest.approx(1.0)
    assert isinstance(dc_power(1.8, 0.0, -1e-3), np.float64)


def test_dc_power_vectorized_and_broadcast() -> None:
    v = np.array([1.7, 1.8, 1.9])
    i = np.array([-1e-3, -2e-3, np.nan])
    out = dc_power(v, 0.0, i)
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    np.testing.assert_allclose(out[:2], [1.7e-3, 3.6e-3])
    assert np.isnan(out[2])
    assert np.isnan(dc_power(np.inf, 0.0, -1.0))  # non-finite result is NaN, never inf


def test_total_dc_power() -> None:
    k = 4
    vdd = np.full(k, 1.8)
    i_vdd = np.array([-1e-3, -2e-3, -3e-3, np.nan])
    i_vss = np.full(k, 0.5e-3)
    out = total_dc_power([(vdd, 0.0, i_vdd), (-1.8, 0.0, i_vss)])
    np.testing.assert_allclose(out[:3], 1.8 * np.array([1e-3, 2e-3, 3e-3]) + 0.9e-3)
    assert np.isnan(out[3])
    assert total_dc_power(iter([(1.0, 0.0, -1.0)])) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((np.ones((2, 2)), 0.0, -1.0), id="2d"),
        pytest.param((np.ones(3), 0.0, np.ones(4)), id="mismatch"),
        pytest.param((np.ones(3, complex), 0.0, np.ones(3)), id="complex"),
        pytest.param(("1.8", 0.0, 1.0), id="string"),
    ],
)
def test_dc_power_bad_shapes_raise(args: tuple[object, object, object]) -> None:
    with pytest.raises(ValueError):
        dc_power(*args)  # type: ignore[arg-type]


def test_total_dc_power_bad_input_raises() -> None:
    with pytest.raises(ValueError):
        total_dc_power([])
    with pytest.raises(ValueError):
        total_dc_power([(1.0, 0.0)])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        total_dc_power([(np.ones(3), 0.0, np.ones(3)), (np.ones(4), 0.0, np.ones(4))])


def test_sampled_bandwidth_reproduces_linear_grid_reading():
    """A single pole at 94 MHz read off a 200 MHz linear grid with linear |H| interpolation: the
    reading is the straight-line crossing between 0 and 200 MHz, not 94 MHz."""
    from optiyield.measure import sampled_bandwidth

    f3, step = 94e6, 200e6
    grid = np.arange(1, 51) * step
    gain = 20 * np.log10(1 / np.sqrt(1 + (grid / f3) ** 2))
    mag0, mag1 = 1.0, 1 / np.sqrt(1 + (step / f3) ** 2)
    expected = step * (mag0 - 10 ** (-3 / 20)) / (mag0 - mag1)
    assert sampled_bandwidth([0.0], gain[None, :], step)[0] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(sampled_bandwidth([0.0], [[-1.0, -2.0]], step)[0])  # never 3 dB down on the grid
    with pytest.raises(ValueError):
        sampled_bandwidth([0.0, 1.0], [[-1.0]], step)
