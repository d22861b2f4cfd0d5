"""Worst-corner minimax: can the design meet every spec at every PVT corner, and if not, which spec cannot?

Runs ``{nominal: minimax}`` through the corner evaluator of a corner spec (default specs/csva_corners.yaml: tt/ff/ss
x VDD +-10 % x -40/27/125 C, 27 corners): the objective is the largest weighted, scaled error over every corner and
every spec bound, so the worst corner counts. When the result still fails somewhere (objective > 0), minimax is run
again for each spec alone over the same corners: a spec whose own best worst-corner margin is negative cannot be
met at every corner by any design the optimizer reaches, whatever the other specs; when each spec alone can, the
specs conflict. With --starts K, K more starts (scrambled Sobol points in the design bounds) check that the
minimax point is not a local one. Prints the corner table's worst corner per spec at the minimax design.

    python experiments/corner_minimax.py --json corner_minimax.json
    python experiments/corner_minimax.py --spec specs/sky130_ota_corners.yaml
    python experiments/corner_minimax.py --max-iter 2 --alone-iter 1      # smoke size
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.optim.corners import CornerEvaluator, corner_table  # noqa: E402
from optiyield.optim.minimax import minimax  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import load_spec, spec_from_data  # noqa: E402
from optiyield.units import format_eng, format_value  # noqa: E402


def alone(path: Path, name: str) -> Any:
    """The corner spec of ``path`` with only spec ``name``."""
    data = yaml.safe_load(path.read_text())
    data["specs"] = {name: data["specs"][name]}
    return spec_from_data(data, path.parent, f"{path.name} ({name} alone)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the minimax (and the per-spec ones when it fails); print and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "csva_corners.yaml")
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--alone-iter", type=int, default=20, help="iterations of each spec's own minimax (0: skip)")
    parser.add_argument("--gradient", default="past", help="igat, past or central")
    parser.add_argument("--starts", type=int, default=4, help="further minimax starts (Sobol points in the bounds)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    spec = load_spec(args.spec)
    if spec.corners is None:
        parser.error(f"{args.spec} has no corners")
    console = Console(width=150)
    start = time.perf_counter()
    with Engine(workers=args.workers) as engine:
        evaluator = CornerEvaluator(spec, engine)
        result = minimax(evaluator, max_iter=args.max_iter, gradient=args.gradient)
        others = []
        failed_starts: list[str] = []
        if args.starts:
            from scipy.stats import qmc

            for x0 in qmc.scale(qmc.Sobol(len(evaluator.names), seed=3).random(args.starts), evaluator.lower,
                                evaluator.upper):
                try:
                    others.append(minimax(evaluator, x0, max_iter=args.max_iter, gradient=args.gradient))
                except RuntimeError as error:  # a start whose LP subproblem the solver gives up on: recorded
                    failed_starts.append(f"{error}")
            best = min([result, *others], key=lambda r: r.objective)
            if best.objective < result.objective:
                result = best
        table = corner_table(evaluator, result.x)
        simulations = evaluator.meter.simulations
        alone_margins: dict[str, float] = {}
        if result.objective > 0 and args.alone_iter > 0:
            for name in spec.file.specs:
                single = CornerEvaluator(alone(args.spec, name), engine)
                own = minimax(single, max_iter=args.alone_iter, gradient=args.gradient)
                alone_margins[name] = -own.objective
                simulations += single.meter.simulations
    seconds = time.perf_counter() - start
    worst = table.worst()
    shown = Table(title=f"{spec.name}: worst-corner minimax over {len(spec.corners)} corners "
                  f"({result.iterations} iterations, {result.status})")
    for column in ("spec", "limit", "worst corner", "value", "relative margin", "every corner",
                   *(("best margin alone",) if alone_margins else ())):
        shown.add_column(column, justify="left" if column in ("spec", "worst corner") else "right", no_wrap=True)
    for name, row in worst.iterrows():
        bound = spec.file.specs[str(name)]
        limit = " ".join(p for p in (f"≥ {format_eng(bound.min)}" if bound.min is not None else "",
                                     f"≤ {format_eng(bound.max)}" if bound.max is not None else "") if p)
        shown.add_row(str(name), limit, str(row["worst corner"]),
                      format_value(float(row["value"]), spec.testbench.unit(str(name))),
                      f"{row['relative margin']:+.3f}", "pass" if row["pass"] else "fail",
                      *((f"{alone_margins[str(name)]:+.3f}",) if alone_margins else ()))
    console.print(shown)
    design = Table(title="design: start → worst-corner minimax")
    for column in ("variable", "start", "minimax", "min", "max"):
        design.add_column(column, justify="right")
    for k, name in enumerate(evaluator.names):
        design.add_row(name, format_eng(evaluator.x0[k]), format_eng(result.x[k]), format_eng(evaluator.lower[k]),
                       format_eng(evaluator.upper[k]))
    console.print(design)
    passing = bool(result.objective <= 0)
    cannot = [n for n, m in alone_margins.items() if m < 0]
    if passing:
        verdict = f"every spec passes at every one of the {len(spec.corners)} corners"
    elif not alone_margins:
        verdict = "some spec fails at some corner (each spec alone not tried)"
    elif cannot:
        verdict = (f"cannot pass at every corner: {', '.join(cannot)} (best worst-corner margin alone "
                   + ", ".join(f"{n} {alone_margins[n]:+.3f}" for n in cannot) + ")")
    else:
        verdict = "each spec alone can pass at every corner, but not all together (the specs conflict)"
    spread = [-r.objective for r in others]
    console.print(f"{verdict}; minimax worst relative margin {-result.objective:+.3f}"
                  + (f" (from {len(others)} more starts: {min(spread):+.3f} … {max(spread):+.3f})" if others else "")
                  + (f" ({len(failed_starts)} starts stopped: {failed_starts[0]})" if failed_starts else "")
                  + f"; {simulations} simulations, {seconds:.1f} s", highlight=False)
    figures = {
        "spec": spec.name, "corners": len(spec.corners), "all_pass": passing,
        "worst_margin": -float(result.objective), "iterations": result.iterations, "status": result.status,
        "design_start": evaluator.design(evaluator.x0), "design": evaluator.design(result.x),
        "worst_corner": {str(n): {"corner": r["worst corner"], "value": float(r["value"]),
                                  "relative_margin": float(r["relative margin"])} for n, r in worst.iterrows()},
        "best_margin_alone": alone_margins, "cannot_pass": cannot,
        "other_starts_margins": [-float(r.objective) for r in others], "failed_starts": failed_starts,
        "passing_corners": int(table.passed.all(axis=1).sum()), "simulations": simulations, "seconds": seconds,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
