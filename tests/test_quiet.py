"""No third-party banner in normal output: HiGHS's copyright line is kept out of stdout, and the solver log
is there when asked for (``optiyield.solver`` logger at DEBUG, which ``optiyield -v`` sets).

HiGHS prints its banner once per process, from the first ``Highs()``; so each case runs in a fresh process."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LP = """
import logging, cvxpy as cp
from optiyield.optim.trust_region import solve_lp
if {verbose}:
    logging.getLogger("optiyield.solver").setLevel(logging.DEBUG)
x = cp.Variable(2)
for _ in range(3):
    problem = cp.Problem(cp.Minimize(cp.sum(x)), [x >= 1, x <= 3])
    solve_lp(problem)
print("value", problem.value)
"""


def _run(verbose: bool) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", LP.format(verbose=verbose)], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    return done.stdout + done.stderr


def test_lp_solves_print_no_banner():
    out = _run(verbose=False)
    assert "value 2.0" in out
    assert "HiGHS" not in out and "Copyright" not in out, out


def test_solver_log_shows_when_asked_for():
    out = _run(verbose=True)
    assert "value 2.0" in out
    assert "Running HiGHS" in out and "Model status" in out, out


def _cli(tmp_path: Path, *flags: str) -> str:
    """A short real `optiyield run` (minimax, then a 50-sample verification) in a fresh process."""
    import yaml

    spec = yaml.safe_load((ROOT / "specs" / "csva.yaml").read_text())
    spec["testbench"] = str(ROOT / "circuits" / "csva" / "testbench.yaml")
    spec["run"] = {"seed": 1, "samples": 20, "steps": [{"nominal": "minimax", "max_iter": 2},
                                                         {"verify": {"samples": 50}}]}
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "optiyield", *flags, "run", str(path), "--out",
                           str(tmp_path / "out"), "--fresh", "-j", "1"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_optiyield_run_prints_no_banner(tmp_path):
    out = _cli(tmp_path)
    assert "1. minimax (igat)" in out and "report:" in out
    assert "HiGHS" not in out and "Copyright" not in out, out


def test_verbose_run_shows_solver_logs(tmp_path):
    out = _cli(tmp_path, "-v")
    assert "Running HiGHS" in out and "CVXPY" in out, out
