"""Reductions over a sweep axis: values of shape (K, J) (K samples, J sweep points) to one value per
sample, shape (K, 1); NaN points are ignored."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray


def reduce_sweep(values: NDArray, how: str) -> NDArray:
    """Reduce (K, J) values over the sweep axis, ignoring NaN points: ``max``, ``min``, ``mean`` or
    ``span`` (max − min). Returns (K, 1); an all-NaN sample gives NaN, quietly."""
    x = np.atleast_2d(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "span":
            return np.nanmax(x, axis=1, keepdims=True) - np.nanmin(x, axis=1, keepdims=True)
        return {"max": np.nanmax, "min": np.nanmin, "mean": np.nanmean}[how](x, axis=1, keepdims=True)


def compression_point(pin_dbm: NDArray, pout_dbm: NDArray, db: float = 1.0, output: bool = True) -> NDArray:
    """The ``db``-dB compression point of a power sweep, dBm, one per sample (K, 1).

    ``pin_dbm`` and ``pout_dbm`` are (K, J) (input and output power per sweep point). The reference gain
    is the gain at the lowest input power; the point where the gain has fallen by ``db`` is interpolated
    linearly in dB. ``output`` selects the output-referred power (else input-referred). NaN when the gain
    never falls that far within the sweep.
    """
    pin = np.atleast_2d(np.asarray(pin_dbm, dtype=float))
    pout = np.atleast_2d(np.asarray(pout_dbm, dtype=float))
    pin, pout = np.broadcast_arrays(pin, pout)
    out = np.full((pin.shape[0], 1), np.nan)
    for k in range(pin.shape[0]):
        ok = np.isfinite(pin[k]) & np.isfinite(pout[k])
        if ok.sum() < 2:
            continue
        order = np.argsort(pin[k][ok])
        x, y = pin[k][ok][order], pout[k][ok][order]
        drop = (y - x) - (y[0] - x[0]) + db      # > 0 until compressed by `db`
        below = np.flatnonzero(drop <= 0)
        if below.size == 0 or below[0] == 0:
            continue
        j = below[0]
        frac = drop[j - 1] / (drop[j - 1] - drop[j])
        xi = x[j - 1] + frac * (x[j] - x[j - 1])
        yi = y[j - 1] + frac * (y[j] - y[j - 1])
        out[k, 0] = yi if output else xi
    return out
