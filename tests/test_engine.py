"""The batched engine through real ngspice: batching is exact, failures are isolated and recorded."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from optiyield.montecarlo import sample_matrix
from optiyield.sim.engine import FAILED, OK, Engine
from optiyield.sim.ngspice import NgspiceSimulator
from optiyield.sim.ngspice.runner import NgspiceRunner
from optiyield.spec import load_spec
from optiyield.stats.variation import OutcomeSet
from optiyield.testbench import load_testbench

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
CIRCUITS = Path(__file__).parent / "circuits"
BOLTZMANN = 1.380649e-23


@pytest.fixture(scope="module")
def engine():
    return Engine(workers=2)


def test_batched_results_equal_one_at_a_time(engine):
    """The same 24 Monte Carlo samples of the CSVA, as one K-copy deck and as 24 separate decks.

    They agree to solver round-off (~1e-9 relative: the matrix ordering differs), far below the
    sample-to-sample spread."""
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    outcomes = OutcomeSet.draw(spec.model, 24, "mc", seed=11)
    values = sample_matrix(spec, outcomes)
    job = spec.testbench.job(spec.parameters)
    batched = engine.run(dataclasses.replace(job, batch_size=24), values)
    single = engine.run(dataclasses.replace(job, copies=False), values)
    assert batched.runs <= 2 and single.runs == 24
    assert (batched.status == OK).all() and (single.status == OK).all()
    for name in job.measures:
        np.testing.assert_allclose(batched.values[name], single.values[name], rtol=1e-7, err_msg=name)
    # the samples really differ, so equality is not trivial
    assert np.ptp(batched.values["gain_db"]) > 0.1


def probe_values() -> tuple[tuple[str, ...], np.ndarray]:
    names = ("p", "per", "mu", "rl")
    values = np.tile([1.0, 100e-9, 1.0, 0.0], (8, 1))
    values[:, 3] = 100.0 * np.arange(1, 9)
    return names, values


def test_failures_are_recorded_and_the_rest_of_the_batch_survives(engine):
    """Sample 2 does not converge, sample 5 hangs (time-out), sample 6 makes ngspice abort (fatal
    BSIM4 parameter error); the other five come back with correct values."""
    testbench = load_testbench(CIRCUITS / "probes.yaml")
    names, values = probe_values()
    values[2, 0] = 0.0  # p = 0: B1 divides by zero
    values[5, 1] = 1e-13  # a PULSE breakpoint every 0.1 ps over 2 us: runs for hours
    values[6, 2] = -1.0  # mulu0 < 0: "Fatal: u0 ... is not positive"
    results = engine.run(testbench.job(names), values)
    failed = [2, 5, 6]
    survivors = [k for k in range(8) if k not in failed]
    assert list(np.flatnonzero(results.status == FAILED)) == failed
    assert (results.status[survivors] == OK).all()
    # B1 forces I = v(g)/p = 1 A through rl, so v(d) = -rl
    np.testing.assert_allclose(results.values["vd"][survivors], -values[survivors, 3], rtol=1e-9)
    assert np.isnan(results.values["vd"][failed]).all()
    assert "timestep too small" in results.reason[2].lower()
    assert "timed out after 3 s" in results.reason[5]
    assert "fatal" in results.reason[6].lower() and "u0" in results.reason[6]
    for k in (2, 6):  # retried once with gentle options before being recorded
        assert "retry with gentle options" in results.reason[k]
    # a hanging sample is not retried (issue 15: gentler options only make it hang longer)
    assert "retry" not in results.reason[5]


def test_runaway_output_is_killed_by_the_file_size_cap():
    """A sample that makes the raw file explode kills ngspice with SIGXFSZ; the other survives."""
    testbench = load_testbench(CIRCUITS / "probes.yaml")
    names, values = probe_values()
    values = values[:2].copy()
    values[1, 1] = 1e-13
    capped = Engine(NgspiceSimulator(NgspiceRunner(max_file_bytes=4 << 20)), workers=1)
    job = dataclasses.replace(testbench.job(names), timeout=60)
    results = capped.run(job, values)
    assert list(results.status) == [OK, FAILED]
    assert "killed by SIGXFSZ" in results.reason[1]
    assert results.values["vd"][0] == pytest.approx(-100.0)


def test_single_copy_path_for_noise_analysis(engine):
    """.noise cannot be replicated: one process per sample, densities equal sqrt(4kT R/2)."""
    testbench = load_testbench(CIRCUITS / "divider_noise.yaml")
    assert not testbench.copies
    r = np.array([[1e3], [2e3], [50.0]])
    results = engine.run(testbench.job(("r",)), r)
    assert results.runs == 3
    expected = np.sqrt(4 * BOLTZMANN * 300.15 * r[:, 0] / 2)
    np.testing.assert_allclose(results.values["vn1k"], expected, rtol=1e-5)
    np.testing.assert_allclose(results.values["vn100k"], expected, rtol=1e-5)


def test_meas_results_by_name_in_copies_and_single(engine, tmp_path):
    """`.meas` lines of the netlist become measures; copies and single decks agree with numpy measures."""
    netlist = (ROOT / "circuits" / "csva" / "netlist.cir").read_text()
    netlist = netlist.replace("../models/", str(ROOT / "circuits" / "models") + "/")
    netlist = netlist.replace(".end\n", ".meas ac g1k find vdb(vout) at=1k\n.meas ac fu when vdb(vout)=0 fall=1\n"
                              ".meas ac never when vdb(vout)=100 fall=1\n.end\n")
    (tmp_path / "n.cir").write_text(netlist)
    (tmp_path / "tb.yaml").write_text("name: m\nnetlist: n.cir\nmeasures:\n  gain_db: {fn: lf_gain_db, out: vout}\n")
    testbench = load_testbench(tmp_path / "tb.yaml")
    assert testbench.copies and set(testbench.measure_names) == {"gain_db", "g1k", "fu", "never"}
    values = np.array([[5e-6, 1000.0], [6e-6, 800.0], [4e-6, 1500.0]])
    job = testbench.job(("W", "Rd"))
    copies = engine.run(job, values)
    single = engine.run(dataclasses.replace(job, copies=False), values)
    for result in (copies, single):
        assert (result.status == OK).all()
        np.testing.assert_allclose(result.values["g1k"], result.values["gain_db"], atol=1e-5)
        assert (result.values["fu"] > 4e8).all()
        assert np.isnan(result.values["never"]).all()  # a .meas that fails is undefined, not a failed run
    np.testing.assert_allclose(copies.values["fu"], single.values["fu"], rtol=1e-6)


def test_meas_on_noise_is_refused_with_a_clear_message(tmp_path):
    (tmp_path / "n.cir").write_text((CIRCUITS / "divider_noise.cir").read_text().replace(
        ".end", ".meas noise vn find onoise_spectrum at=1k\n.end"))
    (tmp_path / "tb.yaml").write_text("name: m\nnetlist: n.cir\n")
    with pytest.raises(ValueError, match="ngspice 39 measures only ac, dc, tran and sp"):
        load_testbench(tmp_path / "tb.yaml")


def test_progress_reports_every_sample(engine):
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    values = sample_matrix(spec, OutcomeSet.draw(spec.model, 30, "sobol", seed=2))
    seen = []
    engine.run(dataclasses.replace(spec.testbench.job(spec.parameters), batch_size=7), values, seen.append)
    assert sum(seen) == 30 and len(seen) == 5


def test_ngspice_dies_with_its_parent_when_asked(tmp_path):
    """On a Dask worker the runner's time-out timer dies with the worker; ngspice must die too."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import numpy as np, sys\n"
        "from optiyield.sim.engine import Engine\n"
        "from optiyield.sim.ngspice.runner import NgspiceRunner\n"
        "from optiyield.sim.ngspice import NgspiceSimulator\n"
        "from optiyield.testbench import load_testbench\n"
        f"tb = load_testbench({str(CIRCUITS / 'probes.yaml')!r})\n"
        "engine = Engine(NgspiceSimulator(NgspiceRunner(kill_with_parent=True)), workers=1)\n"
        "print('start', flush=True)\n"
        "engine.run(__import__('dataclasses').replace(tb.job(('p', 'per', 'mu', 'rl')), timeout=600),\n"
        "           np.array([[1.0, 1e-13, 1.0, 100.0]]))\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "start"

    def children() -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(parent.pid), "ngspice"], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    deadline = time.time() + 20
    while not children() and time.time() < deadline:
        time.sleep(0.05)
    (child,) = children()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(child)], capture_output=True, text=True).stdout
        if state.strip().startswith("Z"):  # killed, waiting to be reaped by init
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("ngspice outlived its parent")


