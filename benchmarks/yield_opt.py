"""The yield-optimization benchmark: verified yield against simulations, per problem, method and budget.

Every method optimizes the yield of the same outcome set (common random numbers) from the spec's start
design, within a ladder of simulation budgets; each final design is verified on a fresh Monte Carlo that is
the same for every method of a seed. A run at the largest budget gives every smaller budget too: a method's
design at budget B is the best design (most passing optimization outcomes, ties: lowest mean positive error)
among those it simulated over the whole outcome set with the simulations it had spent up to B (a batch is
counted whole: one that crosses B does not count for B); before its first such design, the best over the
largest part of the set it had simulated (a method that grows its outcome set), else the nominal design with
the best worst-case spec margin, else the start. No method's trajectory depends on its budget,
so this equals running it with budget B and taking the best design it saw.

    python benchmarks/yield_opt.py [--problems csva,opamp2] [--methods default,cma-es] [--seeds 5]
                                   [--json FILE] [--plot FILE] [--quick] [--best-known]

Methods: ``default`` (``optiyield run``'s default steps, spec.DEFAULT_STEPS without the verification),
``auto-igat`` and ``auto-fast`` (minimax → ``{yield: auto}`` with ``gradient: igat`` or ``fast``: the default's
two plans whatever the problem size), ``l1-igat`` (minimax → ℓ1 IGAT), ``l1-past`` (minimax → ℓ1 PAST),
``l1-fast`` (minimax → ℓ1 with FAST-style Jacobians, optim/fast.py), ``nelder-mead``, ``random``, ``cma-es``,
``optuna-tpe`` and ``optuna-gp``. The default is minimax → ``{yield: auto}`` (ℓ1 on a growing outcome set, IGAT
below 8 design variables and FAST from 8 on, then a pass-count polish); ``l1-igat`` is the default before issue
16. Seeds: seed s draws the optimization
outcomes with seed 1000 + s (the spec's sampler) and the verification sample with seed 900000 + s (plain MC).

``--best-known`` runs every method with 10× the largest budget (seed 0, or ``--seeds`` seeds) and writes the
best verified yield of each problem (the highest median over seeds of any method) to
``benchmarks/yield_opt_best_known.json`` with the command that made it; a normal run reads it.
``--json FILE`` writes ``{problem: {"best_known": y, "methods": {method: {budget: {"median_verified_yield": y,
"iqr": [lo, hi], "median_sims": n, ...}}}}}`` (yields as fractions, budgets as
strings of integers), with each problem's ``setup`` and ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.objective import minimax_value, passes  # noqa: E402
from optiyield.optim.evaluator import Evaluator, Responses  # noqa: E402
from optiyield.optim.method import Problem  # noqa: E402
from optiyield.registry import STEPS  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import DEFAULT_STEPS, Spec, Step, load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402

BEST_KNOWN = ROOT / "benchmarks" / "yield_opt_best_known.json"
OUTCOME_SEED, VERIFY_SEED = 1000, 900000


@dataclass(frozen=True)
class ProblemSetup:
    """A benchmark problem: spec file, optimization outcomes, budget ladder, verification samples."""

    spec: str
    outcomes: int
    budgets: tuple[int, ...]
    verify: int
    kind: str = "ac"  # ac or transient (what the verification size and budgets follow)


PROBLEMS: dict[str, ProblemSetup] = {
    "csva": ProblemSetup("specs/csva.yaml", 300, (1000, 3000, 10000, 30000), 5000),
    "tsva": ProblemSetup("specs/tsva.yaml", 300, (1000, 3000, 10000, 30000), 5000),
    "opamp2": ProblemSetup("specs/opamp2.yaml", 200, (1000, 3000, 10000, 30000), 5000),
    "lna": ProblemSetup("specs/lna.yaml", 200, (1000, 3000, 10000), 5000),
    "doubler_5ghz": ProblemSetup("specs/doubler_5ghz.yaml", 200, (1000, 3000, 10000), 1000, "transient"),
    "pa_28ghz": ProblemSetup("specs/pa_28ghz.yaml", 40, (300, 1000, 3000), 1000, "transient"),
}
QUICK = ProblemSetup("specs/csva.yaml", 40, (200, 600), 400)

#: Method name → its run steps; {budget} and {seed} are filled in per run.
METHODS: dict[str, list[dict[str, Any]]] = {
    "default": [dict(s) for s in DEFAULT_STEPS if "verify" not in s],
    "auto-igat": [{"nominal": "minimax"}, {"yield": "auto", "gradient": "igat"}],
    "auto-fast": [{"nominal": "minimax"}, {"yield": "auto", "gradient": "fast"}],
    "l1-igat": [{"nominal": "minimax"}, {"yield": "l1", "gradient": "igat"}],
    "l1-past": [{"nominal": "minimax"}, {"yield": "l1", "gradient": "past"}],
    "l1-fast": [{"nominal": "minimax"}, {"yield": "l1", "gradient": "fast"}],
    "nelder-mead": [{"baseline": "nelder-mead", "budget": "{budget}"}],
    "random": [{"baseline": "random", "budget": "{budget}"}],
    "cma-es": [{"baseline": "cma-es", "budget": "{budget}", "seed": "{seed}"}],
    "optuna-tpe": [{"baseline": "optuna-tpe", "budget": "{budget}", "seed": "{seed}"}],
    "optuna-gp": [{"baseline": "optuna-gp", "budget": "{budget}", "seed": "{seed}"}],
}
BASELINES = ("l1-igat", "l1-past", "l1-fast", "nelder-mead", "random", "cma-es", "optuna-tpe", "optuna-gp")


class BudgetExhausted(Exception):
    """The next engine call would spend more than the run's largest budget."""


