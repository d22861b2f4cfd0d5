"""Oscillator phase noise from simulated steady-state waveforms (Hajimiri-Lee impulse sensitivity function).

A noise current injected into an oscillator's tank shifts its phase by Δφ = Γ(ω0·t)·Δq/q_max, where Γ is
the impulse sensitivity function (ISF) and q_max the maximum charge swing of the tank. For white noise
sources of (cyclostationary) density S(t) = S0·α(ω0·t)² [A²/Hz] the single-sideband phase noise at an
offset Δf in the 1/f² region is (Hajimiri & Lee, IEEE JSSC 33(2), 1998, eq. 21 with Γ_eff = Γ·α)::

    L(Δf) = 10·log10( Σ_sources <Γ²·S> / (2·q_max²·(2π·Δf)²) )      [dBc/Hz]

where <·> is the average over one period. This module estimates Γ from the simulated waveform with the
second-order-system approximation Γ(x) = f'(x) / (f'(x)² + f''(x)²) (f = v/max|v|, x = ω0·t; a sinusoid
gives Γ = -sin x, Γ_rms² = 1/2) and sums three noise sources of a cross-coupled LC oscillator:

- the tank loss: a resistance R_d across the differential tank, white, 4kT/R_d;
- the cross-coupled pair: channel noise 4kT·γ·G(t), with G = g_m1·g_m2/(g_m1 + g_m2) the pair's
  differential transconductance. With a tail current I the pair is only active while v_d crosses zero, and
  <Γ²·G> = I·Σ_crossings Γ_c² / (2π·A·|f'_c|) (= I/(π·A) for a sinusoid, the Rael-Abidi pair term);
- optionally a tail-current noise S_tail (A²/Hz), steered to one side or the other by the switching
  pair: effective ISF Γ(x)·sgn(f(x))/2.

The tank quantities come from the simulation: a zero-volt sense source feeds one side's L || R branch,
so the fundamental of the branch admittance Y = I_b/V_b = 1/R + 1/(jω0·L) gives L and R, the dc of the
branch current is half the tail current, and q_max = C_d·A_d with C_d = 1/(ω0²·L_d) (L_d = 2L, the
differential inductance; the effective tank capacitance, device and varactor capacitances included).

Also: the textbook Leeson formula (:func:`leeson_dbc`), the phase noise of a slow frequency-pushing noise
source (:func:`fm_noise_dbc`, narrowband FM), the average tail current (:func:`lc_tail_current`) and the
oscillator's output power at its own frequency (:func:`oscillator_power`). Functions take the transient
time axis (n,) in s and waveforms (K, n) and return (K,) arrays, NaN where the waveform does not oscillate
in the window.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optiyield.measure.tran import crossings

BOLTZMANN = 1.380649e-23  # J/K
#: Channel-noise factor γ = S_id / (4kT·g_m) of the PTM 45 nm LP nch card (tnoimod = 0) in saturation,
#: characterised with ngspice .noise (input-referred noise at 1 GHz times g_m / 4kT) on W = 2u, m = 20,
#: L = 45n with a 200 ohm load from 1.6 V: 1.06 at I_D = 1.6 mA (V_DS = 1.29 V), 1.20 at 3.5 mA (0.91 V).
GAMMA_NCH = 1.2
#: Uniform samples of the folded period.
PERIOD_POINTS = 256
#: Harmonics kept when differentiating the folded period (linear interpolation noise is above them).
ISF_HARMONICS = 24
ROOM_TEMPERATURE = 300.15  # K (27 °C)


def steady_period(time: ArrayLike, wave: ArrayLike, start: float | None = None, stop: float | None = None,
                  points: int = PERIOD_POINTS, extra: ArrayLike | None = None
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    """Fold the whole periods of ``wave`` (K, n) in [start, stop] onto one period.

    The period is found from the rising crossings of ``wave`` through its mean in the window; the whole
    periods between the first and the last crossing are resampled on ``points`` uniform instants per
    period and averaged, so phase 0 is a rising crossing. Returns f0 (K,) in Hz, the folded period
    (K, points) and, if ``extra`` (K, n) is given (e.g. a current), the same folding of it; rows without
    at least two whole periods are NaN.
    """
    t = np.asarray(time, dtype=float)
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    e = None if extra is None else np.atleast_2d(np.asarray(extra, dtype=float))
    lo = t[0] if start is None else start
    hi = t[-1] if stop is None else stop
    inside = (t >= lo) & (t <= hi)
    ts = t[inside]
    f0 = np.full(w.shape[0], np.nan)
    folded = np.full((w.shape[0], points), np.nan)
    folded_extra = None if e is None else np.full((w.shape[0], points), np.nan)
    for k in range(w.shape[0]):
        x = w[k, inside]
        if x.size < 3 or not np.isfinite(x).all():
            continue
        c = crossings(ts, x - x.mean())
        if c.size < 3:
            continue
        periods = c.size - 1
        f0[k] = periods / (c[-1] - c[0])
        grid = np.linspace(c[0], c[-1], periods * points, endpoint=False)
        folded[k] = np.interp(grid, ts, x).reshape(periods, points).mean(axis=0)
        if e is not None and folded_extra is not None:
            folded_extra[k] = np.interp(grid, ts, e[k, inside]).reshape(periods, points).mean(axis=0)
    return f0, folded, folded_extra


def _derivatives(period: NDArray, harmonics: int = ISF_HARMONICS) -> tuple[NDArray, NDArray, NDArray]:
    """(f, f', f'') of the folded period(s) (K, P) with respect to phase x, f normalised to max|f| = 1."""
    p = np.atleast_2d(period)
    spectrum = np.fft.rfft(p - p.mean(axis=1, keepdims=True), axis=1)
    h = np.arange(spectrum.shape[1])
    spectrum[:, h > harmonics] = 0.0
    n = p.shape[1]
    f = np.fft.irfft(spectrum, n, axis=1)
    d1 = np.fft.irfft(1j * h * spectrum, n, axis=1)
    d2 = np.fft.irfft(-(h**2) * spectrum, n, axis=1)
    scale = np.max(np.abs(f), axis=1, keepdims=True)
    return f / scale, d1 / scale, d2 / scale


def isf(period: ArrayLike, harmonics: int = ISF_HARMONICS) -> NDArray[np.float64]:
    """Impulse sensitivity function Γ(x) of one period (K, P) of a tank voltage, uniform in phase x.

    Second-order approximation Γ = f'/(f'² + f''²) with f the waveform normalised to max|f| = 1 (Hajimiri
    & Lee 1998); an ideal sinusoid cos x gives Γ = -sin x. Dimensionless, (K, P).
    """
    _, d1, d2 = _derivatives(np.asarray(period, dtype=float), harmonics)
    return d1 / (d1**2 + d2**2)


def isf_rms2(period: ArrayLike, harmonics: int = ISF_HARMONICS) -> NDArray[np.float64]:
    """Mean square of the ISF over one period, Γ_rms² (K,); 1/2 for a sinusoid."""
    return np.mean(isf(period, harmonics) ** 2, axis=1)


def pair_noise_weight(period: ArrayLike, harmonics: int = ISF_HARMONICS) -> NDArray[np.float64]:
    """<Γ²·G>/I in 1/V for a switching differential pair with tail current I, from the period (K, P) in V.

    The pair's differential transconductance G(t) is non-zero only while v crosses zero, and its
    integral over one crossing is I/|dv/dt|, so <Γ²·G> = I·Σ_c Γ_c²/(2π·A·|f'_c|) over the crossings c
    of the period (A = max|v|). A sinusoid of amplitude A gives 1/(π·A).
    """
    p = np.atleast_2d(np.asarray(period, dtype=float))
    f, d1, d2 = _derivatives(p, harmonics)
    gamma = d1 / (d1**2 + d2**2)
    amplitude = np.max(np.abs(p - p.mean(axis=1, keepdims=True)), axis=1)
    out = np.full(p.shape[0], np.nan)
    x = np.arange(p.shape[1] + 1, dtype=float)
    for k in range(p.shape[0]):
        fk = np.append(f[k], f[k, 0])
        total = 0.0
        for rising in (True, False):
            for c in crossings(x, fk, rising):
                g = np.interp(c, x, np.append(gamma[k], gamma[k, 0]))
                slope = abs(np.interp(c, x, np.append(d1[k], d1[k, 0])))
                total += g**2 / (2 * np.pi * amplitude[k] * slope)
        out[k] = total
    return out


def tail_isf_rms2(period: ArrayLike, harmonics: int = ISF_HARMONICS) -> NDArray[np.float64]:
    """Mean square of the effective ISF Γ·sgn(f)/2 of a tail current steered by the switching pair (K,)."""
    p = np.atleast_2d(np.asarray(period, dtype=float))
    f, d1, d2 = _derivatives(p, harmonics)
    return np.mean((d1 / (d1**2 + d2**2) * np.sign(f) / 2) ** 2, axis=1)


def hajimiri_dbc(noise: ArrayLike, q_max: ArrayLike, offset: float) -> NDArray[np.float64]:
    """Phase noise in dBc/Hz at ``offset`` (Hz): 10·log10(noise / (2·q_max²·(2π·offset)²)).

    ``noise`` is the ISF-weighted noise current density Σ<Γ²·S> in A²/Hz, ``q_max`` in C.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10 * np.log10(np.asarray(noise, dtype=float)
                             / (2 * np.asarray(q_max, dtype=float) ** 2 * (2 * np.pi * offset) ** 2))


def leeson_dbc(f0: ArrayLike, offset: float, q: ArrayLike, p_signal: ArrayLike, noise_factor: ArrayLike = 1.0,
               temp: float = ROOM_TEMPERATURE) -> NDArray[np.float64]:
    """Leeson's phase noise in dBc/Hz (1/f² region): 10·log10(2·F·k·T/P_s · (f0/(2·Q·offset))²).

    ``f0`` and ``offset`` in Hz, ``p_signal`` the signal power dissipated in the tank resistance (W),
    ``q`` the loaded tank Q, ``noise_factor`` F, ``temp`` in K.
    """
    f0, q, p_signal, noise_factor = (np.asarray(a, dtype=float) for a in (f0, q, p_signal, noise_factor))
    return 10 * np.log10(2 * noise_factor * BOLTZMANN * temp / p_signal * (f0 / (2 * q * offset)) ** 2)


def lc_tank_from_branch(f0: ArrayLike, v_branch: ArrayLike, i_branch: ArrayLike
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inductance (H) and parallel resistance (ohm) of an L || R branch from its folded period.

    ``v_branch`` and ``i_branch`` (K, P) are one period of the voltage across the branch and the current
    into it; the fundamental admittance is Y = I1/V1 = 1/R + 1/(jω0·L).
    """
    v = np.atleast_2d(np.asarray(v_branch, dtype=float))
    i = np.atleast_2d(np.asarray(i_branch, dtype=float))
    kernel = np.exp(-2j * np.pi * np.arange(v.shape[1]) / v.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        y = (i @ kernel) / (v @ kernel)
        inductance = -1.0 / (2 * np.pi * np.asarray(f0, dtype=float) * y.imag)
        resistance = 1.0 / y.real
    return inductance, resistance


def lc_phase_noise(time: ArrayLike, vd: ArrayLike, i_branch: ArrayLike, offset: float = 1e6,
                   gamma: float = GAMMA_NCH, tail_psd: ArrayLike = 0.0, start: float | None = None,
                   stop: float | None = None, temp: float = ROOM_TEMPERATURE) -> dict[str, NDArray[np.float64]]:
    """Phase noise of a cross-coupled LC oscillator and the quantities behind it, one value per sample.

    ``vd`` (K, n) is the differential output v(p) - v(n) in V. ``i_branch`` (K, n) is the current in A
    into the L || R tank branch of the ``p`` side, flowing from the supply towards node p (a zero-volt
    sense source in series with that branch); the branch voltage's fundamental is -V_d1/2 (symmetric
    circuit). ``offset`` in Hz, ``gamma`` the channel-noise factor of the pair, ``tail_psd`` the tail
    current noise in A²/Hz (scalar or (K,), default 0), window [start, stop] in s, ``temp`` in K.

    Returns a dict of (K,) arrays: ``pn`` (dBc/Hz), ``f0`` (Hz), ``amplitude`` A_d (V, peak), ``l`` and
    ``r`` (one side's tank inductance and resistance, H and ohm), ``c`` (effective capacitance per side,
    F), ``i_tail`` (A), ``isf_rms2``, and the ISF-weighted noise densities ``tank``, ``pair``, ``tail``
    (A²/Hz, referred to a floating source across the differential tank).
    """
    f0, vp, ip = steady_period(time, vd, start, stop, extra=i_branch)
    assert ip is not None
    l_side, r_side = lc_tank_from_branch(f0, -vp / 2, ip)
    amplitude = np.max(np.abs(vp - vp.mean(axis=1, keepdims=True)), axis=1)
    i_tail = 2 * ip.mean(axis=1)
    c_side = 1.0 / ((2 * np.pi * f0) ** 2 * l_side)
    kt4 = 4 * BOLTZMANN * temp
    g2 = isf_rms2(vp)
    tank = g2 * kt4 / (2 * r_side)
    pair = kt4 * gamma * i_tail * pair_noise_weight(vp)
    tail = tail_isf_rms2(vp) * np.asarray(tail_psd, dtype=float)
    q_max = c_side / 2 * amplitude  # C_d·A_d, C_d = C/2 across the differential tank
    pn = hajimiri_dbc(tank + pair + tail, q_max, offset)
    return {"pn": pn, "f0": f0, "amplitude": amplitude, "l": l_side, "r": r_side, "c": c_side,
            "i_tail": i_tail, "isf_rms2": g2, "tank": tank, "pair": pair, "tail": tail + 0 * pn}


def phase_noise_dbc(time: ArrayLike, vd: ArrayLike, i_branch: ArrayLike, start: float | None = None,
                    stop: float | None = None, offset: float = 1e6, gamma: float = GAMMA_NCH
                    ) -> NDArray[np.float64]:
    """Phase noise in dBc/Hz at ``offset`` (default 1 MHz) of a cross-coupled LC oscillator (K,).

    See :func:`lc_phase_noise` for the arguments (tank resistance and pair noise; no tail noise).
    """
    return lc_phase_noise(time, vd, i_branch, offset=offset, gamma=gamma, start=start, stop=stop)["pn"]


def lc_tail_current(time: ArrayLike, vd: ArrayLike, i_branch: ArrayLike, start: float | None = None,
                    stop: float | None = None) -> NDArray[np.float64]:
    """Average tail current in A of a symmetric cross-coupled LC oscillator (K,): twice the dc of the
    p-side L || R branch current ``i_branch`` (K, n), over the whole periods of ``vd`` (K, n) in [start, stop].

    Arguments as in :func:`lc_phase_noise`; NaN where ``vd`` does not oscillate.
    """
    _, _, ip = steady_period(time, vd, start, stop, extra=i_branch)
    assert ip is not None
    return 2 * ip.mean(axis=1)


def fm_noise_dbc(pushing: ArrayLike, psd: ArrayLike, offset: float) -> NDArray[np.float64]:
    """Phase noise in dBc/Hz at ``offset`` (Hz) of a slow noise source that modulates the frequency.

    ``pushing`` K = df/dx (Hz per unit of x), ``psd`` the one-sided density S_x of x at ``offset`` (unit²/Hz).
    Narrowband FM: S_f = K²·S_x (Hz²/Hz), S_φ = S_f/offset², L = S_φ/2, so
    L = 10·log10(K²·S_x / (2·offset²)).
    """
    k, s = np.asarray(pushing, dtype=float), np.asarray(psd, dtype=float)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(k**2 * s / (2 * offset**2))


def oscillator_power(time: ArrayLike, wave: ArrayLike, r: float, start: float | None = None,
                     stop: float | None = None) -> NDArray[np.float64]:
    """Power in W of the fundamental of an oscillating ``wave`` (K, n) across ``r`` ohm: |V1|²/(2r).

    The fundamental is taken at the waveform's own frequency, over the whole periods in [start, stop].
    """
    _, period, _ = steady_period(time, wave, start, stop)
    v1 = np.abs(np.fft.rfft(period, axis=1)[:, 1]) * 2 / period.shape[1]
    return v1**2 / (2 * r)
