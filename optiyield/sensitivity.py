"""Which parameters move each spec: batched central differences at a design point.

The designer's first question after "what is my yield" is "what limits it". Every design variable is
moved by ±``design_step`` of its range; every source of variation by ± its own spread (one sigma of a
normal entry, the tolerance of a uniform one; a mismatch entry per device). All 2P + 1 nominal points
are simulated in ONE engine call. For each measure in the specs the *effect* is half the difference
between the + and − responses (in the measure's unit), and the *normalized* effect divides it by the
spec's error scale (its ``scale``, or |limit|), so effects on different specs compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optiyield.objective import ErrorModel
from optiyield.sim.protocol import Backend
from optiyield.spec import Spec


@dataclass(frozen=True)
class Perturbation:
    """One sensitivity direction: which parameters move, by how much each (SI), and what it stands for."""

    label: str
    kind: str  # "design" or "statistical"
    deltas: dict[str, float]
    description: str


def perturbations(spec: Spec, design: dict[str, float], design_step: float = 0.01) -> list[Perturbation]:
    """The ± directions of a sensitivity run at ``design`` (see the module docstring)."""
    nominal = spec.nominal(design)
    found = []
    for name, var in spec.file.design.items():
        step = design_step * (var.max - var.min)
        found.append(Perturbation(name, "design", {name: step}, f"±{design_step:.0%} of range"))
    for draw in spec.model.draws:
        groups = [draw.targets] if draw.mode == "global" else [(t,) for t in draw.targets]
        for targets in groups:
            deltas = {t: draw.spread * (abs(nominal[t]) if draw.relative else 1.0) for t in targets}
            label = draw.name if draw.mode == "global" else f"{targets[0]} (mismatch)"
            what = "±1σ" if draw.dist == "normal" else "±tol"
            found.append(Perturbation(label, "statistical", deltas, what))
    return found


def sensitivity(spec: Spec, engine: Backend, design: dict[str, float] | None = None,
                design_step: float = 0.01) -> dict[str, Any]:
    """Rank parameters by their effect on every spec's measure at ``design`` (default: start point).

    Returns ``{"spec": {measure: [{"parameter", "kind", "effect", "normalized", "step"}...]}, ...}``
    with each list sorted by |normalized|, plus ``spec_name``, ``design``, ``nominal`` (measure values
    at the design) and ``simulations``.
    """
    point = spec.nominal(design or {})
    directions = perturbations(spec, {k: point[k] for k in spec.file.design}, design_step)
    names = spec.parameters
    base = np.array([point[p] for p in names])
    rows = [base]
    for direction in directions:
        for sign in (1.0, -1.0):
            row = base.copy()
            for param, delta in direction.deltas.items():
                row[names.index(param)] += sign * delta
            rows.append(row)
    result = engine.run(spec.testbench.job(names), np.array(rows))
    errors = ErrorModel.from_specs(spec.file.specs)
    scales = {f.measure: f.scale for f in errors.functions}
    table: dict[str, list[dict[str, Any]]] = {}
    for measure in errors.measures:
        values = result.values[measure]
        entries = []
        for k, direction in enumerate(directions):
            effect = (values[1 + 2 * k] - values[2 + 2 * k]) / 2
            entries.append({"parameter": direction.label, "kind": direction.kind, "effect": float(effect),
                            "normalized": float(effect / scales[measure]), "step": direction.description})
        entries.sort(key=lambda e: -abs(e["normalized"]) if np.isfinite(e["normalized"]) else 0.0)
        table[measure] = entries
    return {"spec": table, "spec_name": spec.name, "design": {k: point[k] for k in spec.file.design},
            "nominal": {m: float(result.values[m][0]) for m in errors.measures},
            "failed_simulations": result.n_failed, "simulations": len(rows)}
