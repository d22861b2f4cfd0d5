"""Seeded, continuable sources of standard uniform variates in the open interval (0, 1).

A :class:`UniformSource` is the only place randomness enters a Monte Carlo run: the statistical model
turns its uniforms into deviates with inverse CDFs, so every value is kept strictly inside (0, 1).
"""

from __future__ import annotations

import copy
import warnings
from typing import Literal

import numpy as np
from scipy.stats import qmc

__all__ = ["UNIFORM_EPS", "SamplingMethod", "UniformSource"]

#: Sampling method: ``"mc"`` (pseudo-random) or ``"sobol"`` (scrambled Sobol' quasi-random sequence).
SamplingMethod = Literal["mc", "sobol"]

#: Uniforms are clipped to ``[UNIFORM_EPS, 1 - UNIFORM_EPS]`` (2**-53, half the float64 machine epsilon),
#: so that ``ndtri(u)`` is finite (|z| < 8.3) and ``2u - 1`` lies strictly inside (-1, 1).
UNIFORM_EPS: float = 2.0**-53

_SOBOL_BALANCE_WARNING = r"The balance properties of Sobol' points require"


class UniformSource:
    """A reproducible stream of points uniform in the unit hypercube (0, 1)^dims.

    ``draw(n)`` returns the *next* n points, so ``draw(10)`` followed by ``draw(10)`` gives the same
    points as a single ``draw(20)`` on a fresh source with the same ``(dims, method, seed)``.

    * ``"mc"``: one :func:`numpy.random.default_rng` generator seeded with ``seed``.
    * ``"sobol"``: a scrambled :class:`scipy.stats.qmc.Sobol` engine (scrambling seeded with ``seed``)
      that continues its sequence across draws. Sobol' points keep their balance properties best when
      the total drawn is a power of two; other sizes are allowed and scipy's warning about it is
      silenced.
    """

    def __init__(self, dims: int, method: SamplingMethod, seed: int) -> None:
        """Create the source: ``dims`` uniforms per point (may be 0), ``method`` and an integer seed."""
        if isinstance(dims, bool) or not isinstance(dims, int | np.integer) or dims < 0:
            raise ValueError(f"dims must be a non-negative integer, got {dims!r}")
        if method not in ("mc", "sobol"):
            raise ValueError(f"method must be 'mc' or 'sobol', got {method!r}")
        self._dims = int(dims)
        self._method: SamplingMethod = method
        self._seed = int(seed)
        self._consumed = 0
        self._rng: np.random.Generator | None = None
        self._sobol: qmc.Sobol | None = None
        if self._dims == 0:
            return
        if method == "mc":
            self._rng = np.random.default_rng(self._seed)
        else:
            self._sobol = qmc.Sobol(self._dims, scramble=True, rng=np.random.default_rng(self._seed))

    @property
    def dims(self) -> int:
        """Number of uniforms per point (columns of every draw)."""
        return self._dims

    @property
    def method(self) -> SamplingMethod:
        """Sampling method, ``"mc"`` or ``"sobol"``."""
        return self._method

    @property
    def seed(self) -> int:
        """Seed the stream was created with."""
        return self._seed

    @property
    def consumed(self) -> int:
        """Number of points drawn so far (the position of the next point in the stream)."""
        return self._consumed

    def draw(self, n: int) -> np.ndarray:
        """Return the next ``n`` points as a float array of shape ``(n, dims)``, every value in (0, 1)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        if n == 0 or self._dims == 0:
            self._consumed += n
            return np.empty((n, self._dims), dtype=float)
        if self._rng is not None:
            u = self._rng.random((n, self._dims))
        else:
            assert self._sobol is not None
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_SOBOL_BALANCE_WARNING, category=UserWarning)
                u = self._sobol.random(n)
        self._consumed += n
        return np.clip(u, UNIFORM_EPS, 1.0 - UNIFORM_EPS)

    def copy(self) -> UniformSource:
        """An independent copy at the same stream position (drawing from it leaves this one untouched)."""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        """Show the configuration and stream position."""
        return (
            f"UniformSource(dims={self._dims}, method={self._method!r}, seed={self._seed}, "
            f"consumed={self._consumed})"
        )
