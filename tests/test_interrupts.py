"""No orphans, no lost results (issue 15): a killed or interrupted optiyield leaves no ngspice running and
no temporary folder behind, Ctrl-C stops at once and keeps every finished sample, and samples that keep
hanging stop the run with the reason. Real optiyield processes and real ngspice, as a user would see them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import default_sigint

from optiyield.sim.ngspice.runner import NgspiceRunner, remove_stale_folders

pytestmark = pytest.mark.ngspice

# `h` > 0.6 makes the transient practically endless (a PULSE breakpoint every 0.1 ps over 2 us).
NETLIST = """* hang probe
.param h=0 rl=1k
VP a 0 pulse(0 1 0 {h>0.6 ? 1e-14 : 1e-8} {h>0.6 ? 1e-14 : 1e-8} {h>0.6 ? 2.5e-14 : 2.5e-8} {h>0.6 ? 1e-13 : 1e-7})
R1 a b {rl}
C1 b 0 1p
.tran 10n 2u
.end
"""


def _spec(folder: Path, hang: str, timeout: float, samples: int) -> Path:
    """A spec whose samples hang where `h` (uniform, ±1 around ``hang``) exceeds 0.6. With seed 3 the two
    start outcomes finish and verification samples 4, 7 and 8 hang (so 6 finish before both slots hang)."""
    (folder / "hang.cir").write_text(NETLIST)
    (folder / "tb.yaml").write_text(f"""name: hang
netlist: hang.cir
replicate: false
timeout: {timeout}
measures:
  vb: {{fn: swing, out: b, start: 1u}}
""")
    spec = folder / "spec.yaml"
    spec.write_text(f"""name: hang
testbench: tb.yaml
design:
  rl: {{start: 1k, min: 100, max: 10k}}
variation:
  - {{param: h, dist: uniform, tol: 1}}
specs:
  vb: {{min: 0}}
run:
  seed: 3
  samples: 2
  steps:
    - {{verify: {{samples: {samples}}}}}
""")
    text = (folder / "hang.cir").read_text().replace(".param h=0", f".param h={hang}")
    (folder / "hang.cir").write_text(text)
    return spec


def _ngspice_of(pid: int) -> list[psutil.Process]:
    """ngspice processes working in this optiyield process's private folders."""
    found = []
    for process in psutil.process_iter(["name", "cwd"]):
        try:
            if process.info["name"] == "ngspice" and f"optiyield-run-{pid}-" in (process.info["cwd"] or ""):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _folders_of(pid: int) -> list[Path]:
    return [p for root in (Path("/dev/shm"), Path("/tmp")) if root.is_dir() for p in root.glob(f"optiyield-*-{pid}-*")]


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "optiyield", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def _wait_for(condition, seconds: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.05)


def _gone(processes: list[psutil.Process], seconds: float = 5.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.05)
    for p in processes:
        p.kill()
    return False


