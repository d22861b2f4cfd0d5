"""PySpice testbenches: a PySpice circuit (circuits/csva/bench.py) gives the same figures as the shipped netlist.

PySpice only writes the netlist text; ngspice runs it through optiyield's batched engine. Needs the optional
extra `pyspice` (pip install -e '.[pyspice]'; `make setup` installs it).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("PySpice.Spice.Netlist", reason="PySpice testbenches need the extra: pip install -e '.[pyspice]'")

import optiyield as oy  # noqa: E402
from optiyield.errors import SpecError  # noqa: E402
from optiyield.testbench import load_testbench  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CSVA = ROOT / "circuits" / "csva"


def _spec(testbench: object) -> dict:
    """specs/csva.yaml with another testbench: the same design, variation and specs."""
    data = yaml.safe_load((ROOT / "specs" / "csva.yaml").read_text())
    data["testbench"] = testbench
    return data


def test_pyspice_testbench_writes_the_shipped_circuit():
    shipped, pyspice = load_testbench(CSVA / "testbench.yaml"), load_testbench(CSVA / "testbench_pyspice.yaml")
    assert pyspice.copies and pyspice.measure_names == shipped.measure_names
    assert pyspice.netlist.params == shipped.netlist.params          # every .param default kept
    assert pyspice.netlist.hoisted == shipped.netlist.hoisted        # model include (absolute) and .temp
    assert [a.split() for a in pyspice.netlist.analyses] == [a.split() for a in shipped.netlist.analyses]
    assert "PySpice.Spice.NgSpice.Shared" not in sys.modules         # PySpice's simulator binding is never loaded
    assert "PySpice.Spice.Parser" not in sys.modules                 # nor its netlist parser


@pytest.mark.ngspice
def test_pyspice_csva_gives_the_same_figures_as_the_netlist():
    """The same 200 Monte Carlo samples through both testbenches: every measure agrees to 1e-9 (relative)."""
    netlist = oy.load(_spec("../circuits/csva/testbench.yaml"), base=ROOT / "specs")
    pyspice = oy.load(_spec("../circuits/csva/testbench_pyspice.yaml"), base=ROOT / "specs")
    a = netlist.monte_carlo(200, seed=11, sampler="sobol", workers=2)
    b = pyspice.monte_carlo(200, seed=11, sampler="sobol", workers=2)
    assert (a.samples["status"] == "ok").all() and (b.samples["status"] == "ok").all()
    for measure in netlist.measures:
        np.testing.assert_allclose(b.samples[measure], a.samples[measure], rtol=1e-9, atol=0, err_msg=measure)
    assert b.yield_estimate == a.yield_estimate


@pytest.mark.ngspice
def test_the_api_takes_a_circuit_object():
    """An inline testbench whose `pyspice` is the Circuit itself (or its builder function)."""
    sys.path.insert(0, str(CSVA))
    try:
        import bench
    finally:
        sys.path.remove(str(CSVA))
    measures = yaml.safe_load((CSVA / "testbench_pyspice.yaml").read_text())["measures"]
    expected = oy.load(ROOT / "specs" / "csva.yaml").monte_carlo(20, seed=2, workers=1)
    for source in (bench.build(), bench.build):
        problem = oy.load(_spec({"name": "csva_object", "pyspice": source, "measures": measures}), base=CSVA)
        result = problem.monte_carlo(20, seed=2, workers=1)
        np.testing.assert_allclose(result.samples["gain_db"], expected.samples["gain_db"], rtol=1e-9)


@pytest.mark.parametrize(("pyspice", "message"), [
    ("bench.py", "expected FILE.py:NAME"),
    ("missing.py:build", "file 'missing.py' not found"),
    ("bench.py:nothing", "defines no 'nothing'"),
    ("bench.py:MODELS", "expected a PySpice Circuit or a function returning one"),
])
def test_bad_pyspice_references_are_spec_errors(tmp_path, pyspice, message):
    testbench = tmp_path / "testbench.yaml"
    testbench.write_text(yaml.safe_dump({"name": "t", "pyspice": pyspice,
                                         "measures": {"power": {"fn": "dc_power", "supply": "VDD"}}}))
    (tmp_path / "bench.py").write_text((CSVA / "bench.py").read_text())
    with pytest.raises(SpecError, match=message) as info:
        load_testbench(testbench)
    assert info.value.path == "pyspice"


def test_a_failing_builder_is_named(tmp_path):
    (tmp_path / "bench.py").write_text("def build():\n    raise RuntimeError('no such model')\n"
                                       "def other():\n    return 42\n")
    for name, message in (("build", "bench.py:build failed: RuntimeError: no such model"),
                          ("other", "bench.py:other returned int, expected a PySpice Circuit")):
        (tmp_path / "testbench.yaml").write_text(yaml.safe_dump({"name": "t", "pyspice": f"bench.py:{name}"}))
        with pytest.raises(SpecError, match=message):
            load_testbench(tmp_path / "testbench.yaml")


def test_netlist_and_pyspice_exclude_each_other(tmp_path):
    (tmp_path / "testbench.yaml").write_text(yaml.safe_dump({"name": "t", "netlist": "n.cir", "pyspice": "b.py:f"}))
    with pytest.raises(SpecError, match="exactly one of `netlist`"):
        load_testbench(tmp_path / "testbench.yaml")
