"""Bandler, Zhang, Song, Biernacki (IEEE MTT 1990, Sec. VI): yield optimization of a 5 GHz FET doubler.

From Bandler's starting point, a minimax nominal design, then one-sided l1 yield optimization in two phases
(alpha_i recomputed at the start of each phase), with IGAT, PAST and FAST-style gradients (optim/fast.py:
forward differences on 2(d + 1) anchor outcomes spread to all by a regression on the deviates), on the same
outcomes (common random numbers). Prints the paper's Tables III/IV side by side with ours (design
variables, yield with its 95 % interval, iterations, simulations, wall time), saves histograms of
conversion gain and spectral purity before and after (the paper's Figs. 3 and 4) and writes a markdown
summary (docs/doubler_results.md by default; docs/doubler.md discusses it).

    python experiments/bandler_doubler.py [--outcomes 500] [--max-iter N] [--past-max-iter 3]
        [--minimax-iter N] [--methods igat,past,fast] [--figures DIR] [--markdown FILE] [--json FILE]

The optimizer settings are the spec's ``run.steps`` (the minimax step and the ``yield: l1`` step: its
iterations per phase, phases, starting trust region, IGAT refresh and quasi-Newton polish); the same
yield settings are used for every method, except that PAST stops after ``--past-max-iter`` iterations
per phase (its accepted iterations cost n·N simulations each). ``--max-iter`` and ``--minimax-iter`` override the
iteration counts (the test suite's 20-outcome smoke run uses them).

``--json`` writes ``yield_start``, ``yield_igat``, ``yield_past``, ``yield_fast`` (fractions), ``sims_igat``,
``sims_past``, ``sims_fast``, ``sims_to_target_<method>``, ``ngspice_seconds_<method>``, ``outcomes`` and, for
information, ``minimax``, ``igat``, ``past`` and ``fast`` detail records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.objective import passes  # noqa: E402
from optiyield.optim.evaluator import Evaluator  # noqa: E402
from optiyield.optim.minimax import minimax  # noqa: E402
from optiyield.optim.yield_l1 import yield_l1  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402
from optiyield.yield_ import YieldEstimate  # noqa: E402

#: The paper's figures (Tables III and IV, Sec. VI): design variables at the minimax start and after
#: yield optimization, yield on 500 outcomes, and cost. Values not given in DESIGN.md §5 are None (the
#: paper ran no PAST on the doubler; its FAST took 19 + 29 evaluations in two phases).
PAPER: dict[str, dict[str, Any]] = {
    "minimax": {"yield": 0.396, "iterations": None, "simulations": None},
    "igat": {"yield": 0.710, "iterations": 61, "simulations": 184},
    "past": {"yield": None, "iterations": None, "simulations": None},
    "fast": {"yield": 0.710, "iterations": None, "simulations": "19 + 29"},
}
VARIABLES = {"Pin": ("P_in", 1e3, "mW"), "VGB": ("V_GB", 1.0, "V"), "VDB": ("V_DB", 1.0, "V"),
             "L1": ("L1", 1e9, "nH"), "ll1": ("l1", 1e3, "mm"), "ll2": ("l2", 1e3, "mm")}


def yield_at(evaluator: Evaluator, x: np.ndarray, outcomes: OutcomeSet, confidence: float
             ) -> tuple[YieldEstimate, dict[str, np.ndarray]]:
    """Monte Carlo yield (fraction, with interval) of design ``x`` on ``outcomes`` and the per-outcome
    values of every measure (conversion gain and purity in dB)."""
    responses = evaluator.responses(x, outcomes)
    errors = responses.errors(evaluator.errors)[0]
    passed = passes(errors) & responses.ok[0]
    values = {name: np.asarray(v)[0] for name, v in responses.values.items()}
    return YieldEstimate.from_counts(int(passed.sum()), outcomes.n, confidence), values


def save_histograms(before: dict[str, np.ndarray], after: dict[str, dict[str, np.ndarray]], folder: Path,
                    bounds: dict[str, float]) -> list[Path]:
    """Histograms of conversion gain (Fig. 3) and spectral purity (Fig. 4), before (minimax) and after
    yield optimization, with the spec bound; PNG files in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for measure, label in (("conv_gain", "conversion gain (dB)"), ("purity", "spectral purity (dB)")):
        series = {"minimax start": before[measure], **{k: v[measure] for k, v in after.items()}}
        finite = np.concatenate([s[np.isfinite(s)] for s in series.values()])
        edges = np.linspace(finite.min(), finite.max(), 31) if finite.size else np.linspace(0, 1, 31)
        fig, axes = plt.subplots(len(series), 1, figsize=(6, 2.2 * len(series)), sharex=True)
        for ax, (name, values) in zip(np.atleast_1d(axes), series.items(), strict=True):
            ax.hist(values[np.isfinite(values)], bins=edges, color="tab:blue", alpha=0.8)
            ax.axvline(bounds[measure], color="tab:red", linestyle="--")
            ax.set_title(name, fontsize=9)
        np.atleast_1d(axes)[-1].set_xlabel(label + f"; spec >= {bounds[measure]:g} dB (dashed)")
        fig.tight_layout()
        path = folder / f"doubler_{measure}_hist.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def sims_to_target(trace: list[tuple[int, float | None]], target: float) -> int | None:
    """Simulations spent when the journaled yield first reached ``target`` (None if it never did), from a
    trace of (simulations, yield) per journal entry."""
    return next((sims for sims, value in trace if value is not None and value >= target), None)