@dataclass
class Snapshot:
    """The best design known after a call: cumulative simulations, design, passes on the outcomes (-1: only
    nominal information), and its source."""

    simulations: int
    x: np.ndarray
    passed: int


class TrackingEvaluator(Evaluator):
    """An evaluator that stops before exceeding ``limit`` simulations and records, after every call, the best
    design known: the best simulated over the whole optimization outcome set; before the first such design,
    the best over the largest part of it simulated so far (a method that grows its outcome set); before that,
    the best nominal design by its worst weighted spec error (minimax)."""

    def __init__(self, spec: Spec, engine: Engine, outcomes: OutcomeSet, limit: int) -> None:
        super().__init__(spec, engine)
        self.outcomes, self.limit = outcomes, limit
        self.best: tuple[int, int, float] = (0, -1, -np.inf)  # (outcomes, passed, -mean positive error)
        self.best_x = self.x0.copy()
        self.best_nominal = np.inf
        self.timeline: list[Snapshot] = [Snapshot(0, self.x0.copy(), -1)]

    def responses(self, points: np.ndarray, outcomes: OutcomeSet | None = None) -> Responses:
        points = np.atleast_2d(np.asarray(points, dtype=float))
        size = len(points) * (1 if outcomes is None else outcomes.n)
        if self.meter.simulations + size > self.limit:
            raise BudgetExhausted
        result = super().responses(points, outcomes)
        errors = result.errors(self.errors)
        if outcomes is not None:
            for x, e in zip(points, errors, strict=True):
                score = (outcomes.n, int(passes(e).sum()), -float(np.maximum(e, 0).mean()))
                if score > self.best:
                    self.best, self.best_x = score, x.copy()
        elif self.best[0] == 0:
            for x, e in zip(points, errors, strict=True):
                value = float(minimax_value(e[0], self.errors.weights).max())
                if value < self.best_nominal:
                    self.best_nominal, self.best_x = value, x.copy()
        passed = self.best[1] if self.best[0] == self.outcomes.n else -1
        self.timeline.append(Snapshot(self.meter.simulations, self.best_x.copy(), passed))
        return result

    def at(self, budget: int) -> Snapshot:
        """The best design known with at most ``budget`` simulations spent."""
        return [s for s in self.timeline if s.simulations <= budget][-1]


def steps_of(method: str, budget: int, seed: int) -> list[Step]:
    """The validated run steps of a method."""
    steps = []
    for template in METHODS[method]:
        step = {k: (int(str(v).format(budget=budget, seed=seed)) if isinstance(v, str) and "{" in v else v)
                for k, v in template.items()}
        steps.append(Step.model_validate(step))
    return steps


