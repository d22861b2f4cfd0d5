"""RF two-port figures from plain ``.ac`` and ``.noise`` analyses, vectorised over Monte Carlo samples.

Why not ``.sp``: an ngspice S-parameter analysis numbers its ports globally, so a deck with K copies of
a testbench cannot hold K independent two-ports, and ngspice 39's ``.sp`` noise (NF, NFmin) is wrong
(``shared/reference/ngspice-findings.md`` §4). The same figures follow exactly from one ``.ac`` run of
the circuit terminated the way an S-parameter port terminates it:

* port 1: an ideal voltage source of open-circuit voltage ``V_s`` (``ac 1``) behind the reference
  impedance ``Z_s`` (a resistor ``RS``), driving the input node ``in``;
* port 2: the load ``Z_L`` (a resistor ``RL``, ``noisy=0``) at the output node ``out``.

With power waves (Kurokawa) ``a = (V + Z I)/(2 sqrt(Re Z))``, ``b = (V - Z* I)/(2 sqrt(Re Z))``, the
current ``I`` flowing into the two-port, and port 2 terminated in its reference (``a2 = 0``):

* ``S11 = (Z_in - Z_s*) / (Z_in + Z_s)`` with ``Z_in = V_in / I_in``; for a real ``Z_s`` this is
  ``S11 = 2 V_in / V_s - 1`` (because ``I_in = (V_s - V_in) / Z_s``);
* ``S21 = 2 sqrt(Re Z_s Re Z_L) / Z_L * V_out / V_s``; for real ports ``2 (V_out / V_s) sqrt(Z_s / Z_L)``,
  and for equal real ports ``2 V_out / V_s``;
* transducer gain ``G_T = P_load / P_avs = 4 |V_out / V_s|^2 Re(Z_s) Re(1 / Z_L)``, i.e.
  ``|2 V_out / V_s|^2 Z_s / Z_L`` for real impedances. ``G_T = |S21|^2`` whenever port 2 is terminated
  in its reference impedance, which is how these decks are built (Spectre's ``gt()`` of the
  S-matrix with the port impedances as source and load gives the same number).

Noise figure from ``.noise`` (``.noise v(out) VS …``): ngspice's ``inoise_spectrum`` is the total
output noise referred to the open-circuit voltage of ``VS``, and it includes the thermal noise of the
source impedance at the simulation temperature ``T`` (300.15 K at 27 °C). Hence the noise factor with
the source at ``T``::

    F_T = inoise^2 / (4 k T Re Z_s)

The IEEE definition (and Spectre's, whose ports default to a noise temperature of 16.85 °C) puts the
source at ``T0 = 290 K`` while the circuit stays at ``T``. The added noise does not change, so::

    F_IEEE = 1 + (F_T - 1) T / T0

For an LNA with NF ≈ 0.8 dB this is 0.025 dB above ``F_T``. Scaling the whole ``inoise^2`` by
``T / T0`` instead (``10 log10(300.15/290) = 0.15 dB``) would also scale the source's own noise and
is only right for a noiseless two-port. A noiseless load (``noisy=0``) is needed: a two-port noise
figure does not count the load's noise.

Conventions (as :mod:`optiyield.measure.ac`): ``freq`` (n,) in Hz; node voltages and currents are
complex arrays (K, n), one row per sample (a 1-D array is one sample and gives a scalar); results are
float64 (K,), in dB or Hz; a sample with any non-finite value, or for which the figure does not exist,
is NaN. Nothing here raises for data-dependent reasons.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BOLTZMANN",
    "T0_IEEE",
    "ZERO_CELSIUS",
    "gain_bandwidth",
    "max_db",
    "min_db",
    "noise_factor",
    "noise_figure_at_db",
    "noise_figure_min_db",
    "reflection_coefficient",
    "s11_from_current",
    "s11_from_voltage",
    "s21",
    "to_db",
    "transducer_gain",
    "value_db_at",
]

#: Boltzmann constant, J/K (exact, SI 2019).
BOLTZMANN: float = 1.380649e-23
#: Reference source temperature of the IEEE noise-figure definition, K.
T0_IEEE: float = 290.0
#: 0 °C in K.
ZERO_CELSIUS: float = 273.15

_C = NDArray[np.complex128]
_F = NDArray[np.float64]


def _complex(x: ArrayLike) -> _C:
    return np.asarray(x, dtype=np.complex128)


def reflection_coefficient(z_in: ArrayLike, z0: complex) -> _C:
    """Power-wave reflection coefficient ``(Z_in - Z0*) / (Z_in + Z0)`` (complex, same shape as ``z_in``)."""
    z = _complex(z_in)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (z - np.conj(z0)) / (z + z0)


def s11_from_current(v_in: ArrayLike, i_in: ArrayLike, z0: complex) -> _C:
    """S11 from the input node voltage and the current flowing into the input: ``Z_in = V_in / I_in``.

    ``i_in`` is the current *delivered* to the circuit (ngspice's ``i(VS)`` flows the other way, so
    pass ``-i(VS)``). Valid for a complex reference impedance ``z0``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return reflection_coefficient(_complex(v_in) / _complex(i_in), z0)


