"""DC figures of merit from operating-point results, vectorized over Monte Carlo samples.

Inputs are arrays of shape (K,), one value per Monte Carlo sample, or scalars (e.g. ``0.0`` for a
grounded terminal), broadcast together. The result has the broadcast shape: (K,), or a NumPy scalar
(``np.float64``) when every input is a scalar. A non-finite result (failed simulation) is NaN; nothing
raises for data-dependent reasons, only for malformed shapes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["dc_power", "total_dc_power"]

#: (K,) float64 array, or a NumPy scalar when every input was a scalar.
Result = NDArray[np.float64] | np.float64


def _real_1d(name: str, value: ArrayLike) -> NDArray[np.float64]:
    """``value`` as a float64 array of at most one dimension, else ValueError."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real numeric, got dtype {arr.dtype}")
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array of shape (K,), got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def _finish(out: NDArray[np.float64]) -> Result:
    """Non-finite values → NaN; a 0-d result → NumPy scalar."""
    out = np.where(np.isfinite(out), out, np.nan)
    return out[()] if out.ndim == 0 else out


def dc_power(v_plus: ArrayLike, v_minus: ArrayLike, i_branch: ArrayLike) -> Result:
    """DC power in W delivered by a voltage source to the rest of the circuit.

    ``v_plus`` and ``v_minus`` are the voltages (V) of the source's + and - nodes, ``i_branch`` its
    ngspice branch current (A), e.g. ``i(vdd)``. ngspice's convention: the branch current is positive
    when current flows INTO the + terminal (through the source from + to -), so a supply delivering
    power has a negative branch current. Power = ``-(v_plus - v_minus) * i_branch``: positive when the
    source delivers power, negative when it absorbs it (e.g. a battery being charged).
    Shapes (K,) or scalar, broadcast together; raises ValueError if they do not broadcast.
    """
    vp = _real_1d("v_plus", v_plus)
    vm = _real_1d("v_minus", v_minus)
    ib = _real_1d("i_branch", i_branch)
    try:
        vp, vm, ib = np.broadcast_arrays(vp, vm, ib)
    except ValueError as exc:
        raise ValueError(
            f"v_plus, v_minus, i_branch shapes {vp.shape}, {vm.shape}, {ib.shape} do not broadcast"
        ) from exc
    with np.errstate(invalid="ignore", over="ignore"):
        return _finish(-(vp - vm) * ib)


def total_dc_power(supplies: Iterable[tuple[ArrayLike, ArrayLike, ArrayLike]]) -> Result:
    """Total DC power in W delivered by several voltage sources: the sum of :func:`dc_power` over them.

    ``supplies`` is an iterable of ``(v_plus, v_minus, i_branch)`` triples (V, V, A; ngspice branch
    current convention, see :func:`dc_power`), each of shape (K,) or scalar. A sample is NaN if any of
    its terms is. Raises ValueError for an empty iterable, an entry that is not a triple, or shapes
    that do not broadcast.
    """
    terms = []
    for n, supply in enumerate(supplies):
        try:
            v_plus, v_minus, i_branch = supply
        except (TypeError, ValueError) as exc:
            raise ValueError(f"supply #{n} must be a (v_plus, v_minus, i_branch) triple") from exc
        terms.append(np.asarray(dc_power(v_plus, v_minus, i_branch)))
    if not terms:
        raise ValueError("total_dc_power needs at least one (v_plus, v_minus, i_branch) triple")
    try:
        stacked = np.broadcast_arrays(*terms)
    except ValueError as exc:
        raise ValueError(f"supply shapes {[t.shape for t in terms]} do not broadcast") from exc
    with np.errstate(invalid="ignore", over="ignore"):
        return _finish(np.sum(stacked, axis=0))
