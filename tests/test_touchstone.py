"""Touchstone export: the LNA's four S-parameters from two .ac runs agree with ngspice's own .sp analysis of the
same circuit (port sources instead of the source/load resistors), at every frequency of the sweep, and the
file scikit-rf writes reads back to the same numbers. Needs the extra `rf` (scikit-rf)."""

import dataclasses
import shutil

import numpy as np
import pytest

skrf = pytest.importorskip("skrf", reason="Touchstone export needs the extra: pip install -e '.[rf]'")

from conftest import ROOT, run_cli  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import optiyield as oy  # noqa: E402
from optiyield.cli import app  # noqa: E402
from optiyield.sim.ngspice.deck import render  # noqa: E402
from optiyield.sim.ngspice.runner import NgspiceRunner  # noqa: E402
from optiyield.touchstone import Ports, TouchstoneError, find_ports, s_parameters, write_touchstone  # noqa: E402

pytestmark = pytest.mark.ngspice


def _sp_analysis(spec, design):
    """ngspice .sp over the testbench's .ac grid: VS becomes port 1 (z0 200, RS removed), RL becomes port 2."""
    netlist = spec.testbench.netlist
    body = []
    for line in netlist.body:
        name = line.split()[0].lower()
        if name == "rs":
            continue
        body.append({"vs": "VS in 0 dc {Vbmain} ac 1 portnum 1 z0 200",
                     "rl": "VP2 out 0 dc 0 ac 0 portnum 2 z0 50"}.get(name, line))
    grid = next(a for a in netlist.analyses if a.lower().startswith(".ac")).split()[1:]
    deck = dataclasses.replace(netlist, body=tuple(body), analyses=(".sp " + " ".join(grid),), measures=())
    nominal = spec.nominal(design)
    names = tuple(spec.parameters)
    runner = NgspiceRunner()
    folder = runner.workdir()
    try:
        text, _ = render(deck, names, np.array([[nominal[n] for n in names]]), str(folder / "out.raw"), copies=False)
        outcome = runner.run(text, folder, 60, expected=())
        assert outcome.ok, outcome.failure
        plot = outcome.plot("sp")
        s = np.array([[plot["v(s_1_1)"], plot["v(s_1_2)"]], [plot["v(s_2_1)"], plot["v(s_2_2)"]]])
        return np.asarray(plot["frequency"]).real, np.moveaxis(s, -1, 0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        runner.close()


def test_lna_s_parameters_agree_with_ngspice_sp(tmp_path):
    problem = oy.load(ROOT / "specs" / "lna.yaml")
    design = {"Lg": 9e-9, "WN1": 6e-6}
    freq, s, ports = s_parameters(problem.spec, design)
    assert ports == Ports(source="VS", input="in", z0=200.0, output="out", zl=50.0)
    sp_freq, sp = _sp_analysis(problem.spec, design)
    np.testing.assert_allclose(freq, sp_freq, rtol=1e-12)
    for i, j in ((0, 0), (1, 0), (0, 1), (1, 1)):   # measured: relative errors of 2e-15 to 6e-14
        error = np.abs(s[:, i, j] - sp[:, i, j])
        assert np.all(error <= 1e-9 * np.abs(sp[:, i, j]) + 1e-15), f"S{i + 1}{j + 1}: {error.max():.3g}"
    path = write_touchstone(problem.spec, tmp_path / "lna", design)
    assert path.name == "lna.s2p" and "[Reference] 200.0 50.0" in path.read_text()
    back = skrf.Network(str(path))
    np.testing.assert_allclose(back.s, s, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(back.z0[0], [200, 50])


def test_a_testbench_without_rf_ports_is_refused():
    problem = oy.load(ROOT / "specs" / "csva.yaml")
    with pytest.raises(TouchstoneError, match="no RF port measures"):
        find_ports(problem.spec.testbench)


def test_a_sweep_testbench_needs_the_sweep_value(tmp_path):
    problem = oy.load(ROOT / "specs" / "vga_10ghz.yaml")
    with pytest.raises(TouchstoneError, match="sweeps st: choose the value"):
        s_parameters(problem.spec)
    path = write_touchstone(problem.spec, tmp_path / "vga_state0.s2p", at=0)
    net = skrf.Network(str(path))
    assert net.nports == 2 and np.all(np.isfinite(net.s))


def test_cli_writes_a_touchstone_file(tmp_path):
    out = run_cli("touchstone", ROOT / "specs" / "lna.yaml", "--out", tmp_path)
    assert (tmp_path / "lna_start.s2p").is_file() and "lna_start.s2p" in out
    result = CliRunner().invoke(app, ["touchstone", str(ROOT / "specs" / "lna.yaml"), "--out", str(tmp_path),
                                      "--at", "final"])
    assert result.exit_code == 2 and "run_summary.json" in result.output