def s11_from_voltage(v_in: ArrayLike, v_s: ArrayLike) -> _C:
    """S11 for a real reference impedance equal to the source resistance: ``2 V_in / V_s - 1``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * _complex(v_in) / _complex(v_s) - 1.0


def s21(v_out: ArrayLike, v_s: ArrayLike, z_s: complex, z_l: complex) -> _C:
    """Power-wave S21 ``2 sqrt(Re Z_s Re Z_L) / Z_L * V_out / V_s`` (port 2 terminated in ``Z_L``).

    For real ports this is ``2 (V_out / V_s) sqrt(Z_s / Z_L)``; for equal real ports ``2 V_out / V_s``.
    """
    scale = 2.0 * np.sqrt(np.real(z_s) * np.real(z_l)) / z_l
    with np.errstate(divide="ignore", invalid="ignore"):
        return scale * _complex(v_out) / _complex(v_s)


def transducer_gain(v_out: ArrayLike, v_s: ArrayLike, z_s: complex, z_l: complex) -> _F:
    """Transducer power gain (linear) ``4 |V_out / V_s|^2 Re(Z_s) Re(1 / Z_L)`` = |S21|^2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(_complex(v_out) / _complex(v_s)) ** 2
    return 4.0 * ratio * float(np.real(z_s)) * float(np.real(1.0 / complex(z_l)))


def _rows(x: ArrayLike) -> tuple[NDArray[np.generic], bool]:
    a = np.asarray(x)
    scalar = a.ndim == 1
    return (a[np.newaxis, :] if scalar else a), scalar


def _finish(out: _F, scalar: bool) -> _F | np.float64:
    return out[0] if scalar else out


def _finite_rows(a: NDArray[np.generic]) -> NDArray[np.bool_]:
    return np.isfinite(a).all(axis=1)


def _power_db(power: ArrayLike) -> _F:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(np.asarray(power, dtype=float))


def to_db(x: ArrayLike) -> _F:
    """``20 log10 |x|`` elementwise (-inf for 0, no warnings): the dB value of S11, S21, a voltage ratio."""
    return _power_db(np.abs(np.asarray(x)) ** 2)


def min_db(x: ArrayLike, power: bool = False) -> _F | np.float64:
    """Smallest value over the sweep in dB: ``20 log10 |x|`` (``10 log10 x`` when ``power``).

    The minimum over the simulated points (no refinement between points), like Spectre's ``ymin``.
    ``x`` (K, n) complex or real; returns (K,); NaN for a row with a non-finite value.
    """
    a, scalar = _rows(x)
    db = _power_db(np.abs(a) if power else np.abs(a) ** 2)
    out = np.min(db, axis=1)
    out[~_finite_rows(a)] = np.nan
    return _finish(out, scalar)


