"""The batched simulation engine: N parameter vectors in, N rows of measurements + status out.

Samples are split into batches of up to ``batch_size`` copies, one ngspice process per batch, up to
one process per core. A batch whose run fails is split (in two, or in eight after a time-out so a
hanging sample is isolated in few rounds) until the failing samples are alone; a lone failing sample is
retried once with gentler convergence options, and if it still fails it is recorded as failed with
the reason. Failed samples are data, never exceptions.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from optiyield.netlist import Netlist
from optiyield.sim.deck import Layout, render
from optiyield.sim.runner import NgspiceRunner, RunOutcome

OK, RETRIED, FAILED = "ok", "retried", "failed"

#: ``extract(outcome, layout, count) -> (values, bad)``: measurement arrays of shape (count,) per
#: name, and for each sample either None (usable) or the reason its simulated data is unusable.
Extractor = Callable[[RunOutcome, Layout, int], tuple[dict[str, np.ndarray], list[str | None]]]


@dataclass(frozen=True)
class SimJob:
    """Everything the engine needs to simulate one testbench.

    ``names`` are the exposed parameters whose values vary per sample; ``measures`` the names the
    extractor returns; ``copies`` selects the batched K-copy deck (else one process per sample);
    ``timeout`` is the wall-clock limit of one ngspice run in seconds; ``expected`` the analysis kinds
    that must appear in the raw file.
    """

    netlist: Netlist
    names: tuple[str, ...]
    measures: tuple[str, ...]
    extract: Extractor
    copies: bool = True
    batch_size: int = 500
    timeout: float = 60.0
    options: str = ""
    expected: tuple[str, ...] = ()
    sweep: tuple[str, tuple[float, ...]] | None = None  # (param, values): copies per sample, copies mode
    compat: str = ""  # ngspice compatibility mode (``set ngbehavior=...``), e.g. ``hsa`` for sky130


@dataclass
class SimResults:
    """Per-sample results of :meth:`Engine.run`.

    ``values[name]`` has shape (N,) (NaN where the sample failed); ``status`` holds ``ok``,
    ``retried`` (succeeded only with gentle options) or ``failed``; ``reason`` says why a sample was
    retried or failed. ``ngspice_seconds`` is the summed wall time of the ngspice processes;
    ``wall_seconds`` the elapsed time of the whole call; ``runs`` the number of ngspice processes.
    """

    values: dict[str, np.ndarray]
    status: np.ndarray
    reason: np.ndarray
    ngspice_seconds: float = 0.0
    wall_seconds: float = 0.0
    runs: int = 0
    run_seconds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of samples whose simulation is usable (``ok`` or ``retried``)."""
        return self.status != FAILED

    @property
    def n_failed(self) -> int:
        """Number of failed samples."""
        return int(np.sum(self.status == FAILED))


def batch_partition(count: int, batch_size: int, slots: int, copies: bool = True) -> list[np.ndarray]:
    """Row indices of each ngspice batch when ``count`` samples run on ``slots`` parallel slots.

    Batched decks hold ``min(batch_size, ceil(count / slots))`` consecutive samples, so every slot gets
    work; without copies every sample is its own run. Every back-end uses this rule, because a sample's
    numbers depend (slightly) on which copies share its deck: the same partition gives the same numbers.
    """
    if count <= 0:
        return []
    size = max(1, min(batch_size, math.ceil(count / max(1, slots)))) if copies else 1
    return [np.arange(i, min(i + size, count)) for i in range(0, count, size)]


