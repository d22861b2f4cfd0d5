"""`optiyield run` through ngspice: yield rises, the store makes a killed run resumable."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiyield.cli import app

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "csva.yaml"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(app, ["run", str(SPEC), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output, json.loads((out / "run_summary.json").read_text())


def test_run_raises_yield_from_below_half(finished_run):
    out, output, summary = finished_run
    assert summary["start_yield"]["value"] < 0.5
    assert summary["final_yield"]["value"] > summary["start_yield"]["value"] + 0.3
    kinds = [step["kind"] for step in summary["steps"]]
    assert kinds == ["nominal", "yield", "verify"]
    minimax_step, yield_step, _ = summary["steps"]
    assert yield_step["yield_after"]["value"] >= yield_step["yield_before"]["value"]
    assert minimax_step["result"]["iterations"] > 0 and yield_step["result"]["simulations"] > 0
    verify = summary["verify"]
    assert verify["samples"] == 2000 and verify["yield"]["value"] > 0.7
    assert (out / "samples.parquet").exists() and (out / "hist_gain_db.png").exists()
    for text in ("start", "final", "verify", "simulations", "overall"):
        assert text in output


def test_killed_run_resumes_without_repeating_simulations(finished_run, tmp_path):
    _, _, reference = finished_run
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "optiyield", "run", str(SPEC), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    store = out / "store.sqlite"
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
        if store.exists():
            try:
                with sqlite3.connect(store, timeout=1) as db:
                    stored = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if stored > 2000:  # well into the yield optimization
                break
    assert process.poll() is None, "the run finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "run_summary.json").exists()

    refused = CliRunner().invoke(app, ["run", str(SPEC), "--out", str(out)])
    assert refused.exit_code == 2 and "--resume" in refused.output

    resumed = CliRunner().invoke(app, ["run", str(SPEC), "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["cached"] >= stored > 0  # everything stored before the kill came from the store
    assert summary["simulations"] < reference["simulations"]
    assert summary["design_final"] == reference["design_final"]  # deterministic replay: same answer
    assert summary["verify"]["yield"] == reference["verify"]["yield"]


def test_staged_step_through_the_run_command(tmp_path):
    spec = ROOT / "tests" / "circuits" / "csva_staged.yaml"
    result = CliRunner().invoke(app, ["run", str(spec), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run_summary.json").read_text())
    (step,) = summary["steps"]
    assert step["kind"] == "staged" and step["result"]["simulations"] <= 400 + 2  # budget + 2 region checks
    assert step["result"]["objective"] < 1e-9, step["result"]["status"]  # every spec met
    design = summary["design_final"]
    assert 0.6 <= design["Vgate"] <= 0.9 and 3e-6 <= design["W"] <= 10e-6


RC_NETLIST = """* RC low-pass
.param R=1k C=1p
V1 in 0 dc 0 ac 1
R1 in out {R}
C1 out 0 {C}
.ac dec 20 1meg 100g
.end
"""


def _rc_spec(folder: Path, values: str) -> Path:
    (folder / "rc.cir").write_text(RC_NETLIST)
    (folder / "tb.yaml").write_text(f"""name: rc
netlist: rc.cir
sweep: {{param: C, values: {values}}}
measures:
  bw: {{fn: bandwidth_3db, out: out, reduce: min}}
""")
    spec = folder / "rc.yaml"
    spec.write_text("""name: rc
testbench: tb.yaml
design:
  R: {start: 1k, min: 500, max: 2k}
variation:
  - {param: R, dist: normal, sigma: 5%}
specs:
  bw: {min: 1M}
run:
  seed: 3
  samples: 10
  steps:
    - {verify: {samples: 20}}
""")
    return spec


def test_changed_sweep_value_is_simulated_again_on_resume(tmp_path):
    """The job's fingerprint covers the testbench's sweep: after a sweep value changes, --resume simulates
    again instead of serving the stale rows, and says so."""
    spec = _rc_spec(tmp_path, "[1p, 2p]")
    out = tmp_path / "out"
    first = CliRunner().invoke(app, ["run", str(spec), "--out", str(out)])
    assert first.exit_code == 0, first.output
    bw_before = pd.read_csv(out / "samples.csv")["bw"].to_numpy()
    again = CliRunner().invoke(app, ["run", str(spec), "--out", str(out), "--resume"])
    assert again.exit_code == 0 and json.loads((out / "run_summary.json").read_text())["cached"] == 30
    _rc_spec(tmp_path, "[1p, 4p]")
    changed = CliRunner().invoke(app, ["run", str(spec), "--out", str(out), "--resume"])
    assert changed.exit_code == 0, changed.output
    after = json.loads((out / "run_summary.json").read_text())
    assert after["simulations"] == 30 and after["cached"] == 0
    assert "stored simulations were stale" in " ".join(changed.output.split())
    # the same outcomes; the minimum over the sweep is now set by 4 pF: half the bandwidth of 2 pF
    bw_after = pd.read_csv(out / "samples.csv")["bw"].to_numpy()
    np.testing.assert_allclose(bw_after / bw_before, 0.5, rtol=0.02)