def max_db(x: ArrayLike, power: bool = False) -> _F | np.float64:
    """Largest value over the sweep in dB (see :func:`min_db`), like Spectre's ``ymax``."""
    a, scalar = _rows(x)
    db = _power_db(np.abs(a) if power else np.abs(a) ** 2)
    out = np.max(db, axis=1)
    out[~_finite_rows(a)] = np.nan
    return _finish(out, scalar)


def value_db_at(freq: ArrayLike, x: ArrayLike, f: float, power: bool = False) -> _F | np.float64:
    """``20 log10 |x|`` (``10 log10 x`` when ``power``) at frequency ``f`` in Hz.

    Linear interpolation on the dB values in log10(f) (in f on a lin sweep from 0 Hz); NaN when ``f``
    is outside the sweep (1e-9 relative tolerance at the ends) or the row has a non-finite value.
    """
    fr = np.asarray(freq, dtype=float)
    a, scalar = _rows(x)
    out = np.full(a.shape[0], np.nan)
    fq = float(f)
    if not fr[0] * (1 - 1e-9) <= fq <= fr[-1] * (1 + 1e-9):
        return _finish(out, scalar)
    fq = min(max(fq, float(fr[0])), float(fr[-1]))
    db = _power_db(np.abs(a) if power else np.abs(a) ** 2)
    j = int(np.searchsorted(fr, fq))
    if fr[j] == fq:
        out = db[:, j].copy()
    else:
        f0, f1 = float(fr[j - 1]), float(fr[j])
        t = np.log10(fq / f0) / np.log10(f1 / f0) if f0 > 0 else fq / f1
        out = (1.0 - t) * db[:, j - 1] + t * db[:, j]
    out[~_finite_rows(a)] = np.nan
    return _finish(out, scalar)


def gain_bandwidth(freq: ArrayLike, gain_db: ArrayLike, drop: float = 3.0) -> _F | np.float64:
    """Width in Hz of the band where a gain (dB) is within ``drop`` dB of its maximum.

    AICircuit's LNA bandwidth (their Ocean script): all crossings of ``max - drop`` over the sweep,
    located by linear interpolation in f between simulated points, and the band is the last crossing
    minus the first. NaN when there are fewer than two crossings inside the sweep (an edge outside the
    sweep; Spectre would then report 0) or for a row with a non-finite value.
    """
    fr = np.asarray(freq, dtype=float)
    g, scalar = _rows(np.asarray(gain_db, dtype=float))
    ok = _finite_rows(g)
    g = np.where(ok[:, np.newaxis], g, 0.0)
    thr = g.max(axis=1) - drop
    above = g >= thr[:, np.newaxis]
    change = above[:, 1:] != above[:, :-1]  # (K, n-1): a crossing between points i and i+1
    has = change.any(axis=1)
    n1 = change.shape[1]
    first = np.argmax(change, axis=1)
    last = n1 - 1 - np.argmax(change[:, ::-1], axis=1)
    rows = np.arange(g.shape[0])

    def where(i: NDArray[np.intp]) -> _F:
        y0, y1 = g[rows, i], g[rows, i + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.clip(np.nan_to_num((thr - y0) / (y1 - y0), nan=0.0), 0.0, 1.0)
        return fr[i] + t * (fr[i + 1] - fr[i])

    out = where(last) - where(first)
    out[~(ok & has & (last > first))] = np.nan
    return _finish(out, scalar)


def noise_factor(inoise: ArrayLike, z_s: complex, temp: float, t0: float | None = T0_IEEE) -> _F:
    """Noise factor (linear) from the input-referred noise density ``inoise`` (V/√Hz, (K, n) or (n,)).

    ``F_T = inoise^2 / (4 k temp Re Z_s)`` with ``temp`` the simulation temperature in K (the source
    impedance is noisy at ``temp``). With ``t0`` (K) the source is moved to ``t0``:
    ``F = 1 + (F_T - 1) temp / t0``, the IEEE definition for ``t0 = 290``. ``t0=None`` returns ``F_T``.
    """
    f_t = np.abs(np.asarray(inoise)) ** 2 / (4.0 * BOLTZMANN * temp * float(np.real(z_s)))
    return f_t if t0 is None else 1.0 + (f_t - 1.0) * temp / t0


def noise_figure_min_db(
    inoise: ArrayLike, z_s: complex, temp: float, t0: float | None = T0_IEEE
) -> _F | np.float64:
    """Minimum over the sweep of the noise figure ``10 log10 F`` in dB (see :func:`noise_factor`).

    This is the minimum of the swept NF (AICircuit's ``NFMin``), not the two-port's NFmin at the
    optimum source impedance.
    """
    a, scalar = _rows(inoise)
    out = min_db(noise_factor(a, z_s, temp, t0), power=True)
    return _finish(np.atleast_1d(out), scalar)


def noise_figure_at_db(
    freq: ArrayLike, inoise: ArrayLike, f: float, z_s: complex, temp: float, t0: float | None = T0_IEEE
) -> _F | np.float64:
    """Noise figure in dB at frequency ``f`` (interpolated on dB in log10 f; NaN outside the sweep)."""
    return value_db_at(freq, noise_factor(inoise, z_s, temp, t0), f, power=True)


def _s(db: ArrayLike, deg: ArrayLike) -> NDArray[np.complex128]:
    return 10.0 ** (np.asarray(db, dtype=float) / 20.0) * np.exp(1j * np.deg2rad(np.asarray(deg, dtype=float)))


def rollett_k(s11_db: ArrayLike, s11_deg: ArrayLike, s21_db: ArrayLike, s21_deg: ArrayLike,
              s12_db: ArrayLike, s12_deg: ArrayLike, s22_db: ArrayLike, s22_deg: ArrayLike) -> NDArray[np.float64]:
    """Rollett stability factor K = (1 − |S11|² − |S22|² + |Δ|²) / (2 |S12 S21|), Δ = S11 S22 − S12 S21,
    from magnitudes in dB and phases in degrees (elementwise). Unconditionally stable when K > 1 and
    |Δ| < 1 (see :func:`stability_delta`)."""
    s11, s21, s12, s22 = _s(s11_db, s11_deg), _s(s21_db, s21_deg), _s(s12_db, s12_deg), _s(s22_db, s22_deg)
    delta = s11 * s22 - s12 * s21
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1 - np.abs(s11) ** 2 - np.abs(s22) ** 2 + np.abs(delta) ** 2) / (2 * np.abs(s12 * s21))


