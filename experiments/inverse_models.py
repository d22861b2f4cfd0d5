"""Inverse models evaluated like AICircuit, done right: re-simulated errors and threshold-query success.

For each circuit (default: CSVA, LNA, 28 GHz PA), every model kind (MLP, Transformer, SVR, random forest,
KNN and the 1-NN lookup) is trained with AICircuit's protocol on the training rows of the split in
``warmstart_common`` (the held-out region and the random test rows are never trained on). Then:

1. **Exact targets** (AICircuit's evaluation): for ``--test`` random test rows, each model predicts a
   design from the row's measures; every prediction is re-simulated through ngspice and the error per
   metric is |simulated − target| / |target| (absolute, in the measure's unit, for a measure whose data
   crosses zero, such as Psat in dBm). Baseline: the spec's fixed start design.
2. **Threshold queries from the held-out region**: ``--targets`` threshold specs inside the held-out box
   (no training design meets them); each model proposes ``--candidates`` diverse designs (ranked by a
   forward surrogate trained on the training rows), all re-simulated; success = at least one meets every
   bound (and, ``top1``, the best-ranked one alone).

Prints a table per circuit, writes error-distribution plots (box plots per metric, like the paper's
figures) to ``--plots`` and, with ``--json FILE``, per circuit: ``median_rel_error`` (model → metric →
value), ``fixed_design_median_rel_error``, ``threshold_success`` and ``threshold_success_top1`` (model
→ share), ``train_seconds`` and the sizes.

    python experiments/inverse_models.py [--circuits csva,lna,pa_28ghz] [--test 50] [--json FILE]
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

from optiyield.objective import ErrorModel, minimax_value
from optiyield.optim.evaluator import Evaluator
from optiyield.propose.inverse import train_inverse, train_surrogate
from optiyield.propose.query import propose_candidates
from optiyield.propose.regressors import KINDS, TrainOptions
from optiyield.sim.engine import Engine


def simulate(evaluator: Evaluator, designs: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Nominal measures (N, F) of designs (N, D), one batched engine call; NaN where a simulation failed."""
    responses = evaluator.responses(designs)
    return np.column_stack([responses.values[m][:, 0] for m in names])


