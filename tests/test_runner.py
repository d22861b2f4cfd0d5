"""The ngspice runner's compatibility modes (``compat:`` in testbench.yaml), through real ngspice."""

from pathlib import Path

import pytest

from optiyield.errors import SpecError
from optiyield.sim.engine import Engine
from optiyield.sim.ngspice.runner import NgspiceRunner, spinit_text
from optiyield.testbench import load_testbench

pytestmark = pytest.mark.ngspice

DECK = "* divider\nV1 a 0 1\nR1 a b 1k\nR2 b 0 1k\n.op\n.end\n"


def _testbench(folder: Path, compat: str | None) -> Path:
    (folder / "netlist.cir").write_text("* divider\n.param R=1k\nV1 a 0 1\nR1 a b {R}\nR2 b 0 1k\n.op\n.end\n")
    line = f"compat: {compat}\n" if compat is not None else ""
    (folder / "testbench.yaml").write_text(
        "name: divider\nnetlist: netlist.cir\nmeasures:\n  vb: {fn: dc_voltage, node: b}\n" + line)
    return folder / "testbench.yaml"


def test_compat_mode_reaches_ngspice(tmp_path):
    """ngspice itself reports the mode it was given, and the default run has none."""
    runner = NgspiceRunner()
    try:
        plain = runner.run(DECK, tmp_path, 30, expected=("op",))
        (tmp_path / "hsa").mkdir()
        hsa = runner.run(DECK, tmp_path / "hsa", 30, expected=("op",), compat="hsa")
    finally:
        runner.close()
    assert plain.ok and hsa.ok
    assert "No compatibility mode selected" in plain.stdout
    assert "Compatibility modes selected: hs a" in hsa.stdout


def test_unknown_compat_mode_is_refused():
    assert "ngbehavior=hsa" in spinit_text("hsa") and "ngbehavior" not in spinit_text("")
    for bad in ("hsx", "hs; shell rm -rf /", "HS", "hs\nshell ls"):
        with pytest.raises(ValueError, match="compatibility mode"):
            spinit_text(bad)


def test_testbench_compat_field_runs_through_the_engine(tmp_path):
    testbench = load_testbench(_testbench(tmp_path, "hsa"))
    assert testbench.compat == "hsa" and testbench.job(("R",)).compat == "hsa"
    with Engine(workers=1) as engine:
        result = engine.run(testbench.job(("R",)), [[1e3], [3e3]])
    assert list(result.status) == ["ok", "ok"]
    assert result.values["vb"] == pytest.approx([0.5, 0.25])


def test_testbench_compat_field_is_validated(tmp_path):
    with pytest.raises(SpecError, match="compatibility mode"):
        load_testbench(_testbench(tmp_path, "hspice"))
