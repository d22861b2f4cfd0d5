"""The live dashboard in a real headless Chromium, following a real run (ngspice) while it proceeds.

The run is held after each journaled iteration until the test lets it go on, so the test can see the page
catch up, release one iteration, and time how long the new record takes to reach the page. When the run
ends the page must become the full report. Needs the extra `dashboard` (Dash); Chromium as test_report.py.
"""

import json
import os
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("dash", reason="the dashboard needs the extra: pip install -e '.[dashboard]'")

from conftest import small_csva_spec  # noqa: E402

import optiyield as oy  # noqa: E402
from optiyield.dashboard import DashboardUnavailable, start  # noqa: E402
from optiyield.dashboard.state import FolderReader  # noqa: E402
from optiyield.store import Store  # noqa: E402

PAGE = """
const status = document.querySelector('#status-message');
const count = document.querySelector('#iteration-count');
const plot = id => document.querySelector('#' + id + ' .js-plotly-plot');
const frame = document.querySelector('#report');
let report = null;
try { const doc = frame && frame.contentDocument;
      if (doc && doc.readyState === 'complete') report = Array.from(doc.querySelectorAll('h2')).map(h => h.textContent);
} catch (e) { report = 'cross-origin'; }
return {status: status && status.dataset.status, count: count ? Number(count.textContent) : null,
        traces: ['yield', 'margins', 'design', 'cost'].map(id => plot(id) && plot(id).data ? plot(id).data.length : 0),
        facts: (document.querySelector('#facts') || {}).textContent, report: report,
        fetched: performance.getEntriesByType('resource').map(r => r.name)};
"""


def _wait(driver, condition, timeout=60.0):
    """Poll the page until ``condition(page)`` holds; returns the page state and the time it held."""
    deadline = time.time() + timeout
    while True:
        page = driver.execute_script(PAGE)
        if condition(page):
            return page, time.time()
        assert time.time() < deadline, f"page never got there: {page}"
        time.sleep(0.05)