def default_workers() -> int:
    """One ngspice process per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class Engine:
    """Runs :class:`SimJob` s on up to ``workers`` concurrent ngspice processes.

    Threads render decks and measure results while other batches simulate; only the ngspice process
    itself holds one of the ``workers`` slots.
    """

    def __init__(self, runner: NgspiceRunner | None = None, workers: int | None = None,
                 split_after_timeout: int = 8) -> None:
        self._own_runner = runner is None
        self.runner = runner or NgspiceRunner()
        self.workers = workers or default_workers()
        self.split_after_timeout = split_after_timeout
        # At most `workers` ngspice processes at once; twice as many threads, so that rendering the
        # next deck and measuring the last one overlap with the running simulations.
        self._slots = threading.BoundedSemaphore(self.workers)

    def close(self) -> None:
        """Release the runner's spinit folder when this engine created the runner (a passed-in one is
        left alone). Engines of other back-ends (:mod:`optiyield.execute`) shut their clusters down here."""
        if self._own_runner:
            self.runner.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, job: SimJob, values: np.ndarray,
            progress: Callable[[int], None] | None = None) -> SimResults:
        """Simulate every row of ``values`` (shape (N, len(job.names)), SI units).

        The rows are split into batches by :func:`batch_partition` for ``self.workers`` parallel slots.
        """
        values = np.asarray(values, dtype=float).reshape(-1, len(job.names))
        batches = batch_partition(values.shape[0], job.batch_size, self.workers, job.copies)
        return self.run_batches(job, values, batches, progress)

    def run_batches(self, job: SimJob, values: np.ndarray, batches: list[np.ndarray],
                    progress: Callable[[int], None] | None = None) -> SimResults:
        """Simulate the rows of ``values`` in the given ``batches`` (row-index arrays, one deck each).

        Used directly by back-ends that partition the rows themselves (:mod:`optiyield.execute`), so
        that a batch is the same deck, hence gives the same numbers, whichever back-end runs it.
        """
        values = np.asarray(values, dtype=float).reshape(-1, len(job.names))
        state = _State(job, values, progress)
        start = time.perf_counter()
        if batches:
            with ThreadPoolExecutor(max_workers=2 * self.workers) as pool:
                for future in [pool.submit(self._solve, state, b, False) for b in batches]:
                    future.result()
        results = state.results()
        results.wall_seconds = time.perf_counter() - start
        return results

    def _solve(self, state: _State, index: np.ndarray, gentle: bool, earlier: str = "") -> None:
        outcome, layout = self._simulate(state, index, gentle)
        if outcome.ok:
            measured, bad = state.job.extract(outcome, layout, len(index))
            good = np.array([reason is None for reason in bad], dtype=bool)
            state.store(index[good], {n: v[good] for n, v in measured.items()},
                        RETRIED if gentle else OK, earlier)
            for i, reason in zip(index[~good], (r for r in bad if r is not None), strict=True):
                self._retry_or_fail(state, np.array([i]), gentle, reason, earlier)
            return
        reason = outcome.failure or "unknown failure"
        if len(index) == 1:
            self._retry_or_fail(state, index, gentle, reason, earlier)
            return
        parts = self.split_after_timeout if reason.startswith("timed out") else 2
        for part in np.array_split(index, min(parts, len(index))):
            self._solve(state, part, gentle)

    def _retry_or_fail(self, state: _State, index: np.ndarray, gentle: bool, reason: str,
                       earlier: str) -> None:
        if gentle:
            state.fail(index, f"{earlier}; retry with gentle options: {reason}" if earlier else reason)
        else:
            self._solve(state, index, True, earlier=reason)

    def _simulate(self, state: _State, index: np.ndarray, gentle: bool) -> tuple[RunOutcome, Layout]:
        job = state.job
        folder = self.runner.workdir()
        try:
            deck, layout = render(job.netlist, job.names, state.values[index], str(folder / "out.raw"),
                                  copies=job.copies, options=job.options, gentle=gentle, sweep=job.sweep)
            outcome = self.runner.run(deck, folder, job.timeout, job.expected, slot=self._slots, compat=job.compat)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        state.count_run(outcome.seconds)
        return outcome, layout


class _State:
    """Thread-safe accumulation of per-sample results during one :meth:`Engine.run`."""

    def __init__(self, job: SimJob, values: np.ndarray, progress: Callable[[int], None] | None) -> None:
        self.job, self.values, self.progress = job, values, progress
        count = values.shape[0]
        self.measured = {name: np.full(count, np.nan) for name in job.measures}
        self.status = np.full(count, FAILED, dtype=object)
        self.reason = np.full(count, "", dtype=object)
        self.done = np.zeros(count, dtype=bool)
        self.run_seconds: list[float] = []
        self.lock = threading.Lock()

    def count_run(self, seconds: float) -> None:
        with self.lock:
            self.run_seconds.append(seconds)

    def store(self, index: np.ndarray, measured: dict[str, np.ndarray], status: str, reason: str) -> None:
        with self.lock:
            for name, column in measured.items():
                self.measured[name][index] = column
            self.status[index] = status
            self.reason[index] = f"converged only with gentle options after: {reason}" if reason else ""
            self._advance(index)

    def fail(self, index: np.ndarray, reason: str) -> None:
        with self.lock:
            self.status[index] = FAILED
            self.reason[index] = reason
            self._advance(index)

    def _advance(self, index: np.ndarray) -> None:
        self.done[index] = True
        if self.progress is not None and len(index):
            self.progress(len(index))

    def results(self) -> SimResults:
        return SimResults(values=self.measured, status=self.status, reason=self.reason,
                          ngspice_seconds=float(sum(self.run_seconds)), runs=len(self.run_seconds),
                          run_seconds=list(self.run_seconds))

