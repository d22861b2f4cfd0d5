"""Transient measurements: Fourier over whole periods, average power, oscillation frequency, swing.

All functions take the transient time axis ``time`` (n,) in s, shared by every copy of a batched run,
and waveforms with a leading sample axis (K, n); they return one value per sample (K,), NaN where the
figure does not exist (window outside the run, no oscillation).

The analysis window is either the last ``periods`` whole periods of ``f0`` ending at ``stop`` (default:
the end of the run), or ``[start, stop]``. ngspice's time steps are not uniform, so the waveforms are
interpolated linearly onto a uniform grid of :data:`POINTS_PER_PERIOD` points per period of the highest
harmonic asked for (for a ``start`` window: :data:`WINDOW_POINTS` points), and the Fourier coefficient is
the single DFT bin of that grid. Over whole periods a periodic steady state has no leakage; the error is
that of linear interpolation, O((f·Δt)²) for a time step Δt, so decks bound ngspice's step with the
``.tran`` maximum step (docs/testbench.md).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Uniform points per period of the analysed harmonic when a waveform is resampled for Fourier.
POINTS_PER_PERIOD = 64
#: Uniform points of a ``[start, stop]`` window (averages and extrema over a window given in seconds).
WINDOW_POINTS = 4096
MILLIWATT = 1e-3


def window(time: ArrayLike, f0: float | None = None, periods: int = 1, start: float | None = None,
           stop: float | None = None) -> tuple[float, float] | None:
    """The analysis window (t1, t2) in s, or None when it does not fit inside the simulated time.

    With ``f0`` (Hz): the last ``periods`` whole periods before ``stop`` (default: end of the run).
    Otherwise ``[start, stop]`` (``start`` default: beginning of the run).
    """
    t = np.asarray(time, dtype=float)
    end = float(t[-1]) if stop is None else float(stop)
    if f0 is not None:
        if f0 <= 0 or periods < 1:
            return None
        begin = end - periods / f0
    else:
        begin = float(t[0]) if start is None else float(start)
    slack = 1e-9 * max(abs(float(t[-1])), 1e-30)
    if begin < t[0] - slack or end > t[-1] + slack or end <= begin:
        return None
    return begin, end


def resample(time: ArrayLike, wave: ArrayLike, t1: float, t2: float, points: int,
             periodic: bool) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Waveforms (K, n) linearly interpolated onto ``points`` uniform instants of [t1, t2].

    ``periodic`` leaves out the end point (it repeats the first one over whole periods). Returns the
    grid (points,) and the resampled waves (K, points).
    """
    t = np.asarray(time, dtype=float)
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    grid = np.linspace(t1, t2, points, endpoint=not periodic)
    right = np.clip(np.searchsorted(t, grid, side="right"), 1, t.size - 1)
    left = right - 1
    span = t[right] - t[left]
    frac = np.divide(grid - t[left], span, out=np.zeros_like(grid), where=span > 0)
    return grid, w[:, left] * (1 - frac) + w[:, right] * frac


def harmonic_phasor(time: ArrayLike, wave: ArrayLike, f0: float, periods: int = 1, harmonic: int = 1,
                    stop: float | None = None) -> NDArray[np.complex128]:
    """Complex peak amplitude of harmonic ``harmonic`` of ``f0`` (Hz) over the last ``periods`` periods.

    ``wave`` (K, n) in V or A; returns (K,) complex, referred to cos(2π·h·f0·(t - t1)); harmonic 0 gives
    the mean (real). NaN when the window does not fit.
    """
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    span = window(time, f0=f0, periods=periods, stop=stop)
    if span is None:
        return np.full(w.shape[0], np.nan + 0j)
    points = POINTS_PER_PERIOD * periods * max(1, harmonic)
    grid, samples = resample(time, w, span[0], span[1], points, periodic=True)
    kernel = np.exp(-2j * np.pi * harmonic * f0 * (grid - span[0]))
    return (samples @ kernel) * ((2.0 if harmonic else 1.0) / points)


def harmonic_amplitude(time: ArrayLike, wave: ArrayLike, f0: float, periods: int = 1, harmonic: int = 1,
                       stop: float | None = None) -> NDArray[np.float64]:
    """Peak amplitude of harmonic ``harmonic`` of ``f0`` over whole periods (units of ``wave``)."""
    return np.abs(harmonic_phasor(time, wave, f0, periods, harmonic, stop))