@pytest.mark.ngspice
def test_dashboard_follows_a_run_and_becomes_the_report(tmp_path, browser):
    problem = oy.load(small_csva_spec(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    journaled: list[float] = []
    gate, free = threading.Semaphore(0), threading.Event()

    def hold(record):  # called right after each record is committed to the store's journal
        journaled.append(time.time())
        if len(journaled) >= 2 and not free.is_set():
            gate.acquire(timeout=120)

    dashboard = start(out, problem.spec, port=0)
    assert dashboard.url.startswith("http://127.0.0.1:")
    result: dict = {}
    run = threading.Thread(target=lambda: result.setdefault("run", problem.run(out, fresh=True, workers=1,
                                                                                 on_iteration=hold)))
    try:
        browser.get(dashboard.url)
        run.start()
        page, _ = _wait(browser, lambda p: p["count"] == 2 and len(journaled) == 2)   # the run is held at record 2
        assert page["status"] == "running" and "step 1 of 3" in page["facts"]
        latencies = []
        for expected in (3, 4, 5):
            gate.release()                                       # one more iteration of the real run
            while len(journaled) < expected:
                time.sleep(0.01)
            page, shown = _wait(browser, lambda p, n=expected: p["count"] == n)
            latencies.append(shown - journaled[expected - 1])
        assert page["status"] == "running"
        assert page["traces"][1] >= 3 and page["traces"][2] == 2   # a margin line per spec; design bars + start
        assert max(latencies) < 5.0, latencies                     # poll period 1 s: the update arrives
        free.set()
        gate.release()
        run.join(timeout=300)
        assert not run.is_alive()
        page, _ = _wait(browser, lambda p: p["status"] == "finished" and p["report"], timeout=120)
        assert "2. Specifications" in page["report"] and "4. Yield and objective per iteration" in page["report"]
        assert all(url.startswith(dashboard.url) for url in page["fetched"]), page["fetched"]   # works offline
        records = len([r for r in result["run"].history_records if "phase" in r])
        assert records == len(journaled)
        (tmp_path / "latency.json").write_text(json.dumps(latencies))
        print(f"dashboard update latency (journal commit → page), s: {[round(x, 2) for x in latencies]}")
    finally:
        free.set()
        gate.release()
        run.join(timeout=300) if run.is_alive() else None
        dashboard.stop()


def test_reader_states(tmp_path):
    """waiting → running → stopped (the run's process is gone) → finished, from the folder alone."""
    reader = FolderReader(tmp_path)
    assert reader.read().status == "waiting"
    store = Store(tmp_path / "store.sqlite", "fp", ["W"], ["gain"])
    (tmp_path / "run_info.json").write_text(json.dumps({"spec": "s", "steps": ["1. minimax (igat)"], "pid": os.getpid(),
                                                        "design": {"W": {"min": 1, "max": 3}}, "specs": {}}))
    store.journal("1. minimax (igat)", 0, {"event": "start", "x": {"W": 2.0}})
    store.journal("1. minimax (igat)", 1, {"phase": "minimax", "iteration": 1, "simulations": 5, "x": {"W": 2.5},
                                           "objective": 0.1, "margins": {"gain ≥ 10": -0.02}})
    state = reader.read()
    assert state.status == "running" and state.current_step == "1. minimax (igat)"
    assert state.design == {"W": 2.5} and state.start == {"W": 2.0} and state.bounds == {"W": (1, 3)}
    assert state.iterations[0].margins == {"gain": 0.02}     # a minimax record's margins without the spec
    info = json.loads((tmp_path / "run_info.json").read_text())
    (tmp_path / "run_info.json").write_text(json.dumps({**info, "pid": 2 ** 22 + 12345}))   # no such process
    assert reader.read().status == "stopped"
    store.journal("1. minimax (igat)", -1, {"event": "done", "x": {"W": 2.5}, "summary": {"simulations": 7,
                                                                                          "cached": 1}})
    time.sleep(0.01)
    (tmp_path / "run_summary.json").write_text("{}")
    state = reader.read()
    assert state.status == "finished" and state.costs[0].simulations == 7
    store.clear_journal()                               # a resumed run starts: the old summary no longer counts
    time.sleep(0.01)
    store.journal("1. minimax (igat)", 0, {"event": "start", "x": {"W": 2.0}})
    assert reader.read().status != "finished"
    store.close()


def test_a_taken_port_is_a_clear_error(tmp_path):
    first = start(tmp_path, port=0)
    try:
        port = int(first.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(DashboardUnavailable, match=f"cannot serve on 127.0.0.1:{port}"):
            start(tmp_path, port=port)
    finally:
        first.stop()


def test_margins_come_from_the_store(tmp_path):
    """Where a minimax step journals its own margins, the dashboard's (recomputed from the stored nominal
    simulation at the journaled design) are the same numbers."""
    problem = oy.load(small_csva_spec(tmp_path)).with_run(samples=20, steps=[{"nominal": "minimax", "max_iter": 3}])
    problem.run(tmp_path / "out", fresh=True, workers=1, report=False)
    state = FolderReader(Path(tmp_path / "out"), problem.spec).read()
    assert state.status == "finished"
    store = Store.read(tmp_path / "out" / "store.sqlite", problem.spec.parameters, problem.measures)
    records = [r for r in store.history() if "margins" in r]
    store.close()
    shown = [it for it in state.iterations if it.margin_source == "nominal simulation"]
    assert len(shown) == len(records) >= 3
    for it, record in zip(shown, records, strict=True):
        for label, value in record["margins"].items():
            assert it.margins[label.split(" ")[0]] == pytest.approx(-value, rel=1e-12, abs=1e-15)


def test_optiyield_serve_command(tmp_path, browser):
    """`optiyield serve OUT --port 0` in its own process: it says where it listens (127.0.0.1 by default) and the
    page there shows the folder's (here: a finished) run as its report."""
    import subprocess
    import sys

    from conftest import ROOT, default_sigint

    problem = oy.load(small_csva_spec(tmp_path)).with_run(samples=20, steps=[{"nominal": "minimax", "max_iter": 2},
                                                                             {"verify": {"samples": 50}}])
    problem.run(tmp_path / "out", fresh=True, workers=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    server = subprocess.Popen([sys.executable, "-m", "optiyield", "serve", str(tmp_path / "out"), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              preexec_fn=default_sigint)
    try:
        line = server.stdout.readline()
        assert "open http://127.0.0.1:" in line, line
        url = line.split("open ")[1].split()[0]
        browser.get(url)
        page, _ = _wait(browser, lambda p: p["status"] == "finished" and p["report"], timeout=120)
        assert "2. Specifications" in page["report"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_optiyield_run_serve(tmp_path, browser):
    """`optiyield run SPEC --serve`: the dashboard is up before the first simulation, follows the run, shows the
    report once it ends, and keeps serving until interrupted (SIGINT ends it cleanly)."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT, default_sigint

    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    server = subprocess.Popen([sys.executable, "-m", "optiyield", "run", str(small_csva_spec(tmp_path)), "--out",
                               str(tmp_path / "out"), "--serve", "--port", "0", "-j", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              preexec_fn=default_sigint)
    try:
        line = server.stdout.readline()
        assert line.startswith("live dashboard: http://127.0.0.1:"), line
        rest: list[str] = []  # drain the output meanwhile: a full pipe would block the run
        drain = threading.Thread(target=lambda: rest.extend(server.stdout), daemon=True)
        drain.start()
        browser.get(line.split(": ", 1)[1].strip())
        page, _ = _wait(browser, lambda p: p["status"] == "finished" and p["report"], timeout=180)
        assert "3. Histograms before and after optimization" in page["report"]
        assert server.poll() is None                      # still serving the report
        deadline = time.monotonic() + 60  # the page can show the report before the command prints its summary
        while "now shows the report" not in "".join(rest) and time.monotonic() < deadline:
            time.sleep(0.2)
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=120) == 0
        drain.join(timeout=30)
        assert "now shows the report" in "".join(rest)
    finally:
        if server.poll() is None:
            server.kill()