def stability_delta(s11_db: ArrayLike, s11_deg: ArrayLike, s21_db: ArrayLike, s21_deg: ArrayLike,
                    s12_db: ArrayLike, s12_deg: ArrayLike, s22_db: ArrayLike, s22_deg: ArrayLike
                    ) -> NDArray[np.float64]:
    """|Δ| = |S11 S22 − S12 S21| (linear), the second condition of Rollett's test (|Δ| < 1)."""
    delta = _s(s11_db, s11_deg) * _s(s22_db, s22_deg) - _s(s12_db, s12_deg) * _s(s21_db, s21_deg)
    return np.abs(delta)


def phase_deg_at(freq: ArrayLike, x: ArrayLike, f: float) -> NDArray[np.float64]:
    """Phase of a complex response x (K, n) at frequency f, degrees in (−180, 180], (K,).

    The response is interpolated linearly in f (real and imaginary parts) between the two nearest
    sweep points; NaN outside the sweep or for a non-finite row."""
    fr = np.asarray(freq, dtype=float)
    a = np.atleast_2d(np.asarray(x, dtype=complex))
    out = np.full(a.shape[0], np.nan)
    fq = float(f)
    if not fr[0] * (1 - 1e-9) <= fq <= fr[-1] * (1 + 1e-9):
        return out
    fq = min(max(fq, float(fr[0])), float(fr[-1]))
    j = int(np.searchsorted(fr, fq))
    if fr[j] == fq:
        v = a[:, j]
    else:
        t = (fq - fr[j - 1]) / (fr[j] - fr[j - 1])
        v = (1 - t) * a[:, j - 1] + t * a[:, j]
    out = np.degrees(np.angle(v))
    out[~np.all(np.isfinite(a), axis=1)] = np.nan
    return out
