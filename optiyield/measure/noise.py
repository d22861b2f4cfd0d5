"""Noise figures from an ngspice ``.noise`` analysis (spectral densities in V/√Hz or A/√Hz)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def noise_density_at(freq: ArrayLike, density: ArrayLike, f: float) -> NDArray[np.float64]:
    """Noise spectral density at frequency ``f`` (Hz), interpolated linearly in log-log.

    ``freq`` has shape (n,), ``density`` (K, n) — one ``onoise_spectrum``/``inoise_spectrum`` per
    sample. Returns shape (K,); NaN where ``f`` lies outside the sweep or the density is not finite.
    """
    freq = np.asarray(freq, dtype=float)
    dens = np.atleast_2d(np.abs(np.asarray(density)))
    if dens.shape[-1] != freq.shape[0]:
        raise ValueError(f"density has {dens.shape[-1]} points but freq has {freq.shape[0]}")
    out = np.full(dens.shape[0], np.nan)
    if not (freq[0] * (1 - 1e-9) <= f <= freq[-1] * (1 + 1e-9)):
        return out
    ok = np.isfinite(dens).all(axis=1) & (dens > 0).all(axis=1)
    logf = np.log10(freq)
    for k in np.flatnonzero(ok):
        out[k] = 10 ** np.interp(np.log10(f), logf, np.log10(dens[k]))
    return out
