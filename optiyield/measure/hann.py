"""Hann-windowed transient measurements for free-running (oscillator-driven) circuits.

The Fourier measures of :mod:`optiyield.measure.tran` need the fundamental ``f0`` in advance and analyse
whole periods of it. An oscillator's frequency is not known in advance and differs from sample to sample
(Monte Carlo, a control-voltage sweep), so these functions

- take the frequency of each sample from its own waveform (rising crossings through the mean,
  :func:`optiyield.measure.tran.oscillation_frequency`), and
- weight the window ``[start, stop]`` with a Hann window instead of cutting whole periods.

With N periods in the window, the Hann window's spectral leakage from a component m bins away falls as
1/m³; every other harmonic and the dc level are at least N bins away, so a window of more than about ten
periods gives the harmonic amplitude and the mean without needing the exact period (relative error below
1e-4 for N >= 10, tests/test_tx28.py checks it on synthetic waves).

All functions take the transient time axis ``time`` (n,) in s and waveforms (K, n) with a leading sample
axis, and return (K,) values, NaN where the window does not fit or the wave does not oscillate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optiyield.measure import tran

#: Uniform resampling points per period of the analysed harmonic (linear interpolation error O(1/n²)).
POINTS_PER_PERIOD = 64


def _grid(time: NDArray, start: float | None, stop: float | None, points: int) -> tuple[NDArray, float, float] | None:
    span = tran.window(time, start=start, stop=stop)
    if span is None:
        return None
    return np.linspace(span[0], span[1], points), span[0], span[1]


def _hann(points: int) -> NDArray[np.float64]:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(points) / (points - 1))


def hann_average(time: ArrayLike, wave: ArrayLike, start: float | None = None,
                 stop: float | None = None) -> NDArray[np.float64]:
    """Hann-weighted mean of ``wave`` (K, n) over [start, stop] (s), in its units.

    Periodic ripple with many periods in the window averages out without knowing its period; used for
    the average power of a supply that feeds an oscillator (``fn: hann_average_power``).
    """
    t = np.asarray(time, dtype=float)
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    grid = _grid(t, start, stop, tran.WINDOW_POINTS * 4)
    if grid is None:
        return np.full(w.shape[0], np.nan)
    g, t1, t2 = grid
    _, samples = tran.resample(t, w, t1, t2, g.size, periodic=False)
    weights = _hann(g.size)
    return samples @ weights / weights.sum()


def hann_phasor(time: ArrayLike, wave: ArrayLike, frequency: ArrayLike, harmonic: int = 1,
                start: float | None = None, stop: float | None = None) -> NDArray[np.complex128]:
    """Complex peak amplitude of harmonic ``harmonic`` of ``frequency`` (K,) Hz, Hann-weighted over [start, stop].

    ``wave`` (K, n); each sample has its own frequency. Harmonic 0 gives the weighted mean. NaN where the
    frequency is NaN or the window does not fit.
    """
    t = np.asarray(time, dtype=float)
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    f = np.broadcast_to(np.asarray(frequency, dtype=float), (w.shape[0],))
    out = np.full(w.shape[0], np.nan + 0j)
    span = tran.window(t, start=start, stop=stop)
    if span is None:
        return out
    t1, t2 = span
    for k in np.flatnonzero(np.isfinite(f) & (f > 0)):
        cycles = (t2 - t1) * f[k] * max(1, harmonic)
        points = int(max(tran.WINDOW_POINTS, np.ceil(cycles * POINTS_PER_PERIOD)))
        grid, samples = tran.resample(t, w[k:k + 1], t1, t2, points, periodic=False)
        weights = _hann(points)
        kernel = weights * np.exp(-2j * np.pi * harmonic * f[k] * (grid - t1))
        out[k] = (samples[0] @ kernel) / weights.sum() * (2.0 if harmonic else 1.0)
    return out


def osc_harmonic_power(time: ArrayLike, wave: ArrayLike, r: float, harmonic: int = 1, start: float | None = None,
                       stop: float | None = None) -> NDArray[np.float64]:
    """Power in W of harmonic ``harmonic`` of ``wave`` (V, (K, n)) across ``r`` ohm, |V_h|²/(2r).

    The fundamental is the wave's own frequency over [start, stop] (s); Hann-weighted Fourier.
    """
    f = tran.oscillation_frequency(time, wave, start, stop)
    return np.abs(hann_phasor(time, wave, f, harmonic, start, stop)) ** 2 / (2.0 * r)


def osc_delivered_power(time: ArrayLike, voltage: ArrayLike, current: ArrayLike, harmonic: int = 1,
                        start: float | None = None, stop: float | None = None) -> NDArray[np.float64]:
    """Power in W at harmonic ``harmonic`` flowing into a node: Re(V_h·conj(I_h))/2.

    ``voltage`` (V) and ``current`` (A, flowing into the node) are (K, n); the fundamental is the
    voltage's own frequency over [start, stop] (s).
    """
    f = tran.oscillation_frequency(time, voltage, start, stop)
    v = hann_phasor(time, voltage, f, harmonic, start, stop)
    i = hann_phasor(time, current, f, harmonic, start, stop)
    return np.real(v * np.conj(i)) / (2.0 if harmonic else 1.0)


def fit_amplitude(time: ArrayLike, wave: ArrayLike, f0: float, periods: int = 10,
                  stop: float | None = None) -> NDArray[np.float64]:
    """Peak amplitude of the ``f0`` (Hz) component of ``wave`` (K, n) from a window shorter than its period.

    The window is the last 1/``periods`` of one period of ``f0`` before ``stop`` (default: end of the
    run). ``wave`` is fitted, Hann-weighted least squares, with c + a·cos(2πf0t) + b·sin(2πf0t);
    components far above f0 (many cycles in the window, such as RF/LO mixing products) leak into the fit
    as 1/(cycles)³. Used for a mixer's IF current (100 MHz) from a 1 ns transient at 28 GHz. NaN when
    the window does not fit.
    """
    t = np.asarray(time, dtype=float)
    w = np.atleast_2d(np.asarray(wave, dtype=float))
    end = float(t[-1]) if stop is None else float(stop)
    span = tran.window(t, start=end - 1.0 / (periods * f0), stop=end)
    if span is None:
        return np.full(w.shape[0], np.nan)
    grid, samples = tran.resample(t, w, span[0], span[1], tran.WINDOW_POINTS * 4, periodic=False)
    x = 2.0 * np.pi * f0 * (grid - 0.5 * (span[0] + span[1]))
    basis = np.stack([np.ones_like(x), np.cos(x), np.sin(x)], axis=1)
    root = np.sqrt(_hann(grid.size))[:, None]
    coef, *_ = np.linalg.lstsq(basis * root, (samples * root.T).T, rcond=None)
    return np.hypot(coef[1], coef[2])
