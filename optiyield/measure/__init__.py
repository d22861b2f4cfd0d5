"""Measurement functions: simulated waveforms → figures of merit, vectorized over Monte Carlo samples.

Every function takes all K samples of a batched run at once (arrays with a leading sample axis) and
returns one value per sample, NaN where the figure does not exist. See :mod:`optiyield.measure.ac` and
:mod:`optiyield.measure.dc` for the conventions and units (SI: Hz, W, V, A, dB, degrees).
"""

from optiyield.measure.ac import (
    bandwidth_3db,
    gain_db_at,
    lf_gain_db,
    peak_frequency,
    peak_gain_db,
    phase_margin,
    sampled_bandwidth,
    unity_gain_frequency,
)
from optiyield.measure.dc import dc_power, total_dc_power

__all__ = [
    "bandwidth_3db",
    "dc_power",
    "gain_db_at",
    "lf_gain_db",
    "peak_frequency",
    "peak_gain_db",
    "phase_margin",
    "sampled_bandwidth",
    "total_dc_power",
    "unity_gain_frequency",
]
