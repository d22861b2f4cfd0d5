"""Where batches run: this machine's engine (the default) or a Dask distributed cluster.

:func:`make_engine` picks the back-end from a cluster address:

* ``None``: :class:`~optiyield.sim.engine.Engine`, threads + one ngspice process per core here;
* ``local:N``: a Dask ``LocalCluster`` of N single-threaded worker processes on this machine
  (loopback only), shut down with the engine;
* ``tcp://HOST:PORT``: a running Dask scheduler (``dask scheduler`` / ``dask worker``).

A :class:`DaskEngine` splits the rows with the same rule as the local engine
(:func:`~optiyield.sim.engine.batch_partition`, for as many parallel slots as the cluster has worker
threads) and sends each batch to the cluster as one task. The task runs, on the worker, that worker's
own local engine on exactly that batch: one K-copy deck, with the engine's time-outs, bisection and
gentle retries. The same seed thus gives the same decks, hence bit-identical numbers and the same yield,
whichever back-end runs them (given the same number of slots).

A task is pure: its key is the job's fingerprint and a hash of its rows, it writes only private temporary folders,
and it returns the batch's results only once the whole batch is done. When a worker dies, the
scheduler re-runs its unfinished tasks on the remaining (or restarted) workers, and :meth:`DaskEngine.run`
waits for them; a dead worker's partial work is never seen.

The job is sent once: a small task keyed ``optiyield-job-<fingerprint>`` turns its pickle into the job on a
worker, and every batch task depends on it, so the scheduler carries the pickled job once per job (not
once per task) and workers fetch the object from each other; a lost copy is recomputed like any task.
Each worker process runs :data:`THREADS_PER_SLOT` task threads per ngspice slot: its engine lets only
``slots`` ngspice processes run at once, so one task renders its deck and measures its results while the
other's ngspice runs, as the local engine's threads do (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import CancelledError
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from optiyield.sim.engine import Engine, SimResults, Sink, batch_partition
from optiyield.sim.job import SimJob
from optiyield.sim.ngspice import NgspiceSimulator
from optiyield.sim.ngspice.runner import NgspiceRunner
from optiyield.sim.protocol import RunOutcome

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

#: The accepted forms of a cluster address, for error messages and help texts.
CLUSTER_FORMS = "local:N (N ≥ 1 worker processes on this machine) or tcp://HOST:PORT (a Dask scheduler)"

#: How often a task may be running on a worker that dies before the scheduler gives up on it
#: (``distributed.scheduler.allowed-failures``, set on the scheduler of ``local:N``; Dask's default is 3).
ALLOWED_FAILURES = 5

#: Seconds to wait for a scheduler to answer and for its first worker to connect.
CONNECT_TIMEOUT = 30.0

#: Dask worker threads per ngspice slot: the second thread renders and measures while ngspice runs.
THREADS_PER_SLOT = 2

#: Jobs whose loaded copy the engine keeps on the cluster (the most recently used).
_JOBS_KEPT = 8

#: Tasks per parallel slot for testbenches without copies (one ngspice process per sample): a task
#: then holds several samples, so that task overhead stays small and a lost worker re-runs little.
_SINGLE_TASKS_PER_SLOT = 4

_LOCAL = re.compile(r"local:(\d+)")
_TCP = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})")


class ClusterError(RuntimeError):
    """A Dask cluster cannot be started, reached or used (the message says which and why)."""


def parse_cluster(address: str) -> tuple[str, int | str]:
    """Check a cluster address: ``("local", N)`` for ``local:N``, ``("tcp", address)`` for ``tcp://HOST:PORT``.

    Raises ValueError naming the accepted forms otherwise (N ≥ 1, port 1 to 65535).
    """
    text = address.strip()
    local = _LOCAL.fullmatch(text)
    if local:
        count = int(local.group(1))
        if count < 1:
            raise ValueError(f"{address!r}: local:N needs N ≥ 1 worker")
        return "local", count
    tcp = _TCP.fullmatch(text)
    if tcp:
        port = int(tcp.group(2))
        if not 1 <= port <= 65535:
            raise ValueError(f"{address!r}: port {port} is not in 1 to 65535")
        return "tcp", text
    raise ValueError(f"{address!r} is not a cluster address: expected {CLUSTER_FORMS}, "
                     "e.g. local:4 or tcp://10.0.0.5:8786")


def make_engine(cluster: str | None = None, workers: int | None = None) -> Engine | DaskEngine:
    """The engine for a cluster address (see the module docstring); ``None`` gives the local engine.

    ``workers`` is the number of parallel slots the rows are partitioned for: ngspice processes for
    the local engine (default one per core); for a Dask engine, default the cluster's total worker
    threads (N for ``local:N``). Raises :class:`ClusterError` when a cluster cannot be started or
    reached, and :class:`~optiyield.sim.ngspice.runner.NgspiceNotFound` when the local engine has no ngspice.
    """
    if cluster is None:
        return Engine(workers=workers)
    try:
        kind, target = parse_cluster(cluster)
    except ValueError as exc:
        raise ClusterError(str(exc)) from None
    if kind == "local":
        assert isinstance(target, int)
        return DaskEngine.local(target, workers)
    return DaskEngine.connect(str(target), workers)


class DaskEngine:
    """Runs :class:`~optiyield.sim.engine.SimJob` s on a Dask cluster, one task per ngspice batch.

    Same interface as :class:`~optiyield.sim.engine.Engine` (the :class:`~optiyield.sim.protocol.Backend`
    protocol): :meth:`run`, :meth:`probe`, and ``workers``, the number of parallel slots the rows are
    partitioned for (fixed at construction, so a run's batches do not change when workers come and go).
    Probes (single-sample helper runs such as the region check) run on this machine.

    Use it as a context manager, or call :meth:`close`: that closes the client and, for ``local:N``,
    shuts the cluster down.
    """

    def __init__(self, client: Client, workers: int | None = None, *, cluster: LocalCluster | None = None,
                 address: str = "") -> None:
        self.client = client
        self.cluster = cluster
        self.address = address or str(getattr(client.scheduler, "address", ""))
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise ClusterError(f"no Dask worker connected to the scheduler at {self.address} within "
                               f"{CONNECT_TIMEOUT:g} s (start some with: dask worker {self.address} "
                               "--nthreads 2 --nworkers N)") from None
        if workers is None:
            workers = sum(slots_of(threads) for threads in client.nthreads().values())
        self.workers = max(1, int(workers))
        self._closed = False
        self._prober: Engine | None = None
        self._jobs: OrderedDict[str, Any] = OrderedDict()  # fingerprint → future of the loaded job

    @classmethod
    def local(cls, count: int, workers: int | None = None) -> DaskEngine:
        """Start a LocalCluster of ``count`` worker processes on 127.0.0.1 (one ngspice slot each, with
        :data:`THREADS_PER_SLOT` threads) and connect."""
        import dask
        from distributed import Client, LocalCluster

        try:
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                cluster = LocalCluster(n_workers=count, threads_per_worker=THREADS_PER_SLOT, processes=True,
                                       host="127.0.0.1", dashboard_address=":0")
        except Exception as exc:  # any start-up failure becomes one clear message
            raise ClusterError(f"cannot start a local Dask cluster of {count} workers: {exc} (a script that "
                               "starts one needs the `if __name__ == \"__main__\":` guard, because the "
                               "workers are spawned processes that import it)") from exc
        try:
            client = Client(cluster, set_as_default=False)
            client.wait_for_workers(count, timeout=CONNECT_TIMEOUT)
        except BaseException:
            cluster.close()
            raise
        return cls(client, workers or count, cluster=cluster, address=f"local:{count}")

    @classmethod
    def connect(cls, address: str, workers: int | None = None) -> DaskEngine:
        """Connect to the Dask scheduler at ``address`` (``tcp://HOST:PORT``)."""
        from distributed import Client

        try:
            client = Client(address, timeout=f"{CONNECT_TIMEOUT:g}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc} "
                               "(start one with: dask scheduler --port 8786)") from None
        try:
            return cls(client, workers, address=address)
        except BaseException:
            client.close()
            raise

    def run(self, job: SimJob, values: np.ndarray, progress: Callable[[int], None] | None = None,
            sink: Sink | None = None) -> SimResults:
        """Simulate every row of ``values`` (shape (N, len(job.names)), SI units) on the cluster.

        One task per batch of :func:`~optiyield.sim.engine.batch_partition` for ``self.workers`` slots;
        results are merged in row order. ``progress(n)`` is called here as each task's n samples finish,
        and ``sink`` gets them (row indices into ``values``) at the same moment.
        Raises :class:`ClusterError` when a batch was lost with more workers than the scheduler allows,
        and re-raises any other exception of a task (e.g. NgspiceNotFound on a worker).
        """
        import cloudpickle
        from dask.base import tokenize
        from distributed import as_completed

        values = np.asarray(values, dtype=float).reshape(-1, len(job.names))
        count = values.shape[0]
        start = time.perf_counter()
        batches = batch_partition(count, job.batch_size, self.workers, job.copies)
        if not job.copies:
            batches = _group(batches, math.ceil(len(batches) / (_SINGLE_TASKS_PER_SLOT * self.workers)))
        loaded = self._loaded(job, cloudpickle)
        job_token = job.fingerprint
        futures: dict[str, Any] = {}
        members: dict[str, list[int]] = {}
        for number, index in enumerate(batches):
            rows = np.ascontiguousarray(values[index])
            key = f"optiyield-batch-{tokenize(job_token, rows)}"
            if key not in futures:
                futures[key] = self.client.submit(run_task, loaded, rows, key=key, retries=0)
            members.setdefault(key, []).append(number)
        parts: dict[str, SimResults] = {}
        try:
            for future in as_completed(list(futures.values()), loop=self.client.loop):
                key = future.key
                size = sum(len(batches[i]) for i in members[key])
                parts[key] = part = self._result(future, size)
                if sink is not None:
                    for number in members[key]:
                        sink(batches[number], part.values, part.status, part.reason)
                # Release the result on the cluster at once: a finished task whose holder dies later
                # would otherwise be recomputed for nothing.
                del futures[key]
                future.release()
                if progress is not None:
                    progress(size)
        finally:
            if futures:  # only after an error or an interrupt: stop what is still queued or running
                self.client.cancel(list(futures.values()))
        results = _merge(job, count, batches, members, parts)
        results.wall_seconds = time.perf_counter() - start
        return results

    def _loaded(self, job: SimJob, cloudpickle: Any) -> Any:
        """The future of ``job`` loaded on the cluster: one task per job fingerprint, kept for the engine's
        life (the :data:`_JOBS_KEPT` most recent jobs), so the pickled job crosses the scheduler once."""
        key = job.fingerprint
        future = self._jobs.get(key)
        if future is None or future.status in ("error", "cancelled", "lost"):
            future = self.client.submit(load_job, cloudpickle.dumps(job), key=f"optiyield-job-{key}", retries=0)
            self._jobs[key] = future
        self._jobs.move_to_end(key)
        while len(self._jobs) > _JOBS_KEPT:
            self._jobs.popitem(last=False)[1].release()
        return future

    def probe(self, job: SimJob, row: np.ndarray) -> RunOutcome:
        """One single-sample run on this machine (see :meth:`optiyield.sim.engine.Engine.probe`)."""
        if self._prober is None:
            self._prober = Engine(workers=1)
        return self._prober.probe(job, row)

    def _result(self, future: Any, size: int) -> SimResults:
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            raise ClusterError(
                f"a batch of {size} samples was lost: the workers running it died too often ({exc}). "
                "Check the workers' memory and logs.") from None
        except CancelledError as exc:
            raise ClusterError(f"a batch of {size} samples was cancelled by the cluster ({exc}); "
                               f"is the scheduler at {self.address} still running?") from None

    def close(self) -> None:
        """Close the client and, when this engine started it (``local:N``), the cluster."""
        if self._closed:
            return
        self._closed = True
        if self._prober is not None:
            self._prober.close()
        self._jobs.clear()
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskEngine({self.address!r}, workers={self.workers})"


def _group(batches: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Concatenate consecutive batches into groups of ``size`` (single-sample runs per task)."""
    size = max(1, size)
    return [np.concatenate(batches[i:i + size]) for i in range(0, len(batches), size)]


def _merge(job: SimJob, count: int, batches: list[np.ndarray], members: dict[str, list[int]],
           parts: dict[str, SimResults]) -> SimResults:
    """Per-task results → one :class:`SimResults` in row order (a task run once counts once)."""
    values = {name: np.full(count, np.nan) for name in job.measures}
    status = np.full(count, "failed", dtype=object)
    reason = np.full(count, "", dtype=object)
    run_seconds: list[float] = []
    for key, numbers in members.items():
        part = parts[key]
        for number in numbers:
            index = batches[number]
            for name in job.measures:
                values[name][index] = part.values[name]
            status[index] = part.status
            reason[index] = part.reason
        run_seconds.extend(part.run_seconds)
    return SimResults(values=values, status=status, reason=reason, ngspice_seconds=float(sum(run_seconds)),
                      runs=len(run_seconds), run_seconds=run_seconds)


_worker_engine: Engine | None = None
_worker_lock = threading.Lock()


def slots_of(threads: int) -> int:
    """ngspice slots of a Dask worker with ``threads`` threads: one per :data:`THREADS_PER_SLOT` (at least one)."""
    return max(1, int(threads) // THREADS_PER_SLOT)


def _local_engine() -> Engine:
    """This worker process's engine, created once: :func:`slots_of` its threads ngspice processes at once, so
    that the other task threads render and measure while ngspice runs."""
    global _worker_engine
    with _worker_lock:
        if _worker_engine is None:
            try:
                from distributed import get_worker

                slots = slots_of(get_worker().state.nthreads)
            except (ImportError, ValueError, AttributeError):
                slots = 1
            _worker_engine = Engine(NgspiceSimulator(NgspiceRunner(kill_with_parent=True)), workers=slots)
        return _worker_engine


def load_job(payload: bytes) -> SimJob:
    """The Dask task that turns a pickled job into the job object (once per job; batch tasks depend on it)."""
    import pickle

    return pickle.loads(payload)


def run_task(job: SimJob, rows: np.ndarray) -> SimResults:
    """The Dask task, run on a worker: simulate ``rows`` of ``job`` as ONE batch (one K-copy deck; one run
    per sample without copies) with this process's local engine, and return the results.

    Pure: the same arguments give the same results, and nothing but private temporary folders is written.
    """
    rows = np.asarray(rows, dtype=float).reshape(-1, len(job.names))
    count = rows.shape[0]
    return _local_engine().run_batches(job, rows, batch_partition(count, max(1, count), 1, job.copies))


__all__ = ["ALLOWED_FAILURES", "CLUSTER_FORMS", "THREADS_PER_SLOT", "ClusterError", "DaskEngine", "load_job",
           "make_engine", "parse_cluster", "run_task", "slots_of"]
