"""optiyield against a widely used Python ngspice runner (spicelib), and how optiyield scales.

1. **Peer comparison:** the same 1,000-sample Monte Carlo of the common-source amplifier (the same
   parameter rows, the same netlist and model card, gain measured from the same AC data) run with
   spicelib the way its documentation does Monte Carlo — `SpiceEditor.set_parameters` + `SimRunner.run`
   per sample, 2 parallel ngspice processes, the raw file read in a callback — and with optiyield's
   batched engine on all cores. Both gains are compared sample by sample.
2. **Scaling:** optiyield samples/s vs batch size (copies per deck), and vs Dask workers
   (LocalCluster with 1 and 2 workers), with the engine's overhead over bare ngspice time.

    python benchmarks/peer_spicelib.py [--samples 1000] [--scaling-samples 20000] [--json FILE]

``--json`` writes ``optiyield_samples_per_s``, ``spicelib_samples_per_s``, ``ratio``,
``speedup_1_to_2_workers`` and the scaling tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.montecarlo import sample_matrix  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402

console = Console(width=170)


def spicelib_monte_carlo(values: np.ndarray, names: tuple[str, ...], parallel: int) -> tuple[float, np.ndarray]:
    """Run the samples with spicelib; (wall seconds, low-frequency gain in dB per sample)."""
    from spicelib import RawRead, SimRunner, SpiceEditor
    from spicelib.simulators.ngspice_simulator import NGspiceSimulator

    logging.getLogger("spicelib").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="spicelib-bench-"))
    netlist = (ROOT / "circuits" / "csva" / "netlist.cir").read_text()
    netlist = netlist.replace("../models/", str(ROOT / "circuits" / "models") + "/")
    (folder / "csva.net").write_text(netlist)
    gains = np.full(len(values), np.nan)

    def measure(raw_file: Path, log_file: Path, index: int) -> None:  # runs in spicelib's callback thread
        raw = RawRead(str(raw_file), traces_to_read=["frequency", "v(vout)", "v(vin)"], dialect="ngspice",
                      verbose=False)
        vout = raw.get_trace("v(vout)").get_wave(0)
        vin = raw.get_trace("v(vin)").get_wave(0)
        gains[index] = 20 * np.log10(abs(vout[0] / vin[0]))

    editor = SpiceEditor(str(folder / "csva.net"))
    runner = SimRunner(simulator=NGspiceSimulator, parallel_sims=parallel, output_folder=str(folder), verbose=False)
    saved = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # ngspice's children print to our stdout through spicelib
    try:
        start = time.perf_counter()
        for index, row in enumerate(values):
            editor.set_parameters(**{n: float(v) for n, v in zip(names, row, strict=True)})
            runner.run(editor, callback=measure, callback_args={"index": index}, run_filename=f"run_{index}.net")
        runner.wait_completion()
        seconds = time.perf_counter() - start
    finally:
        os.dup2(saved, 1)
    shutil.rmtree(folder, ignore_errors=True)
    return seconds, gains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--scaling-samples", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    spec = load_spec(ROOT / "specs" / "csva.yaml")
    names = spec.parameters
    values = sample_matrix(spec, OutcomeSet.draw(spec.model, args.samples, "mc", seed=1))
    job = spec.testbench.job(names)
    engine = Engine()
    engine.run(job, values[:100])  # warm-up

    spicelib_seconds, spicelib_gain = spicelib_monte_carlo(values, names, parallel=engine.workers)
    ours = [engine.run(job, values) for _ in range(args.repeats)]
    ours_seconds = statistics.median(r.wall_seconds for r in ours)
    agreement = float(np.nanmax(np.abs(ours[0].values["gain_db"] - spicelib_gain)))
    figures: dict[str, object] = {
        "samples": args.samples,
        "optiyield_samples_per_s": args.samples / ours_seconds,
        "spicelib_samples_per_s": args.samples / spicelib_seconds,
        "ratio": spicelib_seconds / ours_seconds,
        "max_gain_difference_db": agreement,
        "spicelib_failed": int(np.isnan(spicelib_gain).sum()),
    }
    table = Table(title=f"CSVA Monte Carlo, {args.samples} samples, {engine.workers} parallel ngspice processes")
    for column in ("runner", "wall (s)", "samples/s", "ratio"):
        table.add_column(column, justify="left" if column == "runner" else "right")
    table.add_row("spicelib (SimRunner, one process per sample)", f"{spicelib_seconds:.2f}",
                  f"{figures['spicelib_samples_per_s']:.0f}", "1.0×")
    table.add_row(f"optiyield (batched, median of {args.repeats})", f"{ours_seconds:.3f}",
                  f"{figures['optiyield_samples_per_s']:.0f}", f"{figures['ratio']:.0f}×")
    console.print(table)
    console.print(f"max |gain difference| spicelib vs optiyield: {agreement:.2e} dB; "
                  f"spicelib samples without a result: {figures['spicelib_failed']}")

    figures.update(scaling(spec, job, args.scaling_samples, args.repeats))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def cpu_seconds(processes: list) -> tuple[float, float]:  # noqa: ANN001 - psutil.Process
    """(Python, ngspice) CPU seconds so far of ``processes``: each one's own user + system time, and that of its
    finished children (the ngspice runs it waited for)."""
    import psutil

    own = children = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        own += times.user + times.system
        children += times.children_user + times.children_system
    return own, children


def scaling(spec, job, count: int, repeats: int) -> dict[str, object]:  # noqa: ANN001
    """Samples/s vs batch size (local engine, all cores) and vs Dask LocalCluster workers, with the CPU seconds
    per sample of the Python processes (client and workers) and of ngspice: on a machine with as many cores as
    ngspice processes, the Python CPU competes with ngspice for the same cores."""
    import psutil

    from optiyield.execute import make_engine

    # Fresh rows for the warm-up and for every repeat: a Dask task is keyed by its job and rows, so rows
    # simulated just before could be served from the cluster's memory instead of being simulated (with a
    # small --scaling-samples the warm-up rows were all of them, and the timed run simulated nothing).
    sets = [sample_matrix(spec, OutcomeSet.draw(spec.model, count, "mc", seed=2 + r)) for r in range(repeats)]
    warm = sample_matrix(spec, OutcomeSet.draw(spec.model, min(count, 200), "mc", seed=2 + repeats))
    local = Engine()
    batch_rows = []
    table = Table(title=f"optiyield scaling, {count} CSVA samples (median of {repeats})")
    for column in ("configuration", "samples/s", "ngspice s", "wall s", "overhead vs ngspice",
                   "Python CPU µs/sample", "ngspice CPU µs/sample"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    me = psutil.Process()

    def timed(engine, processes: list, job) -> tuple[list, float, float]:  # noqa: ANN001
        before = cpu_seconds(processes)
        runs = [engine.run(job, values) for values in sets]
        after = cpu_seconds(processes)
        samples = count * len(sets)
        return runs, (after[0] - before[0]) / samples * 1e6, (after[1] - before[1]) / samples * 1e6

    for batch in (50, 100, 250, 500, 1000):
        runs, python_us, ngspice_us = timed(local, [me], dataclasses.replace(job, batch_size=batch))
        wall = statistics.median(r.wall_seconds for r in runs)
        ngspice = statistics.median(r.ngspice_seconds for r in runs) / local.workers
        batch_rows.append({"batch_size": batch, "samples_per_s": count / wall, "overhead": wall / ngspice - 1,
                           "python_cpu_us_per_sample": python_us, "ngspice_cpu_us_per_sample": ngspice_us})
        table.add_row(f"local engine, K = {batch}, {local.workers} processes", f"{count / wall:.0f}",
                      f"{ngspice:.2f}", f"{wall:.2f}", f"{(wall / ngspice - 1) * 100:.0f} %", f"{python_us:.0f}",
                      f"{ngspice_us:.0f}")
    worker_rows = []
    for workers in (1, 2):
        with make_engine(f"local:{workers}", None) as dask_engine:
            dask_engine.run(job, warm)  # warm the workers
            # the client (this process) and the worker processes, whose finished children are the ngspice runs
            processes = [me, *(c for c in me.children(recursive=True) if c.name() != "ngspice")]
            runs, python_us, ngspice_us = timed(dask_engine, processes, job)
        wall = statistics.median(r.wall_seconds for r in runs)
        ngspice = statistics.median(r.ngspice_seconds for r in runs) / workers
        worker_rows.append({"workers": workers, "samples_per_s": count / wall, "overhead": wall / ngspice - 1,
                            "python_cpu_us_per_sample": python_us, "ngspice_cpu_us_per_sample": ngspice_us})
        table.add_row(f"Dask LocalCluster, {workers} worker{'s' if workers > 1 else ''}, K = {job.batch_size}",
                      f"{count / wall:.0f}", f"{ngspice:.2f}", f"{wall:.2f}", f"{(wall / ngspice - 1) * 100:.0f} %",
                      f"{python_us:.0f}", f"{ngspice_us:.0f}")
    console.print(table)
    speedup = worker_rows[1]["samples_per_s"] / worker_rows[0]["samples_per_s"]
    console.print(f"speed-up from 1 to 2 Dask workers: {speedup:.2f}× (target ≥ 1.85×). 'overhead vs ngspice' is "
                  "wall time over the summed ngspice process time per parallel slot; the CPU columns count the "
                  "Python processes (client and workers) and the ngspice runs over all repeats.")
    return {"batch_scaling": batch_rows, "worker_scaling": worker_rows, "speedup_1_to_2_workers": speedup}


if __name__ == "__main__":
    main()