@dataclass
class Cell:
    """One (method, seed) run: the design at each budget, its optimization-outcome yield and simulations."""

    method: str
    seed: int
    designs: dict[int, np.ndarray] = field(default_factory=dict)
    opt_yield: dict[int, float] = field(default_factory=dict)
    sims: dict[int, int] = field(default_factory=dict)
    verified: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0
    ngspice_seconds: float = 0.0
    status: str = ""
    timeline: list[tuple[int, float]] = field(default_factory=list)  # (simulations, yield on the outcomes)


def to_reach(cell: Cell, level: float) -> int | None:
    """Simulations after which the cell's best design has at least ``level`` yield on its optimization outcomes."""
    return next((sims for sims, y in cell.timeline if y >= level), None)


def budget_to_reach_verified(cell: Cell, level: float) -> int | None:
    """The smallest budget of the ladder whose design's verified yield is at least ``level`` (None: none is)."""
    return next((b for b in sorted(cell.verified) if cell.verified[b] >= level), None)


#: The warm-start criteria: (JSON key of the per-method median, of its per-seed values, of the cold / ML ratio,
#: the per-cell function, the console's wording).
WARM_START_CRITERIA = (
    ("median_sims_to_95pct", "per_seed", "ratio_cold_over_ml", to_reach, "simulations to 95 % of {reference} "
     "({level:.1%} on the optimization outcomes)"),
    ("median_budget_to_95pct_verified", "per_seed_verified", "ratio_cold_over_ml_verified", budget_to_reach_verified,
     "smallest budget whose design verifies at {level:.1%} or more"),
)


def warm_start_summary(cells: list[Cell], best_known: float) -> dict[str, Any]:
    """Per method, median simulations to 95 % of the best-known yield on the optimization outcomes (a design
    simulated on the whole set), and median budget of the ladder at which the verified yield first reaches it
    (the designs a method holds mid-run count too, e.g. minimax's); a seed that never gets there counts as
    infinite."""
    level = 0.95 * best_known
    out: dict[str, Any] = {"level": level}
    for method in ("default", "default+ml"):
        mine = [c for c in cells if c.method == method]
        if mine:
            out[method] = {}
            for median_key, seeds_key, _, reach, _ in WARM_START_CRITERIA:
                runs = [reach(c, level) for c in mine]
                out[method][median_key] = float(np.median([np.inf if r is None else r for r in runs]))
                out[method][seeds_key] = runs
    if "default" in out and "default+ml" in out:
        for median_key, _, ratio_key, _, _ in WARM_START_CRITERIA:
            cold, warm = out["default"][median_key], out["default+ml"][median_key]
            out[ratio_key] = cold / warm if warm > 0 else float("inf")
    return out


def warm_start_steps(model: Path) -> list[dict[str, Any]]:
    """The steps of ``default+ml``: an inverse model's 8 proposals (nominal check), then the default; a yield
    model's 4 proposals checked over the first 25 optimization outcomes, then the default without its
    nominal step (minimax would pull a centred start back to the largest nominal margin)."""
    from optiyield.propose.yield_model import KIND, load_model

    if load_model(model).kind == KIND:
        return [{"propose": {"model": str(model), "candidates": 4, "check_samples": 25}},
                *(s for s in METHODS["default"] if "nominal" not in s)]
    return [{"propose": {"model": str(model), "candidates": 8}}, *METHODS["default"]]


def optimization_outcomes(spec: Spec, setup: ProblemSetup, seed: int) -> OutcomeSet:
    """Seed ``seed``'s optimization outcomes (the spec's sampler), the same for every method."""
    return OutcomeSet.draw(spec.model, setup.outcomes, spec.run.sampler, OUTCOME_SEED + seed)


