"""Operating-point figures of single devices, from ngspice's instance quantities, vectorized over samples.

Every input is a (K,) array of one instance quantity at the operating point, as ngspice reports it for a
BSIM4 MOSFET (``vgs``, ``vds``, ``vth``, ``vdsat``, ``id``, ``gm``, …), a BJT (``vbe``, ``vbc``, ``ic``, ``gm``,
…) or a diode (``vd``, ``id``, ``gd``). ngspice gives MOSFET and BJT quantities in the NMOS/NPN sense: a
conducting PMOS shows positive Vgs, Vds, Vth, Vdsat and Id, a PNP positive Vbe (checked on ngspice 39,
tests/test_measure_device.py), so each function holds for both polarities. A device conducting in reverse
(Vds < 0, drain and source swapped by the bias) is judged from the terminal that acts as its source, as the
region check does (:mod:`optiyield.optim.region`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["bjt_vcb", "gm_over_id", "overdrive", "quantity", "sat_margin"]


def quantity(value: ArrayLike) -> NDArray[np.float64]:
    """The instance quantity itself (SI units: V, A, S, F)."""
    return np.asarray(value, dtype=float)


def sat_margin(vds: ArrayLike, vdsat: ArrayLike) -> NDArray[np.float64]:
    """Saturation margin of a MOSFET, |Vds| − Vdsat in V: positive in saturation, negative in triode."""
    return np.abs(np.asarray(vds, dtype=float)) - np.asarray(vdsat, dtype=float)


def overdrive(vgs: ArrayLike, vds: ArrayLike, vth: ArrayLike) -> NDArray[np.float64]:
    """Gate overdrive of a MOSFET, Vgs − Vth in V (Vgd − Vth when it conducts in reverse, Vds < 0):
    positive above threshold, negative in cutoff."""
    vgs, vds = np.asarray(vgs, dtype=float), np.asarray(vds, dtype=float)
    return np.where(vds < 0, vgs - vds, vgs) - np.asarray(vth, dtype=float)


def gm_over_id(gm: ArrayLike, current: ArrayLike) -> NDArray[np.float64]:
    """Transconductance efficiency gm/|I| in 1/V (I the drain current of a MOSFET, the collector current of
    a BJT); NaN for a device carrying no current."""
    current = np.abs(np.asarray(current, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(current > 0, np.asarray(gm, dtype=float) / current, np.nan)


def bjt_vcb(vbc: ArrayLike) -> NDArray[np.float64]:
    """Collector-base reverse bias of a BJT, −Vbc in V (NPN sense): positive in the forward-active region,
    negative when the collector-base junction is forward biased (saturation)."""
    return -np.asarray(vbc, dtype=float)
