"""Worst-case points as statistical corners: per spec bound, the parameter values a designer can simulate.

:func:`search` finds every bound's worst-case point of a circuit limit state (the searches from the nominal,
then, with ``explore`` > 0, further searches from failing points of a scaled-sigma sample that no known
worst-case point explains: the failure regions the descent from the nominal cannot see), and keeps per bound
the nearest point found. :func:`corners` turns them into :class:`Corner` records: the worst-case point in
parameter values (every per-sample parameter of the spec: design values at the design point, statistical
parameters moved to the worst case), its distance β and linearized yield Φ(β), and the measure there (≈ the
bound at a converged point).

Export, for any SPICE:

* ``<bound>.param``: one ``.param`` line per parameter. Include it AFTER the netlist's own ``.param`` lines
  (ngspice, like HSPICE, keeps the last definition of a parameter), e.g. just before ``.end``;
* ``corners.alter``: one ``.alter`` block per corner (HSPICE / Spectre in SPICE mode; ngspice has no
  ``.alter``);
* ``corners_ngspice.control``: the same corners for ngspice as ``alterparam`` + ``reset`` + ``run`` in a
  ``.control`` block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optiyield.reliability.circuit import CircuitLimitState
from optiyield.reliability.explore import unexplained_starts
from optiyield.reliability.limit_state import LimitState
from optiyield.reliability.wcd import (
    LinearizedBound,
    WorstCase,
    WorstCaseResult,
    design_points_from,
    worst_case_distances,
)
from optiyield.stats.variation import StatisticalModel

__all__ = ["Corner", "SearchResult", "alter_text", "column_names", "control_text", "corners", "param_text",
           "search", "slug", "write_corners"]


def column_names(model: StatisticalModel) -> list[str]:
    """A name per standard-normal coordinate: the draw's name (global), ``draw[target]`` (mismatch)."""
    names: list[str] = []
    for draw in model.draws:
        if draw.mode == "global":
            names.append(draw.name)
        else:
            names += [f"{draw.name}[{t}]" if draw.name != t else t for t in draw.targets]
    return names


@dataclass(frozen=True)
class SearchResult:
    """Worst-case points of every bound (``points``, the nearest found per bound, in bound order),
    ``others`` (further local worst-case points, e.g. the search from the nominal when exploration found a
    nearer region), the evaluations spent (``simulations``: searches and exploration) and limit-state
    calls (``batches``)."""

    points: tuple[WorstCase, ...]
    others: tuple[WorstCase, ...]
    simulations: int
    batches: int
    explored: int = 0

    @property
    def beta_min(self) -> float:
        """Smallest worst-case distance over the bounds."""
        return float(min(p.beta for p in self.points))

    def as_wcd(self) -> WorstCaseResult:
        """The same points as a :class:`WorstCaseResult` (for :func:`form_importance_sampling`)."""
        return WorstCaseResult(self.points, self.simulations, self.batches)


def _nearest(candidates: Sequence[WorstCase]) -> WorstCase:
    """The candidate with the smallest finite |β| (a positive β is only replaced by a nearer positive one)."""
    usable = [p for p in candidates if p.point is not None and np.isfinite(p.beta)
              and p.status in ("converged", "max_iter")]
    if not usable:
        return candidates[0]
    return min(usable, key=lambda p: abs(p.beta))