def run_method(spec: Spec, engine: Engine, method: str, setup: ProblemSetup, seed: int,
               budgets: tuple[int, ...]) -> Cell:
    """Run one method at the largest budget on seed ``seed``'s outcomes and read off every budget."""
    outcomes = optimization_outcomes(spec, setup, seed)
    limit = max(budgets)
    evaluator = TrackingEvaluator(spec, engine, outcomes, limit)
    problem = Problem(spec=spec, evaluator=evaluator, outcomes=outcomes)
    cell = Cell(method, seed)
    start = time.perf_counter()
    x = evaluator.x0.copy()
    try:
        for step in steps_of(method, limit, seed):
            x = STEPS.method(step.kind, step.method).run(problem, x, step.options, None).x
        cell.status = "finished"
    except BudgetExhausted:
        cell.status = "budget"
    cell.seconds = time.perf_counter() - start
    cell.ngspice_seconds = evaluator.meter.ngspice_seconds
    cell.timeline = [(s.simulations, s.passed / outcomes.n) for s in evaluator.timeline if s.passed >= 0]
    final_passed = None
    if cell.status == "finished":  # the method's own answer counts at every budget it fitted in
        final_passed = int(evaluator.passing(x, outcomes).sum()) \
            if evaluator.meter.simulations + outcomes.n <= limit else None
    for budget in budgets:
        snap = evaluator.at(budget)
        cell.designs[budget], cell.sims[budget] = snap.x, snap.simulations
        cell.opt_yield[budget] = max(snap.passed, 0) / outcomes.n if snap.passed >= 0 else float("nan")
        if final_passed is not None and evaluator.timeline[-1].simulations <= budget and final_passed >= snap.passed:
            cell.designs[budget], cell.opt_yield[budget] = x, final_passed / outcomes.n
    return cell


class Verifier:
    """Verified yields of designs on seed s's fresh sample, each distinct design simulated once."""

    def __init__(self, spec: Spec, engine: Engine, samples: int) -> None:
        self.spec, self.engine, self.samples = spec, engine, samples
        self.cache: dict[tuple[int, bytes], float] = {}
        self.evaluator = Evaluator(spec, engine)
        self.sets: dict[int, OutcomeSet] = {}

    def __call__(self, x: np.ndarray, seed: int) -> float:
        key = (seed, np.asarray(x, dtype=float).tobytes())
        if key not in self.cache:
            if seed not in self.sets:
                self.sets[seed] = OutcomeSet.draw(self.spec.model, self.samples, "mc", VERIFY_SEED + seed)
            self.cache[key] = self.yield_over(x, self.sets[seed])
        return self.cache[key]

    def yield_over(self, x: np.ndarray, outcomes: OutcomeSet) -> float:
        """The fraction of ``outcomes`` that design ``x`` passes (simulated, not cached)."""
        return float(self.evaluator.passing(x, outcomes).mean())


def set_luck(spec: Spec, setup: ProblemSetup, cells: list[Cell], verifier: Verifier) -> dict[str, Any]:
    """How lucky each seed's optimization outcomes are, apart from any fitting to them: per seed s, the yield on
    seed s's outcomes minus the verified yield (seed s's fresh sample) of the default's final design of the next
    seed, a design near the optimum that was chosen on other outcomes. The default's gap minus its seed's luck
    is what the optimizer itself fitted to its outcomes. Costs one outcome set and one verification per seed."""
    mine = sorted((c for c in cells if c.method == "default"), key=lambda c: c.seed)
    if len(mine) < 2:
        return {}
    budget = max(mine[0].designs)
    luck, net = [], []
    for cell, other in zip(mine, mine[1:] + mine[:1], strict=True):
        x = other.designs[budget]
        luck.append(verifier.yield_over(x, optimization_outcomes(spec, setup, cell.seed)) - verifier(x, cell.seed))
        net.append(cell.opt_yield[budget] - cell.verified[budget] - luck[-1])
    return {"budget": budget, "per_seed_luck": luck, "median_luck": float(np.median(luck)),
            "median_gap_less_luck": float(np.nanmedian(net))}