def test_sigkill_leaves_no_ngspice_and_the_next_start_removes_its_folders(tmp_path):
    spec = _spec(tmp_path, "5", 600, 4)  # every sample hangs
    process = _start(["run", str(spec), "--out", str(tmp_path / "out")], tmp_path)
    _wait_for(lambda: len(_ngspice_of(process.pid)) >= 1)
    children = _ngspice_of(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _gone(children), "ngspice outlived a SIGKILLed optiyield"
    assert _folders_of(process.pid), "expected the killed process's folders to be left (nothing could clean up)"
    NgspiceRunner().close()  # any later optiyield removes them
    assert not _folders_of(process.pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_at_once_keeps_finished_samples_and_says_so(tmp_path, sig):
    spec = _spec(tmp_path, "0", 600, 12)  # about half the samples hang for the 600 s time-out
    out = tmp_path / "out"
    process = _start(["run", str(spec), "--out", str(out)], tmp_path)
    store = out / "store.sqlite"

    def some_stored_and_all_slots_hanging() -> bool:
        if not store.exists():
            return False
        try:
            with sqlite3.connect(store, timeout=1) as db:
                stored = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        except sqlite3.Error:
            return False
        return stored >= 2 and len(_ngspice_of(process.pid)) >= 2

    _wait_for(some_stored_and_all_slots_hanging, 120)
    children = _ngspice_of(process.pid)
    started = time.perf_counter()
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    seconds = time.perf_counter() - started
    # within a second or two on a quiet machine (docs/engine.md); the bound is loose for loaded machines
    # and still far below the 600 s the hanging samples would take
    assert seconds < 20, f"took {seconds:.1f} s to stop"
    assert process.returncode == 130
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        statuses = {s for (s,) in db.execute("SELECT status FROM evaluations")}
    text = " ".join(stderr.split())
    assert f"interrupted: {stored} simulated samples are in" in text and "--resume" in text
    assert stored >= 2 and statuses == {"ok"}  # the killed hanging runs are not recorded as failures
    assert _gone(children) and not _folders_of(process.pid)


def test_samples_that_keep_timing_out_stop_the_run_with_the_reason(tmp_path):
    spec = _spec(tmp_path, "1.1", 1, 40)  # the 2 start outcomes finish, then 32 of 40 hang for their 1 s
    started = time.perf_counter()
    process = _start(["run", str(spec), "--out", str(tmp_path / "out")], tmp_path)
    _, stderr = process.communicate(timeout=120)
    seconds = time.perf_counter() - started
    text = " ".join(stderr.split())
    assert process.returncode == 3, text
    assert "samples keep timing out" in text and "1 s time-out" in text and "Traceback" not in text
    assert seconds < 30, f"{seconds:.0f} s: a run of 40 hanging samples must stop early"
    assert not _folders_of(process.pid)


def test_stale_folders_of_dead_processes_only_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f"optiyield-run-{dead}-abc"
    mine = tmp_path / f"optiyield-run-{os.getpid()}-abc"
    other = tmp_path / "optiyield-notes"
    for folder in (stale, mine, other):
        folder.mkdir()
    assert remove_stale_folders(tmp_path) == 1
    assert not stale.exists() and mine.exists() and other.exists()


def test_every_sample_failing_stops_with_ngspice_s_explanation(tmp_path):
    (tmp_path / "bad.cir").write_text("* broken\n.param R=1k\nV1 a 0 dc 1 ac 1\nR1 a b {R*2\nC1 b 0 1p\n"
                                      ".ac dec 5 1k 1g\n.end\n")
    (tmp_path / "tb.yaml").write_text("name: bad\nnetlist: bad.cir\nmeasures:\n  g: {fn: lf_gain_db, out: b}\n")
    (tmp_path / "spec.yaml").write_text("name: bad\ntestbench: tb.yaml\ndesign:\n  R: {start: 1k, min: 1, max: 1M}\n"
                                        "specs:\n  g: {min: -3}\n")
    for command in (["yield", "-n", "20"], ["run"]):
        process = _start([*command, str(tmp_path / "spec.yaml"), "--out", str(tmp_path / command[0])], tmp_path)
        _, stderr = process.communicate(timeout=120)
        text = " ".join(stderr.split())
        assert process.returncode == 3 and "Traceback" not in text, text
        assert "failed, so there is nothing to measure" in text and 'Closing "}" not found' in text
    assert not (tmp_path / "run" / "run_summary.json").exists()


def test_a_meas_without_value_is_a_note_not_a_silent_nan(tmp_path):
    (tmp_path / "m.cir").write_text("* meas\n.param R=1k\nV1 a 0 dc 0 ac 1\nR1 a b {R}\nC1 b 0 1p\n"
                                    ".ac dec 10 1k 1g\n.meas ac never when vdb(b)=-400\n.end\n")
    (tmp_path / "tb.yaml").write_text("name: m\nnetlist: m.cir\nmeasures:\n  g: {fn: lf_gain_db, out: b}\n")
    (tmp_path / "spec.yaml").write_text("name: m\ntestbench: tb.yaml\ndesign:\n  R: {start: 1k, min: 1, max: 1M}\n"
                                        "variation:\n  - {param: R, dist: normal, sigma: 1%}\n"
                                        "specs:\n  g: {min: -3}\n  never: {min: 0}\n")
    process = _start(["yield", "-n", "6", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "o")], tmp_path)
    process.communicate(timeout=120)
    assert process.returncode == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["per_spec"]["never"]["value"] == 0 and summary["failed_simulations"] == 0
    reasons = (tmp_path / "o" / "samples.csv").read_text()
    assert reasons.count("measure never: `.meas never` gave no value") == 6