def search(state: LimitState, *, explore: int = 200, seed: int = 0,
           starts: Sequence[tuple[int, np.ndarray]] | None = None, max_iter: int = 15, tol: float = 1e-3,
           explore_iter: int = 10) -> SearchResult:
    """Worst-case points of every bound of ``state``.

    The searches start from the nominal u = 0, or from ``starts`` (``(bound index, u0)`` pairs, e.g. the
    previous worst-case points when the design moved a little; a bound without a start then starts from
    u = 0). With ``explore`` > 0, ``explore`` points of N(0, s²I), s = clip(β_min/1.6, 1.5, 3.5), are
    simulated in one batch and the unexplained failing points start further searches (at most
    ``explore_iter`` iterations). Per bound the nearest worst-case point is kept in ``points``; the other
    local points found go to ``others``.
    """
    first_evals, first_batches = state.evaluations, state.batches
    if starts:
        nominal = list(state.margins(np.zeros(state.dimension))[0])
        given = {j for j, _ in starts}
        begin = [(j, np.asarray(u, dtype=float)) for j, u in starts]
        begin += [(j, np.zeros(state.dimension)) for j in range(state.bounds) if j not in given]
        first, _ = design_points_from(state, begin, nominal, tol=tol, max_iter=max_iter)
    else:
        wcd = worst_case_distances(state, tol=tol, max_iter=max_iter)
        first = list(wcd.points)
        nominal = [p.nominal_margin for p in first]
    more: list[WorstCase] = []
    explored = 0
    if explore > 0:
        positive = [p.beta for p in first if np.isfinite(p.beta) and p.beta > 0]
        scale = float(np.clip((min(positive) if positive else 3.0) / 1.6, 1.5, 3.5))
        begin, explored = unexplained_starts(state, first, explore, scale=scale, seed=seed + 7919)
        if begin:
            more, _ = design_points_from(state, begin, nominal, tol=tol, max_iter=explore_iter)
    points, others = [], []
    for label in state.labels:
        candidates = [p for p in first + more if p.label == label]
        best = _nearest(candidates)
        points.append(best)
        others += [p for p in candidates if p is not best and p.point is not None]
    return SearchResult(tuple(points), tuple(others), state.evaluations - first_evals,
                        state.batches - first_batches, explored)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(label: str) -> str:
    """A file-name form of a bound's label: ``gain_db ≥ 7`` → ``gain_db_min``, ``power ≤ 1m`` → ``power_max``."""
    measure, _, rest = label.partition(" ")
    kind = "min" if rest.startswith("≥") else "max" if rest.startswith("≤") else _SAFE.sub("_", rest)
    return f"{_SAFE.sub('_', measure)}_{kind}"


@dataclass(frozen=True)
class Corner(LinearizedBound):
    """The statistical corner of one spec bound.

    ``label`` (``gain_db ≥ 7``), ``measure``, ``bound`` (``min``/``max``) and ``limit`` (SI); ``beta`` the
    signed worst-case distance; ``yield_linear`` Φ(β); ``status`` of the search; ``u`` the worst-case point
    in the standard-normal space (by coordinate name, :func:`column_names`); ``values`` every per-sample
    parameter there (SI); ``nominal`` the same parameters at the design point; ``measure_value`` the measure
    at the corner (≈ ``limit`` when converged; NaN when there is no point); ``design`` the design point.
    """

    label: str
    measure: str
    bound: str
    limit: float
    beta: float
    status: str
    iterations: int
    u: dict[str, float]
    values: dict[str, float]
    nominal: dict[str, float]
    measure_value: float
    design: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """File-name form of the label (``gain_db_min``)."""
        return slug(self.label)

    @property
    def has_point(self) -> bool:
        """False when no worst-case point was found (β = ±∞ or the search failed)."""
        return bool(self.values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Corner:
        """A corner from its :meth:`to_dict` form (e.g. read back from run_summary.json)."""
        def number(x: Any) -> float:
            return float("nan") if x is None else float(x)

        return cls(label=data["label"], measure=data["measure"], bound=data["bound"], limit=float(data["limit"]),
                   beta=number(data["beta"]), status=data["status"], iterations=int(data["iterations"]),
                   u=dict(data.get("u") or {}), values=dict(data.get("values") or {}),
                   nominal=dict(data.get("nominal") or {}), measure_value=number(data.get("measure_at_corner")),
                   design=dict(data.get("design") or {}))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"label": self.label, "name": self.name, "measure": self.measure, "bound": self.bound,
                "limit": self.limit, "beta": _finite(self.beta), "yield_linear": self.yield_linear,
                "failure_linear": self.failure_linear, "status": self.status, "iterations": self.iterations,
                "measure_at_corner": _finite(self.measure_value), "u": self.u, "values": self.values,
                "nominal": self.nominal, "design": self.design}


def _finite(x: float) -> float | str | None:
    if x is None or np.isnan(x):
        return None
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


