"""Figures of a digitally controlled variable-gain amplifier (VGA) over its gain states.

A B-bit VGA has N = 2^B control states. A testbench simulates each state as one point of a sweep
(docs/testbench.md, "Sweeps"), so a measure holds one value per sample and sweep point, shape (K, J).
The functions below reduce the state axis to one value per sample, shape (K, 1). They take the
swept parameter's values ``st`` (shape (1, J) or (J,)) so that they can pick the state points out of a
sweep that also holds other points (circuits/vga_cs: st = 0..15 are the 16 codes, st ≥ 16 an
input-power sweep at code 0). A state point is a point whose ``st`` is an integer in [0, ``states``).

Definitions (the usual phased-array VGA figures; see docs/circuits.md, VGA section). With G_i the gain
(|S21| in dB) and φ_i the transmission phase (degrees) of state i = 0..N−1:

* ideal gain of state i: a straight line through the two end states, G_ideal,i = G_0 + i·Δ with the
  gain step Δ = (G_{N−1} − G_0)/(N − 1) (negative when the gain falls with the code);
* RMS gain error  = sqrt( 1/N · Σ_i (G_i − G_ideal,i)² ), dB;
* RMS phase error = sqrt( 1/N · Σ_i (φ_i − φ_0)² ), degrees: a VGA should change only the gain, so
  every state's phase should equal the reference state's (φ unwrapped around φ_0 first);
* phase variation = (max_i φ_i − min_i φ_i)/2, degrees: the ± band that holds every state's phase.

The knowledge-aware VGA paper (DESIGN.md §5) gives its own equations 6 and 8 for the RMS gain and
phase errors; we did not find the paper's text, so these are the textbook forms, labelled as ours.

Also here: the input 1-dB compression point and IIP3 of an input-power sweep at one state. Rollett's
stability factor and the phase of an S-parameter are general RF figures (:mod:`optiyield.measure.rf`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optiyield.measure.sweep import compression_point

#: Gain states of a 4-bit VGA.
STATES = 16


def _rows(x: ArrayLike) -> NDArray[np.float64]:
    """Values as float (K, J)."""
    return np.atleast_2d(np.asarray(x, dtype=float))


def _columns(st: ArrayLike, width: int, states: int = STATES) -> NDArray[np.intp]:
    """Column indices of the state points 0..states−1 in a sweep of ``width`` points, in state order.

    Raises ValueError when a state is missing (a VGA figure needs every state)."""
    values = np.asarray(st, dtype=float).reshape(-1)
    if values.size == 1 and width > 1:  # a scalar sweep value cannot label several columns
        raise ValueError("the sweep parameter must have one value per sweep point")
    cols = []
    for i in range(states):
        hit = np.flatnonzero(np.abs(values - i) < 1e-9)
        if hit.size == 0:
            raise ValueError(f"state {i} is not among the sweep values {values.tolist()}")
        cols.append(int(hit[0]))
    return np.array(cols, dtype=np.intp)


def state_values(x: ArrayLike, st: ArrayLike, states: int = STATES) -> NDArray[np.float64]:
    """The values of the state points of x (K, J) in state order, (K, states)."""
    a = _rows(x)
    return a[:, _columns(st, a.shape[1], states)]


def state_max(x: ArrayLike, st: ArrayLike) -> NDArray[np.float64]:
    """Largest value over the 16 states (e.g. the worst S11 in dB), (K, 1); NaN if a state is NaN."""
    return np.max(state_values(x, st), axis=1, keepdims=True)


def state_min(x: ArrayLike, st: ArrayLike) -> NDArray[np.float64]:
    """Smallest value over the 16 states, (K, 1); NaN if a state is NaN."""
    return np.min(state_values(x, st), axis=1, keepdims=True)


def sweep_at(x: ArrayLike, st: ArrayLike, value: ArrayLike) -> NDArray[np.float64]:
    """The column of x (K, J) at the sweep point whose value equals ``value``, (K, 1)."""
    a = _rows(x)
    values = np.asarray(st, dtype=float).reshape(-1)
    hit = np.flatnonzero(np.abs(values - float(np.asarray(value).reshape(-1)[0])) < 1e-9)
    if hit.size == 0:
        raise ValueError(f"{float(np.asarray(value).reshape(-1)[0])} is not among the sweep values")
    return a[:, hit[:1]]


def gain_step(gain_db: ArrayLike, st: ArrayLike) -> NDArray[np.float64]:
    """Mean gain step between adjacent states, |G_15 − G_0|/15 in dB, (K, 1)."""
    g = state_values(gain_db, st)
    return np.abs(g[:, -1:] - g[:, :1]) / (g.shape[1] - 1)


def rms_gain_error(gain_db: ArrayLike, st: ArrayLike) -> NDArray[np.float64]:
    """RMS gain error in dB against the straight line through the end states, (K, 1) (module docstring)."""
    g = state_values(gain_db, st)
    n = g.shape[1]
    ideal = g[:, :1] + np.arange(n)[None, :] * (g[:, -1:] - g[:, :1]) / (n - 1)
    return np.sqrt(np.mean((g - ideal) ** 2, axis=1, keepdims=True))


def _relative_phase(phase_deg: ArrayLike, st: ArrayLike) -> NDArray[np.float64]:
    """State phases minus state 0's, wrapped into (−180°, 180°], (K, states)."""
    p = state_values(phase_deg, st)
    return (p - p[:, :1] + 180.0) % 360.0 - 180.0


