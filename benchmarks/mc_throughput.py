"""Monte Carlo throughput of the CSVA three ways, in one run on this machine.

1. one ngspice process per sample (what most tools do), on all cores;
2. the batched engine (K copies per deck) on 1 worker;
3. the batched engine on all cores;
and the engine's overhead: its wall time on 1 worker against bare ngspice time on the same decks
(the decks the engine wrote, re-run with nothing but ``ngspice -b -r`` in a loop).

    python benchmarks/mc_throughput.py [--samples 2000] [--repeats 3] [--json FILE]

Prints a table; with ``--json`` writes ``samples_per_s_per_sample_process``, ``samples_per_s_batched_1``,
``samples_per_s_batched_all``, ``speedup_vs_per_sample`` and ``overhead_vs_bare`` (a fraction).
Medians over ``--repeats`` runs; the machines are noisy, so compare ratios from one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.montecarlo import sample_matrix  # noqa: E402
from optiyield.sim.engine import Engine, default_workers  # noqa: E402
from optiyield.sim.ngspice import NgspiceSimulator  # noqa: E402
from optiyield.sim.ngspice.deck import render  # noqa: E402
from optiyield.sim.ngspice.runner import NgspiceRunner  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_ngspice_seconds(runner: NgspiceRunner, decks: list[str]) -> float:
    """Run pre-written decks with plain `ngspice -b -r` (same spinit), sequentially; total wall time."""
    folder = runner.workdir()
    paths = []
    for index, deck in enumerate(decks):
        path = folder / f"deck{index}.cir"
        path.write_text(deck)
        paths.append(path)
    start = time.perf_counter()
    for index, path in enumerate(paths):
        subprocess.run([runner.executable, "-b", "-r", str(folder / f"out{index}.raw"), str(path)],
                       cwd=folder, env=runner._env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    spec = load_spec(ROOT / "specs" / "csva.yaml")
    values = sample_matrix(spec, OutcomeSet.draw(spec.model, args.samples, "mc", seed=1))
    job = dataclasses.replace(spec.testbench.job(spec.parameters), batch_size=args.batch_size)
    cores = default_workers()
    runner = NgspiceRunner()
    simulator = NgspiceSimulator(runner)
    one, everyone = Engine(simulator, workers=1), Engine(simulator, workers=cores)
    per_sample_job = dataclasses.replace(job, copies=False)
    one.run(job, values[:100])  # warm caches

    rows: dict[str, list[float]] = {"per_sample": [], "batched_1": [], "batched_all": [], "bare": []}
    check: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        result = everyone.run(per_sample_job, values)
        rows["per_sample"].append(result.wall_seconds)
        check["per_sample"] = result.values["gain_db"]
        result = one.run(job, values)
        rows["batched_1"].append(result.wall_seconds)
        check["batched"] = result.values["gain_db"]
        rows["batched_all"].append(everyone.run(job, values).wall_seconds)
        decks = [render(job.netlist, job.names, values[i:i + args.batch_size], "out.raw", copies=True)[0]
                 for i in range(0, args.samples, args.batch_size)]
        rows["bare"].append(bare_ngspice_seconds(runner, decks))
    median = {k: statistics.median(v) for k, v in rows.items()}
    rate = {k: args.samples / v for k, v in median.items()}
    agree = float(np.nanmax(np.abs(check["per_sample"] - check["batched"])))
    figures = {
        "samples": args.samples,
        "cores": cores,
        "samples_per_s_per_sample_process": rate["per_sample"],
        "samples_per_s_batched_1": rate["batched_1"],
        "samples_per_s_batched_all": rate["batched_all"],
        "speedup_vs_per_sample": rate["batched_all"] / rate["per_sample"],
        "overhead_vs_bare": median["batched_1"] / median["bare"] - 1.0,
        "bare_ngspice_seconds": median["bare"],
        "max_gain_difference_db": agree,
    }
    table = Table(title=f"CSVA Monte Carlo, {args.samples} samples, {cores} cores, median of {args.repeats}")
    for column in ("method", "wall (s)", "samples/s", "vs per-sample"):
        table.add_column(column, justify="right" if column != "method" else "left")
    labels = {"per_sample": f"one ngspice process per sample ({cores} parallel)",
              "batched_1": f"batched engine, K={args.batch_size}, 1 worker",
              "batched_all": f"batched engine, {cores} workers",
              "bare": "bare ngspice on the same decks, 1 process"}
    for key, label in labels.items():
        table.add_row(label, f"{median[key]:.3f}", f"{rate[key]:.0f}", f"{rate[key] / rate['per_sample']:.1f}×")
    console = Console()
    console.print(table)
    console.print(f"engine overhead over bare ngspice (1 worker): {figures['overhead_vs_bare'] * 100:.1f} %   "
                  f"(target ≤ 25 %)")
    console.print(f"batched all cores vs per-sample processes: {figures['speedup_vs_per_sample']:.1f}×   "
                  f"(target ≥ 40×);  max |Δgain| batched vs per-sample: {agree:.2e} dB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