def progress(console: Console, method: str):  # noqa: ANN201 - an IterationCallback
    """A callback printing one line per trust-region iteration (yield, simulations so far)."""
    start = time.perf_counter()

    def line(entry: dict[str, Any]) -> None:
        if entry.get("event"):
            console.print(f"  {method} {entry.get('phase', '')} it {entry.get('iteration')}: {entry['event']}, "
                          f"{entry.get('simulations')} simulations", highlight=False)
            return
        console.print(f"  {method} {entry.get('phase', '')} it {entry.get('iteration')}: yield "
                      f"{entry.get('yield', float('nan')):.1%}, U {entry.get('objective', float('nan')):.3g}, "
                      f"{'accepted' if entry.get('accepted') else 'rejected'}, {entry.get('simulations')} "
                      f"simulations, {time.perf_counter() - start:.0f} s", highlight=False)

    return line


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def main() -> None:
    """Run the reproduction and print/save its tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "doubler_5ghz.yaml")
    parser.add_argument("--outcomes", type=int, default=500, help="outcomes (common random numbers)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="l1 trust-region iterations per phase (default: the spec's yield step)")
    parser.add_argument("--past-max-iter", type=int, default=3,
                        help="PAST's iterations per phase (each accepted one costs n*N simulations; the "
                             "default keeps the 500-outcome run within 30 minutes on 2 cores)")
    parser.add_argument("--minimax-iter", type=int, default=None, help="default: the spec's minimax step")
    parser.add_argument("--methods", default="igat,past,fast", help="comma-separated gradient providers")
    parser.add_argument("--figures", type=Path, default=ROOT / "out" / "bandler_doubler")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "doubler_results.md",
                        help="markdown summary (default docs/doubler_results.md)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--target-yield", type=float, default=0.65,
                        help="report the simulations each method spent until its yield first reached this")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    spec = load_spec(args.spec)
    confidence = spec.run.confidence
    engine = Engine(workers=args.workers)
    outcomes = OutcomeSet.draw(spec.model, args.outcomes, spec.run.sampler, spec.run.seed)
    console = Console(width=150)

    nominal_step = next(s for s in spec.run.steps if s.kind == "nominal").options
    yield_step = next(s for s in spec.run.steps if s.kind == "yield").options
    minimax_iter = args.minimax_iter or nominal_step.max_iter
    max_iter = args.max_iter or yield_step.max_iter
    console.print(f"{spec.name}: {args.outcomes} outcomes; minimax ({nominal_step.gradient}, {minimax_iter} "
                  f"iterations), then one-sided l1: {yield_step.phases} phases x {max_iter} iterations, trust "
                  f"region {yield_step.trust_region}, IGAT refresh {yield_step.refresh or 'never'}, "
                  f"quasi-Newton polish {yield_step.refine or 'off'}, stall restart {yield_step.stall_restart}")

    t0 = time.perf_counter()
    mm_eval = Evaluator(spec, engine)
    mm = minimax(mm_eval, gradient=nominal_step.gradient, max_iter=minimax_iter, radius=nominal_step.trust_region)
    start_yield, before = yield_at(Evaluator(spec, engine), mm.x, outcomes, confidence)
    console.print(f"minimax: {mm.iterations} iterations, {mm.simulations} simulations, "
                  f"{time.perf_counter() - t0:.0f} s; yield {start_yield.value:.1%}")

    rows: dict[str, dict[str, Any]] = {"minimax": {
        "design": mm.design, "yield": start_yield.value, "yield_low": start_yield.low,
        "yield_high": start_yield.high, "iterations": mm.iterations, "simulations": mm.simulations,
        "wall_seconds": mm.wall_seconds}}
    after: dict[str, dict[str, np.ndarray]] = {}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        evaluator = Evaluator(spec, engine)
        sims_before = evaluator.meter.simulations
        iterations = min(max_iter, args.past_max_iter) if method == "past" else max_iter
        result = yield_l1(evaluator, outcomes, mm.x, gradient=method, max_iter=iterations,
                          phases=yield_step.phases, radius=yield_step.trust_region, refresh=yield_step.refresh,
                          refine=yield_step.refine, stall_restart=yield_step.stall_restart, confidence=confidence,
                          callback=progress(console, method))
        trace = [(h["simulations"] - sims_before, h.get("yield")) for h in result.history]
        est, values = yield_at(Evaluator(spec, engine), result.x, outcomes, confidence)
        after[f"after l1 ({method.upper()})"] = values
        rows[method] = {"design": result.design, "yield": est.value, "yield_low": est.low,
                        "yield_high": est.high, "iterations": result.iterations,
                        "simulations": result.simulations, "wall_seconds": result.wall_seconds,
                        "status": result.status, "trace": trace,
                        "ngspice_seconds": evaluator.meter.ngspice_seconds,
                        "sims_to_target": sims_to_target(trace, args.target_yield)}
        console.print(f"{method}: {result.iterations} iterations, {result.simulations} simulations, "
                      f"{result.wall_seconds:.0f} s; yield {est.value:.1%}")

    table = Table(title=f"{spec.name}: Bandler et al. 1990 Tables III/IV (paper) vs ours "
                        f"({args.outcomes} outcomes, CRN)")
    table.add_column("", justify="left")
    for name in rows:
        table.add_column(f"{name} (paper)", justify="right")
        table.add_column(f"{name} (ours)", justify="right")
    for var, (label, scale, unit) in VARIABLES.items():
        cells = []
        for row in rows.values():
            cells += ["n/a", f"{row['design'][var] * scale:.4g}"]
        table.add_row(f"{label} ({unit})", *cells)
    cells = []
    for name, row in rows.items():
        cells += [_pct(PAPER[name]["yield"]),
                  f"{row['yield']:.1%} [{row['yield_low']:.1%}, {row['yield_high']:.1%}]"]
    table.add_row("yield", *cells)
    for key in ("iterations", "simulations"):
        cells = []
        for name, row in rows.items():
            cells += [_fmt(PAPER[name][key]), str(row[key])]
        table.add_row(key if key == "iterations" else "simulations (circuit evaluations)", *cells)
    cells = []
    for name, row in rows.items():
        cells += ["n/a", "" if name == "minimax" else _fmt(row["sims_to_target"])]
    table.add_row(f"simulations to {args.target_yield:.0%} yield", *cells)
    cells = []
    for row in rows.values():
        cells += ["n/a", f"{row['wall_seconds']:.0f} s"]
    table.add_row("wall time", *cells)
    cells = []
    for name, row in rows.items():
        cells += ["n/a", "" if name == "minimax" else f"{row['ngspice_seconds']:.0f} s"]
    table.add_row("ngspice CPU seconds", *cells)
    console.print(table)
    console.print("paper simulations: harmonic-balance evaluations of the nominal circuit per gradient "
                  "(IGAT 184, FAST 19 + 29); ours: ngspice transient samples (outcomes x points).")

    bounds = {name: spec.file.specs[name].min for name in ("conv_gain", "purity")}
    figures = save_histograms(before, after, args.figures, bounds)
    console.print("histograms: " + ", ".join(str(p) for p in figures))

    payload = {"spec": spec.name, "outcomes": args.outcomes, "yield_start": start_yield.value,
               "target_yield": args.target_yield}
    for method in ("igat", "past", "fast"):
        for key, field in (("yield", "yield"), ("sims", "simulations"), ("sims_to_target", "sims_to_target"),
                           ("ngspice_seconds", "ngspice_seconds")):
            payload[f"{key}_{method}"] = rows.get(method, {}).get(field)
    payload.update({
        "total_wall_seconds": time.perf_counter() - t0, **rows})
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    if args.markdown:
        lines = ["# Bandler doubler reproduction: measured result", "",
                 f"Written by `python experiments/bandler_doubler.py --outcomes {args.outcomes}` "
                 f"({payload['total_wall_seconds'] / 60:.1f} min on this machine). docs/doubler.md explains it.",
                 "",
                 f"| | paper yield | ours ({args.outcomes} outcomes, 95 % interval) | our iterations | "
                 f"our simulations | ours to {args.target_yield:.0%} | wall | ngspice CPU |",
                 "|---|---|---|---|---|---|---|---|"]
        for name, row in rows.items():
            to_target = "" if name == "minimax" else _fmt(row.get("sims_to_target"))
            lines.append(f"| {name} | {_pct(PAPER[name]['yield'])} | {row['yield']:.1%} "
                         f"[{row['yield_low']:.1%}, {row['yield_high']:.1%}] | {row['iterations']} | "
                         f"{row['simulations']} | {to_target} | {row['wall_seconds']:.0f} s | "
                         + ("" if name == "minimax" else f"{row['ngspice_seconds']:.0f} s") + " |")
        lines.append("")
        lines.append("| design variable | " + " | ".join(rows) + " |")
        lines.append("|---|" + "---|" * len(rows))
        for var, (label, scale, unit) in VARIABLES.items():
            lines.append(f"| {label} ({unit}) | " + " | ".join(f"{row['design'][var] * scale:.4g}"
                                                          for row in rows.values()) + " |")
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