def harmonic_power(time: ArrayLike, voltage: ArrayLike, r: float, f0: float, periods: int = 1,
                   harmonic: int = 1, stop: float | None = None) -> NDArray[np.float64]:
    """Power in W of harmonic ``harmonic`` of ``voltage`` across a resistance ``r`` (ohm): |V_h|²/(2r)."""
    return harmonic_amplitude(time, voltage, f0, periods, harmonic, stop) ** 2 / (2.0 * r)


def delivered_power(time: ArrayLike, voltage: ArrayLike, current: ArrayLike, f0: float, periods: int = 1,
                    harmonic: int = 1, stop: float | None = None) -> NDArray[np.float64]:
    """Power in W at harmonic ``harmonic`` flowing into a node: Re(V_h·conj(I_h))/2.

    ``voltage`` is the node voltage (K, n), ``current`` the current flowing into the node (K, n), e.g.
    the current a drive source delivers through its series resistor.
    """
    v = harmonic_phasor(time, voltage, f0, periods, harmonic, stop)
    i = harmonic_phasor(time, current, f0, periods, harmonic, stop)
    return np.real(v * np.conj(i)) / (2.0 if harmonic else 1.0)


def average(time: ArrayLike, wave: ArrayLike, f0: float | None = None, periods: int = 1,
            start: float | None = None, stop: float | None = None) -> NDArray[np.float64]:
    """Time average of ``wave`` (K, n) over the window (whole periods of ``f0``, or [start, stop])."""
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    span = window(time, f0=f0, periods=periods, start=start, stop=stop)
    if span is None:
        return np.full(w.shape[0], np.nan)
    if f0 is not None:
        _, samples = resample(time, w, span[0], span[1], POINTS_PER_PERIOD * periods, periodic=True)
        return samples.mean(axis=1)
    grid, samples = resample(time, w, span[0], span[1], WINDOW_POINTS, periodic=False)
    return np.trapezoid(samples, grid, axis=1) / (span[1] - span[0])


def swing(time: ArrayLike, wave: ArrayLike, f0: float | None = None, periods: int = 1,
          start: float | None = None, stop: float | None = None) -> NDArray[np.float64]:
    """Half the peak-to-peak excursion of ``wave`` over the window, (max - min)/2, in its units."""
    t = np.asarray(time, dtype=float)
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    span = window(t, f0=f0, periods=periods, start=start, stop=stop)
    if span is None:
        return np.full(w.shape[0], np.nan)
    inside = (t >= span[0]) & (t <= span[1])
    _, edges = resample(t, w, span[0], span[1], 2, periodic=False)
    values = np.concatenate([w[:, inside], edges], axis=1)
    return (values.max(axis=1) - values.min(axis=1)) / 2.0


def crossings(time: ArrayLike, wave: ArrayLike, rising: bool = True) -> NDArray[np.float64]:
    """Instants (s) where one waveform (n,) crosses zero upward (``rising``) or downward, interpolated linearly."""
    t = np.asarray(time, dtype=float)
    x = np.asarray(wave, dtype=float)
    index = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0)) if rising else np.flatnonzero((x[:-1] >= 0) & (x[1:] < 0))
    return t[index] - x[index] * (t[index + 1] - t[index]) / (x[index + 1] - x[index])


def oscillation_frequency(time: ArrayLike, wave: ArrayLike, start: float | None = None,
                          stop: float | None = None) -> NDArray[np.float64]:
    """Frequency in Hz from the rising crossings of ``wave`` through its mean over [start, stop].

    Crossing instants are interpolated linearly; f = (crossings - 1) / (last - first). NaN with fewer
    than three crossings (no oscillation in the window).
    """
    t = np.asarray(time, dtype=float)
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    out = np.full(w.shape[0], np.nan)
    span = window(t, start=start, stop=stop)
    if span is None:
        return out
    inside = (t >= span[0]) & (t <= span[1])
    ts, ws = t[inside], w[:, inside]
    centred = ws - ws.mean(axis=1, keepdims=True)
    for k in range(w.shape[0]):
        instants = crossings(ts, centred[k])
        if instants.size >= 3:
            out[k] = (instants.size - 1) / (instants[-1] - instants[0])
    return out


def to_dbm(power: ArrayLike) -> NDArray[np.float64]:
    """W → dBm; NaN for powers that are not positive."""
    p = np.asarray(power, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, 10.0 * np.log10(np.where(p > 0, p, 1.0) / MILLIWATT), np.nan)


def from_dbm(dbm: ArrayLike) -> NDArray[np.float64]:
    """dBm → W."""
    return MILLIWATT * 10.0 ** (np.asarray(dbm, dtype=float) / 10.0)
