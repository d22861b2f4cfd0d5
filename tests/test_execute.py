"""Execution back-ends through real ngspice: a Dask LocalCluster gives the local engine's numbers bit for
bit, loses no sample when a worker process is killed mid-run, is reachable from the command line and
the spec, and does not outlive its engine or command."""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from typer.testing import CliRunner

from optiyield import execute
from optiyield.cli import app
from optiyield.errors import SpecError
from optiyield.execute import ClusterError, DaskEngine, make_engine, parse_cluster
from optiyield.montecarlo import run_monte_carlo
from optiyield.sim.engine import OK, Engine, batch_partition
from optiyield.spec import load_spec
from optiyield.testbench import load_testbench

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "csva.yaml"
CIRCUITS = ROOT / "tests" / "circuits"
#: Near the optimized CSVA design, where the yield is neither 0 nor 1 (about 85 %).
DESIGN = {"VDD": 1.2, "Vgate": 0.68, "W": 9.5e-6, "Rd": 900.0}

pytestmark = pytest.mark.ngspice


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 single-threaded worker processes, shared by this module's tests."""
    engine = make_engine("local:2")
    yield engine
    engine.close()


def test_partition_is_shared_and_covers_every_row():
    batches = batch_partition(1001, 500, 2)
    assert [len(b) for b in batches] == [500, 500, 1]  # min(500, ceil(1001 / 2))
    assert [len(b) for b in batch_partition(400, 500, 2)] == [200, 200]
    assert [len(b) for b in batch_partition(5, 500, 2, copies=False)] == [1] * 5
    assert batch_partition(0, 500, 2) == []
    assert np.array_equal(np.concatenate(batch_partition(97, 10, 3)), np.arange(97))


def test_local_cluster_gives_the_local_engines_numbers(cluster):
    """400 CSVA samples, same seed: identical per-sample values, statuses and yield (same partition)."""
    assert isinstance(cluster, DaskEngine) and cluster.workers == 2
    spec = load_spec(SPEC)
    seen: list[int] = []
    remote = run_monte_carlo(spec, cluster, samples=400, seed=12, design=DESIGN, progress=seen.append)
    local = run_monte_carlo(spec, Engine(workers=2), samples=400, seed=12, design=DESIGN)
    assert sum(seen) == 400 and remote.runs == local.runs == 2
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    assert (remote.table["status"] == OK).all()
    assert remote.summary.overall == local.summary.overall
    assert 0.5 < remote.summary.overall.value < 0.99  # a yield that is neither trivial 0 nor 1


def test_single_process_testbench_on_the_cluster(cluster):
    """.noise cannot be replicated: one ngspice run per sample, several samples per task."""
    testbench = load_testbench(CIRCUITS / "divider_noise.yaml")
    assert not testbench.copies
    r = np.linspace(100.0, 5e3, 9).reshape(-1, 1)
    remote = cluster.run(testbench.job(("r",)), r)
    local = Engine(workers=2).run(testbench.job(("r",)), r)
    assert remote.runs == 9 and (remote.status == OK).all()
    for name in local.values:
        np.testing.assert_array_equal(remote.values[name], local.values[name])


def test_killed_worker_loses_no_sample(cluster):
    """SIGKILL one worker process (and its ngspice child) right after the first batch completes.

    The failure-probe circuit with a 2 ns pulse makes every 2-copy batch a transient of about half a
    second, so 12 samples are 6 tasks that keep both workers busy for a few seconds. The scheduler must
    re-run the killed worker's tasks elsewhere, and the run must return all 12 samples, each ok, with
    the local engine's values."""
    testbench = load_testbench(CIRCUITS / "probes.yaml")
    names = ("p", "per", "mu", "rl")
    job = dataclasses.replace(testbench.job(names), batch_size=2)
    values = np.tile([1.0, 2e-9, 1.0, 0.0], (12, 1))
    values[:, 3] = 100.0 * np.arange(1, 13)
    client = cluster.client
    pids = client.run(os.getpid)
    killed: dict = {}
    finished: list[float] = []

    def kill_one_worker() -> None:
        processing = client.processing()
        address = next(a for a, keys in sorted(processing.items()) if keys)
        worker = psutil.Process(pids[address])
        children = worker.children(recursive=True)
        folders = []
        for child in children:  # a child may finish between listing and inspection
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if child.name() == "ngspice":
                    folders.append(child.cwd())
        os.kill(worker.pid, signal.SIGKILL)  # the worker first, so it cannot see its ngspice die
        killed.update(address=address, pid=worker.pid, keys=list(processing[address]), folders=folders,
                      at=time.perf_counter() - start)
        for child in children:  # as when the machine dies: its ngspice goes too
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        for folder in folders:  # the dead worker's run folders: nobody is left to remove them
            shutil.rmtree(folder, ignore_errors=True)

    def progress(count: int) -> None:
        finished.append(time.perf_counter() - start)
        if not killed:
            kill_one_worker()

    start = time.perf_counter()
    results = cluster.run(job, values, progress)
    wall = time.perf_counter() - start
    print(f"\nkilled {killed['address']} (pid {killed['pid']}, tasks {len(killed['keys'])}, "
          f"ngspice folders {killed['folders']}) at {killed['at']:.2f} s; batches finished at "
          f"{', '.join(f'{t:.2f}' for t in finished)} s; run {wall:.2f} s")
    assert killed["keys"] and len(finished) == 6 and finished[-1] > killed["at"]
    assert not psutil.pid_exists(killed["pid"]) or psutil.Process(killed["pid"]).status() == psutil.STATUS_ZOMBIE
    # every task the dead worker held was processed again elsewhere
    for key in killed["keys"]:
        assert sum(1 for t in cluster.cluster.scheduler.story(key) if t[2] == "processing") >= 2, key
    assert list(results.status) == [OK] * 12
    local = Engine(workers=2).run(job, values)
    for name in job.measures:
        np.testing.assert_array_equal(results.values[name], local.values[name])
    np.testing.assert_allclose(results.values["vd"], -values[:, 3], rtol=1e-9)