def corners(state: CircuitLimitState, points: Sequence[WorstCase]) -> list[Corner]:
    """The :class:`Corner` of each worst-case point of a circuit limit state (no simulation)."""
    names = column_names(state.spec.model)
    nominal_values = state.point_values(np.zeros(state.dimension))
    out = []
    for wc, function in zip(points, state.errors.functions, strict=True):
        if wc.point is not None and np.isfinite(wc.beta):
            u = {n: float(v) for n, v in zip(names, wc.point, strict=True)}
            values = state.point_values(wc.point)
            measure = function.limit + function.sign * (-wc.margin) * function.scale
        else:
            u, values, measure = {}, {}, float("nan")
        out.append(Corner(label=wc.label, measure=function.measure, bound="max" if function.sign > 0 else "min",
                          limit=function.limit, beta=float(wc.beta), status=wc.status, iterations=wc.iterations,
                          u=u, values=values, nominal=nominal_values, measure_value=float(measure),
                          design=dict(state.design)))
    return out


def _number(value: float) -> str:
    return f"{value:.12g}"


def _ascii(text: str) -> str:
    """SPICE files stay ASCII: ``≥``/``≤`` as ``>=``/``<=``, anything else non-ASCII as ``?``."""
    return text.replace("≥", ">=").replace("≤", "<=").encode("ascii", "replace").decode("ascii")


def param_text(corner: Corner, spec_name: str = "") -> str:
    """The ``.param`` file of a corner (comment header, one ``.param`` line per parameter)."""
    lines = [f"* optiyield statistical corner{f' of {spec_name}' if spec_name else ''}: {corner.label}",
             f"* worst-case distance beta = {corner.beta:.4f} (linearized failure probability Phi(-beta) = "
             f"{corner.failure_linear:.4g}), search {corner.status}",
             f"* {corner.measure} at this corner: {corner.measure_value:.6g} (limit {corner.limit:.6g})",
             "* Include AFTER the netlist's own .param lines (the last definition of a parameter wins),",
             "* e.g. just before .end:  .include " + f"{corner.name}.param"]
    lines += [f".param {name}={_number(value)}" for name, value in corner.values.items()]
    return _ascii("\n".join(lines)) + "\n"


def alter_text(found: Sequence[Corner], spec_name: str = "") -> str:
    """``.alter`` blocks, one per corner (HSPICE, Spectre in SPICE mode): append to a deck that ends with
    the nominal run; each block re-runs it at one corner. ngspice has no ``.alter``: see :func:`control_text`."""
    lines = [f"* optiyield statistical corners{f' of {spec_name}' if spec_name else ''}: append before .end"]
    for c in found:
        if not c.has_point:
            continue
        lines += [f".alter {c.name} beta={c.beta:.4f}"]
        lines += [f".param {name}={_number(value)}" for name, value in c.values.items()]
    return _ascii("\n".join(lines)) + "\n"


def control_text(found: Sequence[Corner], spec_name: str = "") -> str:
    """The corners for ngspice: a ``.control`` block that sets each corner with ``alterparam``, re-parses
    with ``reset`` and runs the deck's analyses (``run``), then writes the current plot (ngspice's last
    analysis) to ``<name>.raw``: put your own ``print``/``meas``/``setplot`` lines there for other plots."""
    lines = [f"* optiyield statistical corners{f' of {spec_name}' if spec_name else ''} for ngspice: put this",
             "* .control block in the netlist (ngspice has no .alter). `write` saves the current plot (the",
             "* last analysis ngspice ran); add print/meas/setplot lines after each run for the others. It ends",
             "* with quit, so that `ngspice -b` does not run the deck's analyses once more after it.",
             ".control"]
    for c in found:
        if not c.has_point:
            continue
        lines.append(f"* {c.label}: beta = {c.beta:.4f}")
        lines += [f"alterparam {name}={_number(value)}" for name, value in c.values.items()]
        lines += ["reset", "run", f"write {c.name}.raw"]
    lines += ["quit", ".endc"]
    return _ascii("\n".join(lines)) + "\n"


def write_corners(folder: str | Path, found: Sequence[Corner], spec_name: str = "") -> dict[str, Path]:
    """Write ``<bound>.param`` per corner with a point, ``corners.alter`` and ``corners_ngspice.control``
    into ``folder``; returns the paths by role (``param:<bound>``, ``alter``, ``control``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for c in found:
        if c.has_point:
            path = folder / f"{c.name}.param"
            path.write_text(param_text(c, spec_name))
            written[f"param:{c.name}"] = path
    written["alter"] = folder / "corners.alter"
    written["alter"].write_text(alter_text(found, spec_name))
    written["control"] = folder / "corners_ngspice.control"
    written["control"].write_text(control_text(found, spec_name))
    return written
