"""Warm start vs cold start: simulations to the first design meeting every spec, per start.

For each circuit (default: the CSVA amplifier, the LNA and the 28 GHz PA) and each of ``--targets``
random feasible threshold-spec targets (see ``warmstart_common``: every bound of the spec moved to a
held-back dataset row's simulated values, loosened by ``--slack`` × the measure's spread), the same
optimizer — minimax (``--gradient``, default IGAT) with ``until: feasible`` — runs from three starts:

* **cold**: the spec file's start point;
* **lookup**: the training row with the best measured minimax error for the target (the 1-nearest-
  neighbour lookup generalised to thresholds), re-simulated (1 simulation);
* **ml**: the best of ``--candidates`` diverse proposals of an inverse model (``--model``, default the
  MLP with its forward surrogate), all re-simulated in one batch. Also reported (``ml seq.``): the
  count had the candidates been re-simulated one at a time in the surrogate's rank order, stopping at
  the first that meets every spec.

Random targets the spec's own start point already meets are skipped (they need no optimizer; their
share is reported as ``start_meets_share``): the comparison is over targets that need design work.

Counted: every ngspice simulation from the start on (the proposals' re-simulations included; the
dataset is a one-off cost, reported separately), up to and including the batch that holds the first
design meeting every bound; ``--budget`` caps a run (then it failed). The design found gets a Monte
Carlo yield on the target (``--yield-samples`` outcomes). Targets come from two pools: random test
rows (in the training distribution) and the held-out region (a box of the spec space holding the
best-performing 10 % of the data, never trained on; targets stay inside it, so neither the lookup nor
the model has seen a design that meets them).

    python experiments/warmstart_vs_cold.py [--circuits csva,lna,pa_28ghz] [--targets 20] [--json FILE]

Measured run (2 cores, about 35 min with the datasets on disk): see docs/warm-start.md.

``--json`` writes, per circuit, ``cold_median_sims``, ``lookup_median_sims``, ``ml_median_sims``,
``cold_success``, ``lookup_success``, ``ml_success`` (random-test-row targets; a median is null when
more than half the runs failed), the same under ``heldout``, and the median yields, budgets and sizes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from warmstart_common import ROOT, dataset, partition, pick, spreads, subset, target_spec

from optiyield.objective import ErrorModel, minimax_value, passes
from optiyield.optim.evaluator import Evaluator, Responses
from optiyield.optim.minimax import minimax
from optiyield.propose import ModelProposer, propose_start
from optiyield.propose.inverse import InverseModel, train_inverse
from optiyield.propose.query import query_errors
from optiyield.propose.regressors import TrainOptions
from optiyield.sim.engine import Engine
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet
from optiyield.store import Store

METHODS = ("cold", "lookup", "ml")


class BudgetSpent(Exception):
    """The run used its simulation budget without meeting every spec."""


class WatchedEvaluator(Evaluator):
    """An evaluator that notes the simulation count at the first nominal design meeting every spec and
    stops the run once the budget is spent. Like `optiyield run`, it keeps a store (in memory), so a
    design simulated twice is counted once."""

    def __init__(self, spec: Spec, engine: Engine, budget: int) -> None:
        super().__init__(spec, engine)
        self.store = Store(":memory:", self.job.fingerprint, spec.parameters, spec.testbench.measure_names)
        self.budget = budget
        self.first: int | None = None
        self.first_x: np.ndarray | None = None

    def responses(self, points: np.ndarray, outcomes: OutcomeSet | None = None) -> Responses:
        result = super().responses(points, outcomes)
        if outcomes is None and self.first is None:
            error = minimax_value(result.errors(self.errors)[:, 0, :], self.errors.weights)
            met = np.flatnonzero(error <= 0)
            if len(met):
                self.first = self.meter.simulations
                self.first_x = np.atleast_2d(points)[met[0]].copy()
        if self.first is None and self.meter.simulations >= self.budget:
            raise BudgetSpent
        return result


def one_run(method: str, target: Spec, engine: Engine, models: dict[str, InverseModel], args: argparse.Namespace
            ) -> dict:
    """Sims to the first feasible design from one start (None if the budget ran out), and that design."""
    evaluator = WatchedEvaluator(target, engine, args.budget)
    x = evaluator.x0
    sequential = None
    try:
        if method != "cold":
            count = 1 if method == "lookup" else args.candidates
            proposal = propose_start(ModelProposer(models[method]), target, evaluator, count, seed=0)
            x = proposal.x
            met = np.flatnonzero(proposal.error <= 0)  # candidates come best-ranked first
            sequential = int(met[0]) + 1 if len(met) else None
        if evaluator.first is None:
            result = minimax(evaluator, x, gradient=args.gradient, max_iter=500, until="feasible")
            x = result.x
    except BudgetSpent:
        pass
    if sequential is None:
        sequential = evaluator.first
    return {"sims": evaluator.first, "x": evaluator.first_x if evaluator.first_x is not None else x,
            "spent": evaluator.meter.simulations, "sequential": sequential}


def yield_at(target: Spec, engine: Engine, x: np.ndarray, samples: int) -> float:
    """Monte Carlo yield of ``target`` at design ``x`` (fixed Sobol' outcomes)."""
    evaluator = Evaluator(target, engine)
    outcomes = OutcomeSet.draw(target.model, samples, "sobol", 11)
    errors = evaluator.responses(x, outcomes).errors(evaluator.errors)[0]
    return float(passes(errors).mean())


def meets(target: Spec, measures: np.ndarray) -> bool:
    """Whether measures (in the spec's measure order) meet every bound of ``target``."""
    query = ErrorModel.from_specs(target.file.specs)
    return bool(query_errors(query, tuple(target.file.specs), measures[None, :])[0] <= 0)


def summarise(runs: list[dict], budget: int) -> dict:
    """Median sims (failures count as infinite; null if more than half failed), success rate, yields."""
    out = {}
    for method in METHODS:
        sims = np.array([r[method]["sims"] if r[method]["sims"] is not None else np.inf for r in runs], dtype=float)
        median = float(np.median(sims)) if len(sims) else np.nan
        out[f"{method}_median_sims"] = median if np.isfinite(median) else None
        out[f"{method}_success"] = float(np.isfinite(sims).mean()) if len(sims) else None
        out[f"{method}_median_yield"] = float(np.median([r[method]["yield"] for r in runs])) if runs else None
    sequential = np.array([r["ml"]["sequential"] if r["ml"]["sequential"] is not None else np.inf for r in runs])
    median = float(np.median(sequential)) if len(sequential) else np.nan
    out["ml_sequential_median_sims"] = median if np.isfinite(median) else None
    ml, cold = out["ml_median_sims"], out["cold_median_sims"]
    out["ml_speedup_vs_cold"] = (cold / ml) if ml and cold else None
    out["targets"], out["budget"] = len(runs), budget
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--circuits", default="csva,lna,pa_28ghz", help="comma-separated spec names")
    parser.add_argument("--targets", type=int, default=20, help="random-test-row targets per circuit")
    parser.add_argument("--heldout-targets", type=int, default=10, help="held-out-region targets per circuit")
    parser.add_argument("--budget", type=int, default=300, help="simulations per run before it counts as failed")
    parser.add_argument("--candidates", type=int, default=8, help="ML proposals re-simulated per target")
    parser.add_argument("--model", default="mlp", help="inverse model kind for the ML start")
    parser.add_argument("--gradient", default="igat", choices=("igat", "past", "central"))
    parser.add_argument("--slack", type=float, default=0.02, help="target loosening, × the measure's spread")
    parser.add_argument("--yield-samples", type=int, default=20, help="Monte Carlo outcomes per found design")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data",
                        help="folder of the sweep datasets <circuit>.parquet (simulated there when missing)")
    parser.add_argument("--points", type=int, default=None,
                        help="design points of a dataset simulated now (default: warmstart_common.DATASET_POINTS)")
    parser.add_argument("--plot", type=Path, default=ROOT / "out" / "warmstart_vs_cold.png")
    args = parser.parse_args()

    console = Console(width=150)
    engine = Engine()
    results: dict[str, dict] = {}
    all_runs: dict[str, dict[str, list[dict]]] = {}
    for name in args.circuits.split(","):
        started = time.perf_counter()
        spec, data = dataset(name, engine, args.points, args.data_dir)
        part = partition(spec, data)
        train = subset(data, part.train)
        models = {"lookup": train_inverse(spec, train, "lookup", surrogate=False),
                  "ml": train_inverse(spec, train, args.model, TrainOptions(epochs=args.epochs))}
        spread = spreads(data)
        start_evaluator = Evaluator(spec, engine)
        start = start_evaluator.responses(start_evaluator.x0)
        start_measures = np.array([start.values[m][0, 0] for m in data.measure_names])
        needs_work = [r for r in pick(part.test, len(part.test), 1)
                      if not meets(target_spec(spec, data.measures[r], spread, args.slack), start_measures)]
        pools = {"random": np.array(needs_work[: args.targets]),
                 "heldout": pick(part.heldout, args.heldout_targets, 2)}
        start_meets = 1.0 - len(needs_work) / len(part.test)
        all_runs[name] = {}
        for pool, rows in pools.items():
            runs = []
            for k, row in enumerate(rows):
                target = target_spec(spec, data.measures[row], spread, args.slack,
                                     part.box if pool == "heldout" else None)
                record = {}
                for method in METHODS:
                    run = one_run(method, target, engine, models, args)
                    run["yield"] = yield_at(target, engine, run["x"], args.yield_samples)
                    record[method] = run
                runs.append(record)
                console.print(f"{name} {pool} target {k + 1}/{len(rows)}: " + ", ".join(
                    f"{m} {r['sims'] if r['sims'] is not None else '—'} sims (yield {r['yield'] * 100:.0f} %)"
                    for m, r in record.items()), highlight=False)
            all_runs[name][pool] = runs
        random_summary = summarise(all_runs[name]["random"], args.budget)
        results[name] = {**random_summary, "heldout": summarise(all_runs[name]["heldout"], args.budget),
                         "start_meets_share": start_meets,
                         "dataset_rows": len(data), "train_rows": len(part.train), "model": args.model,
                         "candidates": args.candidates, "gradient": args.gradient, "slack": args.slack,
                         "seconds": time.perf_counter() - started}

    table = Table(title="Simulations to the first design meeting every spec (median over targets; "
                        "failed = over budget)")
    for column in ("circuit", "targets", "cold", "lookup", "ml", "ml seq.", "cold/ml", "success cold/lookup/ml",
                   "median yield cold/lookup/ml"):
        table.add_column(column)
    for name, r in results.items():
        for pool, s in (("random", r), ("held-out", r["heldout"])):
            def med(m: str, s: dict = s) -> str:
                v = s[f"{m}_median_sims"]
                return "> budget" if v is None else f"{v:g}"
            speed = s["ml_speedup_vs_cold"]
            table.add_row(f"{name} ({pool})", str(s["targets"]), med("cold"), med("lookup"), med("ml"),
                          med("ml_sequential"),
                          "—" if speed is None else f"{speed:.1f}×",
                          " / ".join(f"{s[f'{m}_success'] * 100:.0f} %" for m in METHODS),
                          " / ".join(f"{s[f'{m}_median_yield'] * 100:.0f} %" for m in METHODS))
    console.print(table)
    plot(all_runs, args.plot, args.budget)
    console.print(f"plot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def plot(all_runs: dict[str, dict[str, list[dict]]], path: Path, budget: int) -> None:
    """Per circuit and pool: the fraction of targets solved within N simulations, for each start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(all_runs), figsize=(4.2 * len(all_runs), 6.5), squeeze=False)
    for col, (name, pools) in enumerate(all_runs.items()):
        for row, (pool, runs) in enumerate(pools.items()):
            ax = axes[row][col]
            for method in METHODS:
                sims = np.sort([r[method]["sims"] for r in runs if r[method]["sims"] is not None])
                steps = np.concatenate([[0], sims, [budget]])
                share = np.concatenate([[0], np.arange(1, len(sims) + 1), [len(sims)]]) / max(len(runs), 1)
                ax.step(steps, share, where="post", label=method)
            ax.set_xscale("symlog", linthresh=10)
            ax.set_title(f"{name}: {pool} targets")
            ax.set_xlabel("simulations")
            ax.set_ylabel("share of targets met")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