def test_corner_jobs_run_on_the_cluster_with_the_local_numbers(cluster):
    """A corner evaluation whose jobs carry the temperature (temperatures in one ngspice process per deck, their
    extractor pickled to the workers) gives on local:2 exactly the local engine's numbers."""
    from optiyield.optim.corners import CornerEvaluator
    from optiyield.spec import spec_from_data
    from optiyield.stats.variation import OutcomeSet

    data = yaml.safe_load((ROOT / "specs" / "csva_corners.yaml").read_text())
    data["corners"]["temperature_runs"] = "process"
    spec = spec_from_data(data, ROOT / "specs", "<csva corners>")
    outcomes = OutcomeSet.draw(spec.model, 12, "mc", 5)
    x = np.array([DESIGN[n] for n in spec.file.design])
    remote = CornerEvaluator(spec, cluster).responses(x, outcomes)
    with Engine(workers=cluster.workers) as engine:
        local = CornerEvaluator(spec, engine).responses(x, outcomes)
    assert (remote.corner_status == OK).all()
    for name, values in local.corner_values.items():
        np.testing.assert_array_equal(remote.corner_values[name], values, err_msg=name)


def test_close_shuts_the_local_cluster_down(cluster):
    """After close() no worker process of the LocalCluster is left (the nanny restarted the killed one)."""
    client = cluster.client
    client.wait_for_workers(2, timeout=30)
    workers = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
    spec = load_spec(SPEC)
    assert cluster.run(spec.testbench.job(spec.parameters), np.empty((0, len(spec.parameters)))).runs == 0
    cluster.close()
    cluster.close()  # idempotent
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dask_command() -> str:
    """The `dask` command of the environment running the tests: its scripts folder first (a venv's bin/,
    which `make test` does not put on PATH), then PATH. distributed is a dependency, so it is an error
    (not a skip) when the command is nowhere."""
    name = "dask.exe" if os.name == "nt" else "dask"
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("dask")
    assert found, (f"distributed's `dask` command is neither in {sysconfig.get_path('scripts')} nor on PATH: "
                   "reinstall the package (pip install -e .)")
    return found


def test_dask_command_is_found_without_path(monkeypatch):
    """The venv's own `dask` is used when PATH does not hold the venv (as under `make test`), so the test
    below runs instead of being skipped."""
    monkeypatch.setenv("PATH", "/nonexistent")
    command = Path(dask_command())
    assert command.name.startswith("dask") and os.access(command, os.X_OK)
    assert subprocess.run([command, "--version"], capture_output=True, timeout=60).returncode == 0


