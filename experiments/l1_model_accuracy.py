"""How well the one-sided ℓ1 LP's linear model predicts the real decrease, at the minimax design and at the design
where the default's first stage hands over to the whole outcome set.

On OPAMP2 at 3,000 simulations the default (minimax → ``yield: auto``) trails ℓ1/FAST from the minimax design
(docs/benchmarks.md). This measures why, per seed, at two designs over the same outcome set (the benchmark's: seed s
draws ``--outcomes`` outcomes with the spec's sampler and seed 1000 + s):

- ``minimax``: the design ``{nominal: minimax}`` ends on, where ℓ1/FAST and the default's first stage start;
- ``first_stage``: the design the default's ℓ1 stage on the first ``--start-samples`` outcomes hands to the
  whole-set stage (``yield_auto`` run unchanged up to the whole-set stage's first record).

At each, with α fixed there as at the start of an ℓ1 phase, the LP step at each trust radius (fraction of each
range) is solved with the FAST Jacobian (optim/fast.py) and with forward differences on every outcome (PAST), and
the step's point simulated: the predicted decrease of U, the actual one, their ratio ρ (the trust region shrinks
below 0.25) and the outcomes passing there. FAST's Jacobian error per measure is ‖J_FAST − J_PAST‖ / ‖J_PAST‖ over
the outcomes, in range-scaled units.

    python experiments/l1_model_accuracy.py [--problem opamp2] [--seeds 0,1,2,3,4] [--outcomes 200]
        [--start-samples 50] [--radii 0.1,0.025,0.00625] [--json FILE]

``--json`` writes ``{seed: {design: {"passed", "outcomes", "fast_jacobian_error": {measure: e}, "radii": {radius:
{"fast": {"predicted", "actual", "rho", "passed"}, "past": {...}}}}}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.objective import alpha_weights, generalized_l1  # noqa: E402
from optiyield.optim.evaluator import Evaluator  # noqa: E402
from optiyield.optim.fast import FAST  # noqa: E402
from optiyield.optim.gradients import PAST  # noqa: E402
from optiyield.optim.method import Problem  # noqa: E402
from optiyield.optim.result import IterationRecord  # noqa: E402
from optiyield.optim.yield_auto import yield_auto  # noqa: E402
from optiyield.optim.yield_l1 import OneSidedL1Model  # noqa: E402
from optiyield.registry import STEPS  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import DEFAULT_STEPS, Step, load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402

OUTCOME_SEED = 1000  # benchmarks/yield_opt.py's optimization outcomes of seed s: seed 1000 + s


class _Handover(Exception):
    """Raised by the callback at the whole-set stage's first record, carrying the design it starts from."""

    def __init__(self, x: np.ndarray) -> None:
        super().__init__("whole-set stage reached")
        self.x = x


def first_stage_design(evaluator: Evaluator, outcomes: OutcomeSet, x: np.ndarray, start_samples: int) -> np.ndarray:
    """The design ``yield_auto`` (defaults otherwise) hands from its prefix stages to the whole set, from ``x``."""

    def stop(record: IterationRecord) -> None:
        if record.phase.startswith(f"{outcomes.n} outcomes"):
            raise _Handover(np.array([record.x[name] for name in evaluator.names], dtype=float))

    try:
        result = yield_auto(evaluator, outcomes, x, start_samples=start_samples, callback=stop)
    except _Handover as handover:
        return handover.x
    return result.x  # one stage only: no handover


def lp_predictions(evaluator: Evaluator, outcomes: OutcomeSet, x: np.ndarray,
                   radii: list[float]) -> dict[str, Any]:
    """At ``x``: passing outcomes, FAST's Jacobian error per measure and, per radius, the LP's predicted and actual
    decrease of U with each Jacobian."""
    span = evaluator.upper - evaluator.lower
    past = PAST(evaluator, outcomes)
    responses, exact = past.start(x)
    fast = FAST(evaluator, outcomes).jacobian(x, responses)
    plain = OneSidedL1Model(evaluator.errors, np.ones(outcomes.n))
    model = OneSidedL1Model(evaluator.errors, alpha_weights(generalized_l1(plain.error_matrix(responses))))
    value = model.value(responses)
    errors = {}
    for q, name in enumerate(evaluator.errors.measures):
        norm = np.linalg.norm(exact[:, q] * span)
        errors[name] = float(np.linalg.norm((fast - exact)[:, q] * span) / norm) if norm > 0 else float("nan")
    out: dict[str, Any] = {"passed": model.estimate(responses).passed, "outcomes": outcomes.n,
                           "fast_jacobian_error": errors, "radii": {}}
    for radius in radii:
        lower = np.maximum(evaluator.lower - x, -radius * span) / span
        upper = np.minimum(evaluator.upper - x, radius * span) / span
        row = {}
        for label, jacobian in (("fast", fast), ("past", exact)):
            step, predicted_value = model.solve(responses, jacobian * span, x / span, lower, upper)
            trial = past.trial(evaluator.clip(x + step * span))
            predicted, actual = value - predicted_value, value - model.value(trial)
            row[label] = {"predicted": predicted, "actual": actual,
                          "rho": actual / predicted if predicted > 0 else float("nan"),
                          "passed": model.estimate(trial).passed}
        out["radii"][str(radius)] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", default="opamp2", help="a spec in specs/ (without .yaml)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--outcomes", type=int, default=200)
    parser.add_argument("--start-samples", type=int, default=50, help="yield auto's first stage (outcomes)")
    parser.add_argument("--radii", default="0.1,0.025,0.00625", help="trust radii, fractions of each range")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    spec = load_spec(ROOT / "specs" / f"{args.problem}.yaml")
    engine = Engine()
    radii = [float(r) for r in args.radii.split(",")]
    console = Console(width=200)
    results: dict[str, Any] = {}
    table = Table(title=f"{args.problem}: the ℓ1 LP's predicted and actual decrease of U ({args.outcomes} outcomes)")
    for column in ("seed", "design", "passing", "FAST Jacobian error", "radius", "FAST: predicted / actual (ρ)",
                   "forward differences: predicted / actual (ρ)"):
        table.add_column(column)
    for seed in (int(s) for s in args.seeds.split(",")):
        outcomes = OutcomeSet.draw(spec.model, args.outcomes, spec.run.sampler, OUTCOME_SEED + seed)
        evaluator = Evaluator(spec, engine)
        nominal = Step.model_validate(DEFAULT_STEPS[0])  # the default's {nominal: minimax}
        problem = Problem(spec=spec, evaluator=evaluator, outcomes=outcomes)
        start = STEPS.method(nominal.kind, nominal.method).run(problem, evaluator.x0, nominal.options, None).x
        designs = {"minimax": start,
                   "first_stage": first_stage_design(evaluator, outcomes, start, args.start_samples)}
        results[str(seed)] = {}
        for name, x in designs.items():
            row = lp_predictions(evaluator, outcomes, x, radii)
            results[str(seed)][name] = row
            error = " ".join(f"{m} {e:.2f}" for m, e in row["fast_jacobian_error"].items())
            for i, (radius, cells) in enumerate(row["radii"].items()):
                fast, past = cells["fast"], cells["past"]
                table.add_row(str(seed) if i == 0 else "", name if i == 0 else "",
                              f"{row['passed']}/{row['outcomes']}" if i == 0 else "", error if i == 0 else "", radius,
                              f"{fast['predicted']:.1f} / {fast['actual']:.1f} ({fast['rho']:.2f})",
                              f"{past['predicted']:.1f} / {past['actual']:.1f} ({past['rho']:.2f})")
        console.print(f"seed {seed} done", style="dim")
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