def test_transient_deck_saves_only_the_measured_vectors(engine, tmp_path):
    """A transient testbench's decks write only the vectors its measures read (a `.save` derived from the
    measure bindings): v(in), v(lim), v(vdd) and the currents of VS and VDD of every copy. The
    raw file shrinks and every measure is exactly what it is with everything saved."""
    from optiyield.sim.ngspice.deck import render, save_names

    bench = load_testbench(CIRCUITS / "tran_probe.yaml")
    job = bench.job(["vdd"])
    assert set(job.vectors) == {("v", "in"), ("v", "lim"), ("v", "vdd"), ("i", "vs"), ("i", "vdd")}
    vdd = np.array([[1.0], [1.2]])
    saved, everything = engine.run(job, vdd), engine.run(dataclasses.replace(job, vectors=()), vdd)
    assert (saved.status == OK).all()
    for name in job.measures:
        np.testing.assert_array_equal(saved.values[name], everything.values[name], err_msg=name)
    deck, layout = render(job.netlist, job.names, vdd[:1], "out.raw", copies=True, sweep=job.sweep,
                          vectors=job.vectors)
    names = save_names(layout, bench.sweep_points, job.vectors)
    assert len(names) == len(job.vectors) * bench.sweep_points and "v(x6.lim)" in names and "i(v.x0.vdd)" in names
    assert ".save v(x0." in deck and ".save all" not in deck
    runner = NgspiceRunner()
    try:
        run = runner.run(deck, tmp_path, 60, ("tran",))
    finally:
        runner.close()
    assert run.ok and len(next(p for p in run.plots if p.kind == "tran").index) == 1 + len(names)  # time + saved


def test_testbenches_without_a_transient_save_everything():
    """AC/op-only decks keep writing every vector (a long `.save` list made 500-copy AC decks slower), and so
    do decks with `.meas` lines or a binding that cannot list its vectors (noise)."""
    for circuit in ("csva", "rx28", "mixer"):
        assert load_testbench(ROOT / "circuits" / circuit / "testbench.yaml").job([]).vectors == ()
