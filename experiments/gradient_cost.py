"""What gradients cost: yield optimization with PAST vs IGAT vs derivative-free baselines.

The shape of Bandler et al.'s Tables III and IV (IEEE MTT 1990): from the same minimax nominal design
and the same outcomes (common random numbers), each method optimizes the yield of ``specs/csva.yaml``
(the common-source amplifier). The table shows the yield reached (with its 95 % interval),
iterations, simulations and ngspice time. Then the final design of each method is verified on a fresh
sample.

    python experiments/gradient_cost.py [--spec specs/csva.yaml] [--outcomes 300] [--verify 2000] [--json FILE]

``--json`` writes ``start_yield`` and, per method (``past``, ``igat``, ``random``, ``nelder-mead``,
``nelder-mead-igat-budget``),
``yield``, ``yield_low``, ``yield_high``, ``verify_yield``, ``iterations``, ``simulations`` and
``ngspice_seconds``.
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

from optiyield.objective import passes  # noqa: E402
from optiyield.optim.baselines import nelder_mead, random_search  # noqa: E402
from optiyield.optim.evaluator import Evaluator  # noqa: E402
from optiyield.optim.minimax import minimax  # noqa: E402
from optiyield.optim.yield_l1 import yield_l1  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402
from optiyield.yield_ import YieldEstimate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "csva.yaml")
    parser.add_argument("--outcomes", type=int, default=300, help="outcomes of the optimization (CRN)")
    parser.add_argument("--verify", type=int, default=2000, help="fresh samples to verify each final design")
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    spec = load_spec(args.spec)
    engine = Engine()
    outcomes = OutcomeSet.draw(spec.model, args.outcomes, spec.run.sampler, spec.run.seed)
    verify_set = OutcomeSet.draw(spec.model, args.verify, spec.run.sampler, spec.run.seed + 7919)
    start_eval = Evaluator(spec, engine)
    start = minimax(start_eval, gradient="past", max_iter=args.max_iter).x

    def yield_of(evaluator: Evaluator, x: np.ndarray, outcome_set: OutcomeSet) -> YieldEstimate:
        errors = evaluator.responses(x, outcome_set).errors(evaluator.errors)[0]
        return YieldEstimate.from_counts(int(passes(errors).sum()), outcome_set.n, spec.run.confidence)

    start_yield = yield_of(start_eval, start, outcomes)
    rows = {}
    for method in ("past", "igat", "random", "nelder-mead", "nelder-mead-igat-budget"):
        evaluator = Evaluator(spec, engine)  # fresh counters for each method
        if method in ("past", "igat"):
            result = yield_l1(evaluator, outcomes, start, gradient=method, max_iter=args.max_iter, phases=2)
        elif method == "random":
            result = random_search(evaluator, outcomes, budget=rows["past"]["simulations"], x0=start)
        elif method == "nelder-mead":
            result = nelder_mead(evaluator, outcomes, budget=rows["past"]["simulations"], x0=start)
        else:
            result = nelder_mead(evaluator, outcomes, budget=rows["igat"]["simulations"], x0=start)
        est = result.yield_estimate
        verified = yield_of(Evaluator(spec, engine), result.x, verify_set)
        rows[method] = {"yield": est.value, "yield_low": est.low, "yield_high": est.high,
                        "verify_yield": verified.value, "verify_low": verified.low, "verify_high": verified.high,
                        "iterations": result.iterations, "simulations": result.simulations,
                        "ngspice_seconds": result.ngspice_seconds, "design": result.design}

    table = Table(title=f"{spec.name}: yield optimization from the minimax design "
                        f"({args.outcomes} outcomes, CRN; verified on {args.verify} fresh samples)")
    for column in ("method", "yield (outcomes)", "95 % interval", "verified yield", "iterations",
                   "simulations", "ngspice s"):
        table.add_column(column, justify="left" if column == "method" else "right")
    table.add_row("minimax start", f"{start_yield.value:.1%}", f"[{start_yield.low:.1%}, {start_yield.high:.1%}]",
                  "", "", "", "")
    labels = {"past": "one-sided l1, PAST", "igat": "one-sided l1, IGAT",
              "random": "random search (PAST's budget)", "nelder-mead": "Nelder-Mead (PAST's budget)",
              "nelder-mead-igat-budget": "Nelder-Mead (IGAT's budget)"}
    for method, row in rows.items():
        table.add_row(labels[method], f"{row['yield']:.1%}", f"[{row['yield_low']:.1%}, {row['yield_high']:.1%}]",
                      f"{row['verify_yield']:.1%}", str(row["iterations"]), str(row["simulations"]),
                      f"{row['ngspice_seconds']:.1f}")
    Console(width=140).print(table)
    if args.json:
        payload = {"spec": spec.name, "outcomes": args.outcomes, "start_yield": start_yield.value, **rows}
        args.json.write_text(json.dumps(payload, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
