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
