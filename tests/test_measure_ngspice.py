"""Library measures on real ngspice AC results of a two-pole loop, against the exact answers."""

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

from optiyield.sim.engine import OK, Engine
from optiyield.testbench import load_testbench

pytestmark = pytest.mark.ngspice
CIRCUITS = Path(__file__).parent / "circuits"


def exact(gm1, r1, c1, gm2, r2, c2):
    a0 = gm1 * r1 * gm2 * r2
    p1, p2 = 1 / (2 * np.pi * r1 * c1), 1 / (2 * np.pi * r2 * c2)

    def h(f):
        return a0 / ((1 + 1j * f / p1) * (1 + 1j * f / p2))

    fu = brentq(lambda f: abs(h(f)) - 1, 1.0, 1e12)
    pm = 180 - np.degrees(np.arctan(fu / p1) + np.arctan(fu / p2))
    f3 = brentq(lambda f: abs(h(f)) - a0 / np.sqrt(2), 1.0, 1e12)
    return 20 * np.log10(a0), fu, pm, f3, 20 * np.log10(abs(h(1e6)))


def test_two_pole_measures_match_theory():
    testbench = load_testbench(CIRCUITS / "two_pole.yaml")
    names = ("gm1", "r1", "c1", "gm2", "r2", "c2")
    rows = np.array([[1e-3, 100e3, 10e-12, 2e-3, 10e3, 0.2e-12],
                     [1e-3, 100e3, 10e-12, 2e-3, 10e3, 2e-12],     # second pole lower: less margin
                     [0.5e-3, 50e3, 5e-12, 4e-3, 5e3, 0.05e-12]])
    results = Engine(workers=2).run(testbench.job(names), rows)
    assert (results.status == OK).all()
    for k, row in enumerate(rows):
        a0_db, fu, pm, f3, g1m = exact(*row)
        assert results.values["a0_db"][k] == pytest.approx(a0_db, abs=1e-3)
        assert results.values["fu"][k] == pytest.approx(fu, rel=0.01)
        assert results.values["pm"][k] == pytest.approx(pm, abs=0.5)
        assert results.values["bw"][k] == pytest.approx(f3, rel=0.005)
        assert results.values["g1m"][k] == pytest.approx(g1m, abs=0.05)
    assert results.values["pm"][1] < results.values["pm"][0]
