"""The statistical model of manufacturing variation: which parameters move, how much, and how together.

A model is a list of :class:`Draw` entries. Each needs independent standard uniforms (one column for a
``"global"`` draw, one per target for a ``"mismatch"`` draw); :meth:`StatisticalModel.deviates` maps
them to standardized deviates (correlated normals, or uniforms in (-1, 1)) and
:meth:`StatisticalModel.apply` turns deviates into sampled parameter values around a nominal point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtri

from optiyield.stats.sampling import SamplingMethod, UniformSource

__all__ = ["Draw", "OutcomeSet", "StatisticalModel", "VariationError"]


class VariationError(ValueError):
    """An invalid statistical model, correlation, nominal point or deviate array."""


@dataclass(frozen=True)
class Draw:
    """One source of variation.

    ``name`` identifies the draw (correlations refer to it). ``dist`` is ``"normal"`` (``spread`` is the
    standard deviation) or ``"uniform"`` (``spread`` is the half-width tolerance: values lie within
    nominal ± spread). ``targets`` are the parameter names it perturbs. With ``relative=True`` the spread
    is a fraction of each target's |nominal| (0.05 means 5 %); otherwise it is absolute, in the
    parameter's SI unit. ``mode="global"`` uses ONE deviate shared by all targets (a process shift);
    ``mode="mismatch"`` uses an independent deviate per target (per-device mismatch).
    """

    name: str
    dist: Literal["normal", "uniform"]
    targets: tuple[str, ...]
    spread: float
    relative: bool = False
    mode: Literal["global", "mismatch"] = "global"

    def __post_init__(self) -> None:
        """Validate the entry (and accept any sequence of target names, stored as a tuple)."""
        if not isinstance(self.name, str) or not self.name:
            raise VariationError(f"draw name must be a non-empty string, got {self.name!r}")
        if isinstance(self.targets, str):
            raise VariationError(f"draw {self.name!r}: targets must be a sequence of names, not a string")
        object.__setattr__(self, "targets", tuple(self.targets))
        if self.dist not in ("normal", "uniform"):
            raise VariationError(f"draw {self.name!r}: dist must be 'normal' or 'uniform', got {self.dist!r}")
        if self.mode not in ("global", "mismatch"):
            raise VariationError(
                f"draw {self.name!r}: mode must be 'global' or 'mismatch', got {self.mode!r}"
            )
        if not self.targets:
            raise VariationError(f"draw {self.name!r} has no targets")
        bad = [t for t in self.targets if not isinstance(t, str) or not t]
        if bad:
            raise VariationError(f"draw {self.name!r}: target names must be non-empty strings, got {bad!r}")
        dup = sorted({t for t in self.targets if self.targets.count(t) > 1})
        if dup:
            raise VariationError(f"draw {self.name!r} lists targets more than once: {', '.join(dup)}")
        if not math.isfinite(self.spread) or self.spread < 0:
            raise VariationError(
                f"draw {self.name!r}: spread must be finite and non-negative, got {self.spread!r}"
            )

    @property
    def width(self) -> int:
        """Number of independent uniforms (deviate columns) this draw needs."""
        return 1 if self.mode == "global" else len(self.targets)


def _indices(s: slice) -> range:
    """Column indices covered by the slice ``s`` (start and stop always set here)."""
    return range(s.start, s.stop)


class StatisticalModel:
    """A validated set of :class:`Draw` entries plus correlations among the global normal draws.

    ``correlations`` are ``(draw_a, draw_b, rho)`` triples; only ``"global"`` ``"normal"`` draws may be
    correlated, |rho| < 1, each pair at most once, and the resulting correlation matrix must be
    positive definite. Deviate columns are laid out in draw order: one column per global draw,
    ``len(targets)`` columns per mismatch draw (in target order).
    """

    def __init__(self, draws: Sequence[Draw], correlations: Sequence[tuple[str, str, float]] = ()) -> None:
        """Validate ``draws`` and ``correlations``; raise :class:`VariationError` naming the culprit."""
        self._draws: tuple[Draw, ...] = tuple(draws)
        names = [d.name for d in self._draws]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise VariationError(f"duplicate draw names: {', '.join(dup)}")
        by_name = {d.name: d for d in self._draws}

        # Column layout.
        self._slices: dict[str, slice] = {}
        col = 0
        for d in self._draws:
            self._slices[d.name] = slice(col, col + d.width)
            col += d.width
        self._dims = col

        self._normal_cols = self._columns_where(lambda d: d.dist == "normal")
        self._uniform_cols = self._columns_where(lambda d: d.dist == "uniform")
        global_normal = [d.name for d in self._draws if d.dist == "normal" and d.mode == "global"]
        self._gn_names: tuple[str, ...] = tuple(global_normal)
        self._gn_cols = np.array([self._slices[n].start for n in global_normal], dtype=int)
        index = {n: i for i, n in enumerate(global_normal)}

        corr = np.eye(len(global_normal))
        seen: dict[frozenset[str], tuple[str, str, float]] = {}
        for entry in correlations:
            try:
                a, b, rho = entry
            except (TypeError, ValueError):
                raise VariationError(f"correlation {entry!r} is not a (draw_a, draw_b, rho) triple") from None
            for n in (a, b):
                if n not in by_name:
                    raise VariationError(f"correlation ({a!r}, {b!r}, {rho!r}) names unknown draw {n!r}")
            if a == b:
                raise VariationError(f"correlation ({a!r}, {b!r}, {rho!r}) correlates draw {a!r} with itself")
            for n in (a, b):
                d = by_name[n]
                if d.dist != "normal" or d.mode != "global":
                    raise VariationError(
                        f"correlation ({a!r}, {b!r}, {rho!r}): draw {n!r} is a {d.mode} {d.dist} draw; "
                        "only global normal draws may be correlated"
                    )
            try:
                rho = float(rho)
            except (TypeError, ValueError):
                raise VariationError(f"correlation ({a!r}, {b!r}, {rho!r}): rho is not a number") from None
            if not math.isfinite(rho) or abs(rho) >= 1.0:
                raise VariationError(f"correlation ({a!r}, {b!r}, {rho!r}): |rho| must be < 1")
            key = frozenset((a, b))
            if key in seen:
                raise VariationError(
                    f"correlation between {a!r} and {b!r} is listed twice: {seen[key]!r} and {(a, b, rho)!r}"
                )
            seen[key] = (a, b, rho)
            corr[index[a], index[b]] = corr[index[b], index[a]] = rho
        self._correlations: tuple[tuple[str, str, float], ...] = tuple(seen.values())
        self._corr = corr
        try:
            self._chol = np.linalg.cholesky(corr) if len(global_normal) else corr
            ok = True
        except np.linalg.LinAlgError:
            ok = False
        min_eig = float(np.linalg.eigvalsh(corr).min()) if len(global_normal) else 1.0
        if not ok or min_eig <= 0.0:
            raise VariationError(
                "correlation matrix of global normal draws "
                f"({', '.join(global_normal)}) is not positive definite: smallest eigenvalue {min_eig:.6g}"
            )
        self._parameters: tuple[str, ...] = tuple(sorted({t for d in self._draws for t in d.targets}))

    def _columns_where(self, pred: Callable[[Draw], bool]) -> np.ndarray:
        """Deviate column indices of the draws satisfying ``pred``, in order."""
        cols = [i for d in self._draws if pred(d) for i in _indices(self._slices[d.name])]
        return np.array(cols, dtype=int)

    @property
    def draws(self) -> tuple[Draw, ...]:
        """The draws, in column order."""
        return self._draws

    @property
    def correlations(self) -> tuple[tuple[str, str, float], ...]:
        """The validated ``(draw_a, draw_b, rho)`` correlations."""
        return self._correlations

    @property
    def correlation_matrix(self) -> np.ndarray:
        """Correlation matrix among the global normal draws, ordered as :attr:`correlated_draws`."""
        return self._corr.copy()

    @property
    def correlated_draws(self) -> tuple[str, ...]:
        """Names of the global normal draws, the rows/columns of :attr:`correlation_matrix`."""
        return self._gn_names

    @property
    def dims(self) -> int:
        """Number of independent uniforms per sample: 1 per global draw, len(targets) per mismatch draw."""
        return self._dims

    @property
    def parameters(self) -> tuple[str, ...]:
        """All targeted parameter names, sorted."""
        return self._parameters

    def columns(self, draw: str) -> slice:
        """The deviate columns belonging to the draw named ``draw``."""
        try:
            return self._slices[draw]
        except KeyError:
            raise VariationError(f"unknown draw {draw!r}") from None

    def _check_shape(self, a: np.ndarray, what: str) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        if a.ndim != 2 or a.shape[1] != self._dims:
            raise VariationError(f"{what} must have shape (n, {self._dims}), got {a.shape}")
        return a

    def deviates(self, u: np.ndarray) -> np.ndarray:
        """Map uniforms ``u`` of shape ``(n, dims)`` in (0, 1) to standardized deviates of the same shape.

        Normal columns become standard normals (``ndtri``), with the global normal draws then correlated
        through the Cholesky factor of the correlation matrix; uniform columns become ``2u - 1`` in (-1, 1).
        """
        u = self._check_shape(u, "uniforms")
        if u.size and (np.any(u <= 0.0) or np.any(u >= 1.0) or np.any(np.isnan(u))):
            raise VariationError("uniforms must lie strictly inside (0, 1)")
        z = np.empty_like(u)
        z[:, self._normal_cols] = ndtri(u[:, self._normal_cols])
        z[:, self._uniform_cols] = 2.0 * u[:, self._uniform_cols] - 1.0
        if self._gn_cols.size:
            z[:, self._gn_cols] = z[:, self._gn_cols] @ self._chol.T
        return z

    def apply(self, nominal: Mapping[str, float], z: np.ndarray) -> dict[str, np.ndarray]:
        """Sampled values of every targeted parameter: ``{name: array (n,)}``, keys sorted.

        ``value = nominal + sum over draws of z * spread * (|nominal| if relative else 1)``, so deltas of
        several draws on one parameter add. Untargeted parameters are not in the result.
        """
        z = self._check_shape(z, "deviates")
        missing = [p for p in self._parameters if p not in nominal]
        if missing:
            raise VariationError(f"nominal point lacks targeted parameters: {', '.join(missing)}")
        nom = {p: float(nominal[p]) for p in self._parameters}
        bad = [p for p, v in nom.items() if not math.isfinite(v)]
        if bad:
            raise VariationError(f"nominal values are not finite for: {', '.join(bad)}")
        out = {p: np.full(z.shape[0], nom[p]) for p in self._parameters}
        for d in self._draws:
            cols = self._slices[d.name]
            for i, t in enumerate(d.targets):
                col = cols.start if d.mode == "global" else cols.start + i
                scale = d.spread * (abs(nom[t]) if d.relative else 1.0)
                out[t] += z[:, col] * scale
        return out


class OutcomeSet:
    """A fixed set of n standardized deviates, for common random numbers (CRN).

    :meth:`apply` gives the same random deltas at any design point, so differences in yield between
    two design points are due to the design, not to sampling noise; optimizers use this. :meth:`extend`
    appends rows continuing the same uniform stream, for sequential sampling. Instances are immutable.
    """

    def __init__(self, model: StatisticalModel, z: np.ndarray, source: UniformSource) -> None:
        """Wrap deviates ``z`` (shape ``(n, model.dims)``) and the source positioned after their rows."""
        z = np.array(z, dtype=float)
        if z.ndim != 2 or z.shape[1] != model.dims:
            raise VariationError(f"deviates must have shape (n, {model.dims}), got {z.shape}")
        if source.dims != model.dims:
            raise VariationError(f"source has {source.dims} dims but the model needs {model.dims}")
        z.setflags(write=False)
        self._model = model
        self._z = z
        self._source = source

    @classmethod
    def draw(cls, model: StatisticalModel, n: int, method: SamplingMethod, seed: int) -> OutcomeSet:
        """Draw ``n`` outcomes of ``model`` from a fresh ``UniformSource(model.dims, method, seed)``."""
        source = UniformSource(model.dims, method, seed)
        return cls(model, model.deviates(source.draw(n)), source)

    @property
    def model(self) -> StatisticalModel:
        """The statistical model the deviates belong to."""
        return self._model

    @property
    def z(self) -> np.ndarray:
        """Standardized deviates, read-only array of shape ``(n, model.dims)``."""
        return self._z

    @property
    def n(self) -> int:
        """Number of outcomes (rows)."""
        return int(self._z.shape[0])

    @property
    def method(self) -> SamplingMethod:
        """Sampling method of the underlying uniform stream."""
        return self._source.method

    @property
    def seed(self) -> int:
        """Seed of the underlying uniform stream."""
        return self._source.seed

    def apply(self, nominal: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Sampled parameter values around ``nominal`` with these fixed deviates (as ``model.apply``)."""
        return self._model.apply(nominal, self._z)

    def extend(self, n_more: int) -> OutcomeSet:
        """A new set with these rows first and ``n_more`` further rows continuing the same stream.

        This set is unchanged; extending it twice by the same amount gives identical results.
        """
        source = self._source.copy()
        more = self._model.deviates(source.draw(n_more))
        return OutcomeSet(self._model, np.vstack([self._z, more]), source)

    def __len__(self) -> int:
        """Number of outcomes."""
        return self.n

    def __repr__(self) -> str:
        """Short description."""
        return f"OutcomeSet(n={self.n}, dims={self._model.dims}, method={self.method!r}, seed={self.seed})"