def rms_phase_error(phase_deg: ArrayLike, st: ArrayLike) -> NDArray[np.float64]:
    """RMS phase error in degrees: RMS over the states of the phase relative to state 0, (K, 1)."""
    d = _relative_phase(phase_deg, st)
    return np.sqrt(np.mean(d ** 2, axis=1, keepdims=True))


def phase_variation(phase_deg: ArrayLike, st: ArrayLike) -> NDArray[np.float64]:
    """Half the peak-to-peak spread of the state phases (the ± band), degrees, (K, 1)."""
    d = _relative_phase(phase_deg, st)
    return (np.max(d, axis=1, keepdims=True) - np.min(d, axis=1, keepdims=True)) / 2.0


def _power_points(pin_dbm: ArrayLike, pout_dbm: ArrayLike, st: ArrayLike, ref: float, first: float
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Input and output power (K, P), dBm, of the power-sweep points: the reference point st == ref, then
    the points st ≥ first in sweep order."""
    values = np.asarray(st, dtype=float).reshape(-1)
    cols = np.concatenate([np.flatnonzero(np.abs(values - ref) < 1e-9)[:1], np.flatnonzero(values >= first - 1e-9)])
    pin, pout = np.broadcast_arrays(_rows(pin_dbm), _rows(pout_dbm))
    return pin[:, cols], pout[:, cols]


def p1db_in(pin_dbm: ArrayLike, pout_dbm: ArrayLike, st: ArrayLike, ref: float = 0.0, first: float = 16.0
            ) -> NDArray[np.float64]:
    """Input-referred 1-dB compression point, dBm, (K, 1), of a power sweep inside a VGA sweep.

    The points are the small-signal reference (sweep value ``ref``) and the sweep values ≥ ``first``, in
    increasing input power (the reference is the lowest); the gain is interpolated linearly in dB between
    points (:func:`optiyield.measure.sweep.compression_point`). NaN when the gain never falls by 1 dB or a
    point is missing. ``pin_dbm`` may be the swept available power (1, J) or a measured power (K, J).
    """
    pin, pout = _power_points(pin_dbm, pout_dbm, st, ref, first)
    out = compression_point(pin, pout, 1.0, output=False)
    out[~(np.isfinite(pin) & np.isfinite(pout)).all(axis=1)] = np.nan
    return out


def iip3_from_compression(pin_dbm: ArrayLike, pout_dbm: ArrayLike, st: ArrayLike, ref: float = 0.0,
                          first: float = 16.0, max_drop_db: float = 1.0) -> NDArray[np.float64]:
    """Input-referred third-order intercept, dBm, (K, 1), from the gain compression of a single tone.

    For a memoryless cubic y = a1·x + a3·x³ the fundamental of a tone of power P is scaled by
    g = 1 + (3/4)(a3/a1)A², and the two-tone IIP3 is P_IIP3 = P/|g − 1| (same power units). The
    power-sweep points (see :func:`p1db_in`) whose gain moved by less than ``max_drop_db`` give
    c_i = |g_i − 1| = |10^(ΔG_i/20) − 1|; P_IIP3 is the least-squares fit of c = P/P_IIP3 through the
    origin, 1/P_IIP3 = Σ c_i P_i / Σ P_i². NaN when no point qualifies. An estimate: memory effects and
    fifth-order terms make a real two-tone IIP3 differ (docs/circuits.md, VGA section).
    """
    pin, pout = _power_points(pin_dbm, pout_dbm, st, ref, first)
    gain = pout - pin
    comp = gain - gain[:, :1]
    p_w = 1e-3 * 10.0 ** (pin[:, 1:] / 10.0)
    c = np.abs(10.0 ** (comp[:, 1:] / 20.0) - 1.0)
    use = np.isfinite(c) & np.isfinite(p_w) & (np.abs(comp[:, 1:]) < max_drop_db) & (c > 0)
    num = np.where(use, c * p_w, 0.0).sum(axis=1)
    den = np.where(use, p_w ** 2, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p3 = np.where((num > 0) & (den > 0), den / num, np.nan)
        return (10.0 * np.log10(p3 / 1e-3))[:, None]