def summarise(cells: list[Cell], budgets: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """Per method and budget: median verified yield, inter-quartile range, median simulations, gap."""
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(c.method for c in cells):
        mine = [c for c in cells if c.method == method]
        out[method] = {}
        for budget in budgets:
            verified = np.array([c.verified[budget] for c in mine])
            opt = np.array([c.opt_yield[budget] for c in mine])
            gap = opt - verified
            out[method][str(budget)] = {
                "median_verified_yield": float(np.median(verified)),
                "iqr": [float(np.percentile(verified, 25)), float(np.percentile(verified, 75))],
                "median_sims": int(np.median([c.sims[budget] for c in mine])),
                "median_opt_yield": float(np.nanmedian(opt)) if np.isfinite(opt).any() else None,
                "median_gap": float(np.nanmedian(gap)) if np.isfinite(gap).any() else None,
                "seeds": len(mine)}
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    """Yield-vs-simulations curves (median and inter-quartile band per method), one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for method, by_budget in results[name]["methods"].items():
            budgets = sorted(int(b) for b in by_budget)
            med = [100 * by_budget[str(b)]["median_verified_yield"] for b in budgets]
            lo = [100 * by_budget[str(b)]["iqr"][0] for b in budgets]
            hi = [100 * by_budget[str(b)]["iqr"][1] for b in budgets]
            style = {"linewidth": 2.5, "color": "k"} if method == "default" else {"linewidth": 1.2}
            line, = ax.plot(budgets, med, marker="o", markersize=3, label=method, **style)
            ax.fill_between(budgets, lo, hi, alpha=0.12, color=line.get_color())
        best = results[name].get("best_known")
        if best is not None:
            ax.axhline(100 * best, color="grey", linestyle=":", label="best known")
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("simulations")
        ax.set_ylabel("verified yield, %")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(console: Console, name: str, summary: dict[str, Any], budgets: tuple[int, ...],
          best_known: float | None) -> None:
    """The problem's table: median verified yield [IQR] per method and budget."""
    title = f"{name}: median verified yield [inter-quartile], {{seeds}} seeds" + (
        f"; best known {best_known:.1%}" if best_known is not None else "")
    seeds = next(iter(next(iter(summary.values())).values()))["seeds"]
    grid = Table(title=title.format(seeds=seeds))
    grid.add_column("method")
    for budget in budgets:
        grid.add_column(f"{budget:,} sims", justify="right")
    grid.add_column("gap opt−verified", justify="right")
    for method, by_budget in summary.items():
        cells = []
        for budget in budgets:
            s = by_budget[str(budget)]
            cells.append(f"{s['median_verified_yield']:.1%} [{s['iqr'][0]:.1%}, {s['iqr'][1]:.1%}]"
                         f" ({s['median_sims']:,})")
        gap = by_budget[str(max(budgets))]["median_gap"]
        grid.add_row(method, *cells, "" if gap is None else f"{100 * gap:+.1f} pt")
    console.print(grid)


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables (docs/benchmarks.md): median verified yield [IQR] (median simulations)."""
    parts = []
    for name, result in results.items():
        setup = result["setup"]
        budgets = setup["budgets"]
        known = result.get("best_known")
        parts.append(f"**{name}** ({setup['outcomes']} optimization outcomes, {setup['seeds']} seeds, "
                     f"{setup['verify']:,} verification samples per seed"
                     + (f"; best known {100 * known:.1f} %" if known is not None else "") + ")\n")
        parts.append("| method | " + " | ".join(f"{b:,} sims" for b in budgets) + " | gap opt − verified |")
        parts.append("|---|" + "---|" * (len(budgets) + 1))
        for method, by_budget in result["methods"].items():
            cells = []
            for b in budgets:
                c = by_budget[str(b)]
                cells.append(f"{100 * c['median_verified_yield']:.1f} [{100 * c['iqr'][0]:.1f}, "
                             f"{100 * c['iqr'][1]:.1f}] ({c['median_sims']:,})")
            gap = by_budget[str(budgets[-1])]["median_gap"]
            label = f"**{method}**" if method == "default" else method
            parts.append(f"| {label} | " + " | ".join(cells) + f" | {'' if gap is None else f'{100 * gap:+.1f}'} |")
        seconds = ", ".join(f"{k} {v:.0f}" for k, v in result["seconds"].items())
        parts.append(f"\nSeconds: {seconds}.\n")
    return "\n".join(parts)


def targets(console: Console, name: str, summary: dict[str, Any], budgets: tuple[int, ...],
            best_known: float | None) -> dict[str, Any]:
    """Whether the default is within 0.5 points of the best baseline at every budget (median verified)."""
    if "default" not in summary:
        return {}
    checks = {}
    for budget in budgets:
        mine = summary["default"][str(budget)]["median_verified_yield"]
        others = {m: s[str(budget)]["median_verified_yield"] for m, s in summary.items() if m in BASELINES}
        if not others:
            continue
        best_method = max(others, key=others.get)
        checks[str(budget)] = {"default": mine, "best_baseline": best_method,
                               "best_baseline_yield": others[best_method], "met": mine >= others[best_method] - 0.005}
    top = summary["default"][str(max(budgets))]["median_verified_yield"]
    within = None if best_known is None else top >= best_known - 0.01
    met = all(c["met"] for c in checks.values())
    console.print(f"{name}: default ≥ best baseline − 0.5 pt at every budget: {'yes' if met else 'NO'}"
                  + ("" if within is None else f"; within 1 pt of best known at the largest budget: "
                     f"{'yes' if within else 'NO'} ({top:.1%} vs {best_known:.1%})"))
    return {"per_budget": checks, "every_budget": met, "within_1pt_of_best_known": within}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default=None, help=f"comma-separated subset of {', '.join(PROBLEMS)}")
    parser.add_argument("--methods", default=None, help=f"comma-separated subset of {', '.join(METHODS)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", default=None, help="comma-separated budget ladder (all chosen problems)")
    parser.add_argument("--outcomes", type=int, default=None, help="optimization outcomes (all chosen problems)")
    parser.add_argument("--verify", type=int, default=None, help="verification samples (all chosen problems)")
    parser.add_argument("--quick", action="store_true", help="smoke test: CSVA, 40 outcomes, budgets 200/600, 1 seed")
    parser.add_argument("--best-known", action="store_true",
                        help=f"run each method with 10x the largest budget (seed 0 unless --seeds) and write "
                        f"{BEST_KNOWN.name}")
    parser.add_argument("--best-known-file", type=Path, default=BEST_KNOWN,
                        help="the best-known cache read (and written by --best-known); default: the committed one")
    parser.add_argument("--warm-start", type=Path, default=None,
                        help="a model file from optiyield train: adds the method default+ml (an inverse model: 8 "
                             "proposals, then the default; a yield model: 4 proposals checked over 25 outcomes, "
                             "then the default's yield step) and the simulations both need to 95 %% of the "
                             "best-known yield")
    parser.add_argument("--set-luck", action="store_true",
                        help="also measure how lucky each seed's outcome set is at another seed's default design "
                             "(its part of the default's gap; one outcome set and one verification per seed)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--from-json", type=Path, nargs="*", default=None,
                        help="no simulation: merge these --json files and write --markdown/--plot from them")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the curves (default: next to --json)")
    parser.add_argument("--markdown", type=Path, default=None, help="write the tables as markdown")
    args = parser.parse_args()

    console = Console()
    if args.from_json:
        merged: dict[str, Any] = {}
        for path in args.from_json:
            for name, result in json.loads(path.read_text()).items():
                if name in merged:  # several runs of one problem (different methods): join their methods
                    merged[name]["methods"].update(result["methods"])
                    merged[name]["seconds"].update(result["seconds"])
                else:
                    merged[name] = result
        for name, result in merged.items():
            budgets = tuple(result["setup"]["budgets"])
            table(console, name, result["methods"], budgets, result.get("best_known"))
            result["targets"] = targets(console, name, result["methods"], budgets, result.get("best_known"))
        if args.markdown:
            args.markdown.write_text(markdown(merged))
        if args.plot:
            plot(merged, args.plot)
        if args.json:
            args.json.write_text(json.dumps(merged, indent=2) + "\n")
        return
    names = args.problems.split(",") if args.problems else (["csva"] if args.quick else list(PROBLEMS))
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problems {unknown}; expected some of {', '.join(PROBLEMS)}")
    methods = args.methods.split(",") if args.methods else list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {', '.join(METHODS)}")
    if args.warm_start is not None:
        METHODS["default+ml"] = warm_start_steps(args.warm_start.resolve())
        methods.append("default+ml")
    seeds = 1 if (args.quick or args.best_known) and args.seeds == 5 else args.seeds
    best_known = json.loads(args.best_known_file.read_text()) if args.best_known_file.is_file() else {}
    engine = Engine()
    results: dict[str, Any] = {}
    for name in names:
        setup = PROBLEMS[name]
        if args.quick:
            setup = ProblemSetup(setup.spec, QUICK.outcomes, QUICK.budgets, QUICK.verify, setup.kind)
        if args.budgets:
            setup = ProblemSetup(setup.spec, setup.outcomes, tuple(int(b) for b in args.budgets.split(",")),
                                 setup.verify, setup.kind)
        if args.outcomes or args.verify:
            setup = ProblemSetup(setup.spec, args.outcomes or setup.outcomes, setup.budgets,
                                 args.verify or setup.verify, setup.kind)
        budgets = (10 * max(setup.budgets),) if args.best_known else setup.budgets
        spec = load_spec(ROOT / setup.spec)
        verifier = Verifier(spec, engine, setup.verify)
        cells, seconds = [], {}
        for method in methods:
            for seed in range(seeds):
                cell = run_method(spec, engine, method, setup, seed, budgets)
                cells.append(cell)
                seconds[method] = seconds.get(method, 0.0) + cell.seconds
                console.print(f"  {name} {method} seed {seed}: {cell.status}, {cell.sims[max(budgets)]:,} sims, "
                              f"{cell.seconds:.0f} s ({cell.ngspice_seconds:.0f} ngspice s), optimization yield "
                              f"{cell.opt_yield[max(budgets)]:.1%}")
        start = time.perf_counter()
        for cell in cells:
            cell.verified = {b: verifier(cell.designs[b], cell.seed) for b in budgets}
        seconds["verification"] = time.perf_counter() - start
        luck = set_luck(spec, setup, cells, verifier) if args.set_luck else {}
        summary = summarise(cells, budgets)
        if args.best_known:
            top = max(summary, key=lambda m: summary[m][str(budgets[0])]["median_verified_yield"])
            best_known[name] = {"best_known": summary[top][str(budgets[0])]["median_verified_yield"], "method": top,
                                "budget": budgets[0], "seeds": seeds, "verify_samples": setup.verify,
                                "outcomes": setup.outcomes,
                                "date": date.today().isoformat(),
                                "command": "python benchmarks/yield_opt.py " + shlex.join(sys.argv[1:])}
        known = best_known.get(name, {}).get("best_known")
        table(console, name, summary, budgets, known)
        results[name] = {"best_known": known, "methods": summary,
                         "setup": {"spec": setup.spec, "outcomes": setup.outcomes, "budgets": list(budgets),
                                   "verify": setup.verify, "seeds": seeds},
                         "seconds": {k: round(v, 1) for k, v in seconds.items()}}
        results[name]["targets"] = targets(console, name, summary, budgets, known)
        if luck:
            results[name]["set_luck"] = luck
            gap = summary["default"][str(luck["budget"])]["median_gap"]
            console.print(f"{name}: the default's gap {100 * gap:+.1f} pt; the outcome sets' luck at another seed's "
                          f"design {100 * luck['median_luck']:+.1f} pt (per seed "
                          + ", ".join(f"{100 * v:+.1f}" for v in luck["per_seed_luck"])
                          + f"); gap less luck {100 * luck['median_gap_less_luck']:+.1f} pt (medians)")
        if args.warm_start is not None:
            reference = known if known is not None else max(c.verified[max(budgets)] for c in cells)
            warm = warm_start_summary(cells, reference)
            warm["reference"] = "best known" if known is not None else "best verified yield of this run"
            results[name]["warm_start"] = warm
            for median_key, _, ratio_key, _, wording in WARM_START_CRITERIA:
                console.print(f"{name}: " + wording.format(reference=warm["reference"], level=warm["level"])
                              + ", median: " + ", ".join(f"{m} {warm[m][median_key]:,.0f}"
                                                         for m in ("default", "default+ml") if m in warm)
                              + (f"; cold / ml {warm[ratio_key]:.1f}x" if ratio_key in warm else ""))
        console.print(f"{name}: seconds " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    if args.best_known:
        args.best_known_file.write_text(json.dumps(best_known, indent=2) + "\n")
        console.print(f"wrote {args.best_known_file}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results))
    plot_path = args.plot or (args.json.with_suffix(".png") if args.json else None)
    if plot_path is not None and not args.best_known:
        plot(results, plot_path)
        console.print(f"curves: {plot_path}")


if __name__ == "__main__":
    main()
