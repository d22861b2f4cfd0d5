"""Spec errors and the objectives built on them (Bandler, Zhang, Song, Biernacki, IEEE MTT 1990).

Every specification bound is one error function of the responses R (measures):

* upper bound S_u:  e = (R − S_u) / s
* lower bound S_l:  e = (S_l − R) / s

so e ≤ 0 means the bound is met, and the scale s (the spec's ``scale``, else |S|, else 1) makes errors
of different units comparable. A spec with both ``min`` and ``max`` gives two error functions. An
undefined response (NaN: failed simulation, no crossing) gets the error :data:`FAILED_ERROR`, a large
violation, so that optimizers see the outcome as failing without NaN arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optiyield.spec import SpecBound

#: Error assigned to an undefined response (it counts as a clear violation, in scaled units).
FAILED_ERROR = 10.0


@dataclass(frozen=True)
class ErrorFunction:
    """One bound of one spec: ``sign`` is +1 for an upper bound, −1 for a lower bound."""

    measure: str
    sign: int
    limit: float
    scale: float
    weight: float

    @property
    def label(self) -> str:
        """``gain_db ≥ 10`` style description."""
        return f"{self.measure} {'≤' if self.sign > 0 else '≥'} {self.limit:g}"


@dataclass(frozen=True)
class ErrorModel:
    """The error functions of a spec set, in a fixed order (J of them)."""

    functions: tuple[ErrorFunction, ...]

    @classmethod
    def from_specs(cls, specs: Mapping[str, SpecBound]) -> ErrorModel:
        """One error function per bound of every spec, scaled by ``scale`` or |limit| (1 for a limit of 0,
        or one so close to 0, below 1e-150, that dividing by it would overflow)."""
        functions = []
        for name, bound in specs.items():
            for sign, limit in ((-1, bound.min), (1, bound.max)):
                if limit is None:
                    continue
                scale = bound.scale if bound.scale is not None else (abs(limit) if abs(limit) > 1e-150 else 1.0)
                functions.append(ErrorFunction(name, sign, float(limit), float(scale), float(bound.weight)))
        return cls(tuple(functions))

    def __len__(self) -> int:
        return len(self.functions)

    @property
    def measures(self) -> tuple[str, ...]:
        """Measures the errors depend on (each once)."""
        return tuple(dict.fromkeys(f.measure for f in self.functions))

    @property
    def weights(self) -> np.ndarray:
        """Weights w_j, shape (J,)."""
        return np.array([f.weight for f in self.functions])

    def errors(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Errors e_j for responses of any shape S: returns shape S + (J,). NaN responses → FAILED_ERROR."""
        columns = []
        for f in self.functions:
            r = np.asarray(values[f.measure], dtype=float)
            e = f.sign * (r - f.limit) / f.scale
            columns.append(np.where(np.isfinite(e), e, FAILED_ERROR))
        return np.stack(columns, axis=-1)

    def jacobian(self, response_jacobian: Mapping[str, np.ndarray]) -> np.ndarray:
        """∂e_j/∂x from ∂R/∂x (each of shape S + (n,)): returns S + (J, n)."""
        return np.stack([f.sign * np.asarray(response_jacobian[f.measure]) / f.scale for f in self.functions],
                        axis=-2)


def minimax_value(errors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """max_j w_j e_j over the last axis: negative when every spec is met with margin."""
    return np.max(errors * weights, axis=-1)


def generalized_l1(errors: np.ndarray) -> np.ndarray:
    """Bandler's generalised ℓ1 function v of each outcome (last axis = specs).

    v = Σ_{j: e_j ≥ 0} e_j when some spec is violated (v ≥ 0), else v = −(Σ_j 1/(−e_j))^(−1) < 0.
    v > 0 exactly when the outcome fails; |v| measures how far it is from the acceptability boundary.
    """
    e = np.asarray(errors, dtype=float)
    violated = e >= 0
    failing = violated.any(axis=-1)
    positive = np.where(violated, e, 0.0).sum(axis=-1)
    inverse = np.where(violated, 0.0, 1.0 / np.where(violated, -1.0, -e))  # 1/(−e_j) for met bounds
    with np.errstate(divide="ignore"):
        harmonic = -1.0 / inverse.sum(axis=-1)
    return np.where(failing, positive, harmonic)


def alpha_weights(v: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Multipliers α_i = 1/|v_i| (Bandler eq. 16), fixed at the start of a phase.

    |v| is floored at ``floor`` so outcomes sitting on the boundary do not get infinite weight.
    """
    return 1.0 / np.maximum(np.abs(v), floor)


def one_sided_l1(errors: np.ndarray, alpha: np.ndarray) -> float:
    """U = Σ_i α_i Σ_{j: e_ij > 0} e_ij: the one-sided ℓ1 yield objective over outcomes (axis 0)."""
    return float(np.sum(alpha[:, None] * np.maximum(errors, 0.0)))


def passes(errors: np.ndarray) -> np.ndarray:
    """True where an outcome meets every bound (all e_j ≤ 0)."""
    return np.all(errors <= 0, axis=-1)


def weighted_penalty(errors: np.ndarray, weights: np.ndarray, active: Sequence[int] | None = None) -> float:
    """Σ_j w_j max(0, e_j)² over the ``active`` error functions (all by default): the staged-BFGS
    objective, smooth where it is zero."""
    e = np.asarray(errors, dtype=float)
    w = np.asarray(weights, dtype=float)
    if active is not None:
        e, w = e[..., list(active)], w[list(active)]
    return float(np.sum(w * np.maximum(e, 0.0) ** 2))
