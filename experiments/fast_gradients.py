"""FAST-style Jacobians (optim/fast.py) against central differences and PAST (AC problems and the transient doubler).

At each problem's minimax design, over the same N outcomes: the per-outcome Jacobians ∂R/∂x of every measure by
central differences (the reference, 2n·N simulations), PAST (forward differences, n·N) and FAST (forward
differences on m anchor outcomes spread by a regression on the deviates, n·m). The accuracy figure of a measure
is ‖J − J_central‖ / ‖J_central‖ over all outcomes and design variables (Frobenius norms, outcomes whose
reference is not finite left out); the cost is simulations and ngspice CPU seconds of one Jacobian.

    python experiments/fast_gradients.py [--problems csva,opamp2,doubler_5ghz] [--outcomes 300] [--json FILE]

``--json`` writes, per problem, ``fast`` and ``past`` with ``rel_error`` (per measure), ``max_rel_error``,
``simulations`` and ``ngspice_seconds``, and ``fast_over_past_ngspice`` (FAST's ngspice seconds / PAST's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.optim.evaluator import Evaluator  # noqa: E402
from optiyield.optim.fast import FAST  # noqa: E402
from optiyield.optim.gradients import PAST, Central  # noqa: E402
from optiyield.optim.minimax import minimax  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402

SPECS = {"csva": "specs/csva.yaml", "tsva": "specs/tsva.yaml", "opamp2": "specs/opamp2.yaml",
         "lna": "specs/lna.yaml", "doubler_5ghz": "specs/doubler_5ghz.yaml"}


def relative_errors(jac: np.ndarray, reference: np.ndarray, measures: tuple[str, ...]) -> dict[str, float]:
    """‖J − J_ref‖ / ‖J_ref‖ per measure over the outcomes where the reference is finite."""
    out = {}
    for q, name in enumerate(measures):
        ref, mine = reference[:, q, :], jac[:, q, :]
        ok = np.isfinite(ref).all(axis=1) & np.isfinite(mine).all(axis=1) & np.any(ref != 0, axis=1)
        norm = np.linalg.norm(ref[ok])
        out[name] = float(np.linalg.norm(mine[ok] - ref[ok]) / norm) if norm > 0 else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="csva,opamp2", help=f"comma-separated subset of {', '.join(SPECS)}")
    parser.add_argument("--outcomes", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    engine = Engine()
    results = {}
    for name in args.problems.split(","):
        spec = load_spec(ROOT / SPECS[name])
        outcomes = OutcomeSet.draw(spec.model, args.outcomes, spec.run.sampler, spec.run.seed)
        x = minimax(Evaluator(spec, engine), max_iter=20).x
        base = Evaluator(spec, engine)
        measures = base.errors.measures
        r0 = np.stack([base.responses(x, outcomes).values[m][0] for m in measures], axis=-1)
        row = {}
        jacobians = {}
        for label, cls in (("central", Central), ("past", PAST), ("fast", FAST)):
            evaluator = Evaluator(spec, engine)
            provider = cls(evaluator, outcomes)
            jacobians[label] = provider.accept(x, r0)
            row[label] = {"simulations": evaluator.meter.simulations,
                          "ngspice_seconds": evaluator.meter.ngspice_seconds}
        for label in ("past", "fast"):
            errors = relative_errors(jacobians[label], jacobians["central"], measures)
            row[label].update(rel_error=errors, max_rel_error=max(errors.values()))
        row["fast_over_past_ngspice"] = row["fast"]["ngspice_seconds"] / row["past"]["ngspice_seconds"]
        row["fast_over_past_simulations"] = row["fast"]["simulations"] / row["past"]["simulations"]
        row["outcomes"], row["design_variables"] = outcomes.n, len(x)
        results[name] = row
        table = Table(title=f"{name}: one Jacobian at the minimax design, {outcomes.n} outcomes, n = {len(x)}")
        for column in ("method", "simulations", "ngspice s", *[f"rel. error {m}" for m in measures]):
            table.add_column(column, justify="right")
        for label in ("central", "past", "fast"):
            errs = row[label].get("rel_error", {})
            table.add_row(label, f"{row[label]['simulations']:,}", f"{row[label]['ngspice_seconds']:.2f}",
                          *[f"{100 * errs[m]:.2f} %" if m in errs else "reference" for m in measures])
        console.print(table)
        console.print(f"{name}: FAST / PAST ngspice seconds {row['fast_over_past_ngspice']:.3f}, "
                      f"simulations {row['fast_over_past_simulations']:.3f}; FAST max error "
                      f"{100 * row['fast']['max_rel_error']:.2f} % (PAST {100 * row['past']['max_rel_error']:.2f} %)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