def errors_against(simulated: np.ndarray, targets: np.ndarray, absolute: np.ndarray) -> np.ndarray:
    """Per-row, per-metric error: relative, or absolute where ``absolute`` (failed simulations → inf)."""
    delta = np.abs(simulated - targets)
    relative = delta / np.maximum(np.abs(targets), 1e-30)
    return np.where(np.isfinite(delta), np.where(absolute, delta, relative), np.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--circuits", default="csva,lna,pa_28ghz")
    parser.add_argument("--models", default=",".join(KINDS))
    parser.add_argument("--test", type=int, default=50, help="exact test targets per circuit")
    parser.add_argument("--targets", type=int, default=20, help="held-out threshold queries per circuit")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--transformer-epochs", type=int, default=None,
                        help="epochs of the Transformer (default --epochs; it is ~15x slower per epoch on CPU)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads (1: leave the cores to ngspice; more threads oversubscribe)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data",
                        help="folder of the sweep datasets <circuit>.parquet (simulated there when missing)")
    parser.add_argument("--points", type=int, default=None,
                        help="design points of a dataset simulated now (default: warmstart_common.DATASET_POINTS)")
    parser.add_argument("--plots", type=Path, default=ROOT / "out" / "inverse_models")
    args = parser.parse_args()

    console = Console(width=150)
    engine = Engine()
    import torch

    torch.set_num_threads(args.torch_threads)
    kinds = args.models.split(",")
    results: dict[str, dict] = {}
    for name in args.circuits.split(","):
        spec, data = dataset(name, engine, args.points, args.data_dir)
        part = partition(spec, data)
        train = subset(data, part.train)
        evaluator = Evaluator(spec, engine)
        names = data.measure_names
        absolute = (data.measures.min(axis=0) < 0) & (data.measures.max(axis=0) > 0)
        surrogate = train_surrogate(train.designs, train.measures)
        models, seconds = {}, {}
        for kind in kinds:
            started = time.perf_counter()
            epochs = args.transformer_epochs if kind == "transformer" and args.transformer_epochs else args.epochs
            models[kind] = train_inverse(spec, train, kind, TrainOptions(epochs=epochs), surrogate=False)
            seconds[kind] = time.perf_counter() - started
            if kind != "lookup":
                models[kind].surrogate = surrogate
            console.print(f"{name}: trained {kind} in {seconds[kind]:.1f} s", highlight=False)

        rows = pick(part.test, args.test, 3)
        targets = data.measures[rows]
        predicted = np.vstack([models[k].predict(targets) for k in kinds])
        simulated = simulate(evaluator, predicted, names)
        errors = {k: errors_against(simulated[i * len(rows):(i + 1) * len(rows)], targets, absolute)
                  for i, k in enumerate(kinds)}
        fixed = simulate(evaluator, evaluator.x0[None, :], names)
        errors["fixed design"] = errors_against(np.repeat(fixed, len(rows), axis=0), targets, absolute)

        spread = spreads(data)
        queries = [target_spec(spec, data.measures[r], spread, 0.02, part.box)
                   for r in pick(part.heldout, args.targets, 2)]
        success, top1 = {}, {}
        for kind in kinds:
            met_any, met_first = [], []
            for query_spec in queries:
                query = ErrorModel.from_specs(query_spec.file.specs)
                candidates = propose_candidates(models[kind], query, args.candidates, seed=0)
                measured = simulate(evaluator, candidates.designs, names)
                error = minimax_value(query.errors({m: measured[:, q] for q, m in enumerate(names)}), query.weights)
                met_any.append(bool((error <= 0).any()))
                met_first.append(bool(error[0] <= 0))
            success[kind], top1[kind] = float(np.mean(met_any)), float(np.mean(met_first))

        results[name] = {
            "median_rel_error": {k: {m: float(np.median(errors[k][:, q])) for q, m in enumerate(names)}
                                 for k in kinds},
            "fixed_design_median_rel_error": {m: float(np.median(errors["fixed design"][:, q]))
                                              for q, m in enumerate(names)},
            "absolute_error_metrics": [m for q, m in enumerate(names) if absolute[q]],
            "threshold_success": success, "threshold_success_top1": top1, "train_seconds": seconds,
            "dataset_rows": len(data), "train_rows": len(part.train), "test_targets": len(rows),
            "heldout_queries": len(queries), "candidates": args.candidates, "epochs": args.epochs,
            "transformer_epochs": args.transformer_epochs or args.epochs}
        table = Table(title=f"{name}: median error after re-simulation ({len(rows)} exact test targets; "
                            f"relative unless marked abs) and success on {len(queries)} held-out threshold queries")
        table.add_column("model")
        for q, m in enumerate(names):
            table.add_column(f"{m} (abs)" if absolute[q] else m, justify="right")
        table.add_column(f"queries met (any of {args.candidates} / top 1)", justify="right")
        table.add_column("train s", justify="right")
        for k in [*kinds, "fixed design"]:
            cells = [f"{np.median(errors[k][:, q]):.3g}" if absolute[q] else f"{np.median(errors[k][:, q]) * 100:.2f} %"
                     for q in range(len(names))]
            met = f"{success[k] * 100:.0f} % / {top1[k] * 100:.0f} %" if k in success else "—"
            table.add_row(k, *cells, met, f"{seconds[k]:.1f}" if k in seconds else "—")
        console.print(table)
        plot(name, names, errors, absolute, args.plots / f"{name}.png")
    console.print(f"plots: {args.plots}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def plot(name: str, names: tuple[str, ...], errors: dict[str, np.ndarray], absolute: np.ndarray, path: Path) -> None:
    """Box plots of the per-target error of each model, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.8), squeeze=False)
    labels = list(errors)
    for q, metric in enumerate(names):
        ax = axes[0][q]
        values = [np.clip(errors[k][:, q][np.isfinite(errors[k][:, q])], 1e-6, None) for k in labels]
        ax.boxplot(values, showfliers=True)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=60, fontsize=8)
        ax.set_yscale("log")
        ax.set_title(f"{metric} ({'absolute' if absolute[q] else 'relative'} error)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{name}: error after re-simulating each model's design")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