def test_scheduler_and_workers_started_as_documented(tmp_path):
    """docs/engine.md's commands, on loopback: `dask scheduler`, then `dask worker tcp://HOST:PORT
    --nthreads 1 --nworkers 2`; the engine connects by address and gives the local engine's numbers."""
    dask = dask_command()
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = []
    try:
        started.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                         "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, cwd=tmp_path))
        started.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "2",
                                         "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, cwd=tmp_path))
        with make_engine(address) as engine:
            engine.client.wait_for_workers(2, timeout=60)
            spec = load_spec(SPEC)
            remote = run_monte_carlo(spec, engine, samples=200, seed=5, design=DESIGN)
        assert isinstance(engine, DaskEngine) and engine.workers >= 1
        local = run_monte_carlo(spec, Engine(workers=engine.workers), samples=200, seed=5, design=DESIGN)
        pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    finally:
        for process in reversed(started):  # workers first, then the scheduler
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def spec_file(tmp_path: Path, name: str, **run: object) -> Path:
    """The CSVA spec started at DESIGN (a non-trivial yield), with extra run settings."""
    data = yaml.safe_load(SPEC.read_text())
    data["testbench"] = str(ROOT / "circuits" / "csva" / "testbench.yaml")
    for variable, value in DESIGN.items():
        data["design"][variable]["start"] = value
    data["run"].update(run)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_cli_cluster_matches_local(tmp_path):
    """`optiyield yield SPEC -n 300 --cluster local:2` in its own process: the local run's yield and
    samples; --cluster overrides the spec's run.cluster (here an address nobody listens on); and no
    process of the command's session (the LocalCluster's workers) outlives it."""
    local_out, dask_out = tmp_path / "local", tmp_path / "dask"
    result = CliRunner().invoke(app, ["yield", str(spec_file(tmp_path, "local")), "-n", "300", "--workers", "2",
                                      "--out", str(local_out)])
    assert result.exit_code == 0, result.output
    spec = spec_file(tmp_path, "dask", cluster="tcp://127.0.0.1:9")
    command = [sys.executable, "-m", "optiyield", "yield", str(spec), "-n", "300", "--cluster", "local:2",
               "--out", str(dask_out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, cwd=tmp_path)
    output, _ = process.communicate(timeout=120)
    ended = time.time()
    assert process.returncode == 0, output
    assert "Dask cluster local:2: 2 parallel slots" in output
    time.sleep(0.5)
    left = _session_members(process.pid, ended)
    assert not left, f"processes of the command outlived it: {left}"
    local, remote = (json.loads((out / "summary.json").read_text()) for out in (local_out, dask_out))
    assert remote["yield"] == local["yield"] and remote["per_spec"] == local["per_spec"]
    assert 0.5 < remote["yield"]["value"] < 0.99
    pd.testing.assert_frame_equal(pd.read_parquet(dask_out / "samples.parquet"),
                                  pd.read_parquet(local_out / "samples.parquet"), check_exact=True)


def _session_members(session: int, before: float) -> list[tuple[int, str, str]]:
    """Live (non-zombie) processes of a session that were started before ``before`` (so not a later
    process that reuses the session leader's id): (pid, status, command line)."""
    members = []
    for process in psutil.process_iter():
        try:
            if (os.getsid(process.pid) == session and process.create_time() < before
                    and process.status() != psutil.STATUS_ZOMBIE):
                members.append((process.pid, process.status(), " ".join(process.cmdline())))
        except (OSError, psutil.Error):
            continue
    return members


@pytest.mark.parametrize("address, expected", [
    ("local:3", ("local", 3)), ("tcp://10.0.0.5:8786", ("tcp", "tcp://10.0.0.5:8786")),
    ("tcp://node-1.lab:8786", ("tcp", "tcp://node-1.lab:8786")), ("tcp://[::1]:8786", ("tcp", "tcp://[::1]:8786")),
])
def test_parse_cluster_accepts(address, expected):
    assert parse_cluster(address) == expected


@pytest.mark.parametrize("value, message", [
    ("local:0", "local:N needs N ≥ 1"),
    ("local:", "is not a cluster address"),
    ("local:two", "is not a cluster address"),
    ("tcp://host", "is not a cluster address"),
    ("http://host:8786", "is not a cluster address"),
    ("tcp://host:0", "port 0 is not in 1 to 65535"),
    ("tcp://host:70000", "port 70000 is not in 1 to 65535"),
    (4, "expected a cluster address"),
])
def test_spec_run_cluster_is_validated(tmp_path, value, message):
    path = spec_file(tmp_path, "bad", cluster=value)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert error.value.path == "run.cluster", str(error.value)
    assert message in error.value.message, str(error.value)
    assert "run.cluster" in str(error.value) and str(path) in str(error.value)


def test_spec_run_cluster_loads(tmp_path):
    assert load_spec(spec_file(tmp_path, "ok", cluster="tcp://sched.lab:8786")).run.cluster == "tcp://sched.lab:8786"
    assert load_spec(SPEC).run.cluster is None


def test_cli_rejects_a_bad_cluster_address():
    result = CliRunner().invoke(app, ["yield", str(SPEC), "-n", "10", "--cluster", "local:0"])
    assert result.exit_code == 2
    assert "--cluster" in result.output and "local:N needs N ≥ 1" in result.output


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    """The spec's run.cluster is used when --cluster is absent; nobody listens there: exit 3, one message."""
    monkeypatch.setattr(execute, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        make_engine("tcp://127.0.0.1:9")
    result = CliRunner().invoke(app, ["yield", str(spec_file(tmp_path, "s", cluster="tcp://127.0.0.1:9")), "-n", "10"])
    assert result.exit_code == 3, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
