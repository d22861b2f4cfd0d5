"""Warm-started transients (optiyield/sim/warmstart.py): rows of a finite-difference Jacobian start from their
base outcome's settled state and run a few periods instead of settling from the operating point."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from optiyield.errors import SpecError
from optiyield.netlist import parse_netlist
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.gradients import PAST
from optiyield.sim.engine import Engine
from optiyield.sim.ngspice.warmstart import WarmStartError, plan
from optiyield.spec import load_spec
from optiyield.stats.variation import OutcomeSet
from optiyield.testbench import load_testbench

CIRCUITS = Path(__file__).parent / "circuits"


def _netlist(tmp_path: Path, body: str, tran: str = ".tran 2p 4n 0 2p") -> Path:
    path = tmp_path / "n.cir"
    path.write_text(f"* t\n.param a=1\nV1 in 0 dc 0 sin(0 1 5G)\nR1 in out 50\n{body}\n{tran}\n.end\n")
    return path


def test_plan_reads_the_elements_whose_state_is_set(tmp_path):
    warm = plan(parse_netlist(CIRCUITS / "warm_tank.cir"), 5e9, 8)
    assert warm.tran == ".tran 2p 1.6e-09 0 2p uic"
    assert warm.inductors == ("l1",) and warm.mosfets == (("m1", "d", "g", "0", "0"),)
    assert warm.diodes == (("d1", "d", "vdd"),)


@pytest.mark.parametrize("body, tran, message", [
    ("C1 out 0 1p", ".tran 2p 4.1n 0 2p", "whole period"),
    ("X1 out 0 sub", ".tran 2p 4n 0 2p", "cannot be set"),
    ("T1 out 0 b 0 Z0=50 TD=10p", ".tran 2p 4n 0 2p", "cannot be set"),
    ("L1 out 0 1n ic=1m", ".tran 2p 4n 0 2p", "already has ic="),
    ("C1 out 0 1p", ".tran 2p 4n 0 2p uic", "no uic"),
    ("C1 out 0 1p", ".tran 2p 4n 1n 2p", "tstart 0"),
])
def test_plan_refuses_what_it_cannot_warm_start(tmp_path, body, tran, message):
    with pytest.raises(WarmStartError, match=message):
        plan(parse_netlist(_netlist(tmp_path, body, tran)), 5e9, 4)


def test_testbench_names_the_warm_start_field(tmp_path):
    _netlist(tmp_path, "C1 out 0 1p", ".tran 2p 4.1n 0 2p")
    doc = {"name": "t", "netlist": "n.cir", "measures": {"v": {"fn": "harmonic_amplitude", "out": "out", "f0": "5G"}},
           "warm_start": {"f0": "5G", "periods": 4}}
    (tmp_path / "tb.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="warm_start"):
        load_testbench(tmp_path / "tb.yaml")


@pytest.mark.ngspice
def test_warm_rows_match_their_cold_runs_and_differences():
    """tests/circuits/warm_tank.cir (loaded Q ~ 6, 20 periods cold): a row started from its own settled state
    reproduces its cold value to 1e-4; a row perturbed by 0.2 % in W, started from the base's state, gives
    the cold finite difference within 3 %; a cold run as short as the warm one (8 periods) is 1 % off."""
    bench = load_testbench(CIRCUITS / "warm_tank.yaml")
    job = bench.job(["W"])
    base, perturbed = np.array([20e-6]), np.array([20.04e-6])
    rows = np.vstack([base, perturbed])
    with Engine(workers=2) as engine:
        cold = engine.run(job, rows)                       # cold runs: their final states are cached
        warm = engine.run(job, rows, anchors=np.vstack([base, base]))
        uncached = engine.run(job, rows, anchors=np.vstack([[19e-6], [19e-6]]))   # no state for 19u: cold
        short = engine.run(dataclasses.replace(job, netlist=dataclasses.replace(
            job.netlist, analyses=(".tran 2p 1.6n 0 2p",)), warm_start=None), base[None])
    assert warm.warm_runs == 2 and cold.warm_runs == 0 and uncached.warm_runs == 0
    assert (warm.status == "ok").all()
    np.testing.assert_allclose(warm.values["vout"][0], cold.values["vout"][0], rtol=1e-4)
    np.testing.assert_allclose(uncached.values["vout"], cold.values["vout"], rtol=1e-12)
    fd_cold = cold.values["vout"][1] - cold.values["vout"][0]
    fd_warm = warm.values["vout"][1] - warm.values["vout"][0]
    assert fd_warm == pytest.approx(fd_cold, rel=0.03)
    assert abs(short.values["vout"][0] / cold.values["vout"][0] - 1) > 5e-3


def _warm_tank_spec(tmp_path, samples: int, variation: list | None = None):  # noqa: ANN001, ANN202
    """The warm_tank testbench as a spec with W free (10-30 um), optionally with variation."""
    spec_doc = {"name": "warm_tank", "testbench": str(CIRCUITS / "warm_tank.yaml"),
                "design": {"W": {"start": "20u", "min": "10u", "max": "30u"}},
                **({"variation": variation} if variation else {}),
                "specs": {"vout": {"min": 0.05}}, "run": {"samples": samples, "seed": 1}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec_doc))
    return load_spec(tmp_path / "s.yaml")


@pytest.mark.ngspice
def test_past_jacobian_warm_starts_its_rows(tmp_path):
    """PAST through the evaluator: the base outcomes run cold (states cached), then base and perturbed rows
    run warm from them; the Jacobian's W column matches the all-cold one within 3 %."""
    spec = _warm_tank_spec(tmp_path, samples=3, variation=[{"param": "Lt", "dist": "normal", "sigma": "2%"}])
    outcomes = OutcomeSet.draw(spec.model, 3, "mc", seed=2)
    jacobians = {}
    for label in ("warm", "cold"):
        with Engine(workers=2) as engine:
            evaluator = Evaluator(spec, engine)
            if label == "cold":
                evaluator.job = dataclasses.replace(evaluator.job, warm_start=None)
            _, jacobians[label] = PAST(evaluator, outcomes).start(evaluator.x0)
            assert evaluator.warm_starts == (label == "warm")
            assert evaluator.meter.simulations == (9 if label == "warm" else 6)  # warm re-runs the base too
    np.testing.assert_allclose(jacobians["warm"], jacobians["cold"], rtol=0.03)


@pytest.mark.ngspice
def test_past_without_a_settled_base_runs_cold(tmp_path):
    """A base served from the store has no cached state: its perturbations run cold, and the base is not re-run."""
    spec = _warm_tank_spec(tmp_path, samples=1)
    with Engine(workers=1) as engine:
        evaluator = Evaluator(spec, engine)
        provider = PAST(evaluator, None)
        r0 = provider.simulate(evaluator.x0)[0]
        fresh = Engine(workers=1)          # another engine: the base's state is not in its cache
        evaluator.engine = fresh
        assert not evaluator.settled(evaluator.x0)
        provider.accept(evaluator.x0, r0)
        fresh.close()
    assert evaluator.meter.simulations == 2   # the base (first engine) and one perturbation, both cold


@pytest.mark.ngspice
def test_warm_responses_bypass_the_store(tmp_path):
    """Warm responses carry the short run's settling error, so they are neither served from the store nor
    written to it: the store keeps the cold results only, and a warm request re-simulates."""
    from optiyield.store import Store

    spec = _warm_tank_spec(tmp_path, samples=1)
    with Engine(workers=1) as engine:
        evaluator = Evaluator(spec, engine)
        store = Store(tmp_path / "store.sqlite", evaluator.job.fingerprint, spec.parameters, evaluator.job.measures)
        evaluator.store = store
        cold = evaluator.responses(evaluator.x0)
        assert evaluator.settled(evaluator.x0)
        point = evaluator.x0 * 1.002
        warm = evaluator.responses(point, anchor=evaluator.x0)
        assert evaluator.meter.simulations == 2 and evaluator.meter.cached == 0
        found = store.lookup(evaluator.rows(np.vstack([evaluator.x0, point]), None))[0]
        assert found.tolist() == [True, False]          # only the cold row is stored
        again = evaluator.responses(evaluator.x0, anchor=evaluator.x0)   # warm: simulated, not served
        assert evaluator.meter.simulations == 3 and evaluator.meter.cached == 0
    assert warm.values["vout"][0, 0] != cold.values["vout"][0, 0]
    assert again.values["vout"][0, 0] == pytest.approx(cold.values["vout"][0, 0], rel=1e-4)


def test_fingerprint_covers_the_warm_start():
    """A job's identity changes with warm_start (f0, periods); jobs without one keep their fingerprint."""
    job = load_testbench(CIRCUITS / "warm_tank.yaml").job(["W"])
    assert job.warm_start == (5e9, 8)
    plain = dataclasses.replace(job, warm_start=None)
    longer = dataclasses.replace(job, warm_start=(5e9, 10))
    assert len({job.fingerprint, plain.fingerprint, longer.fingerprint}) == 3
    assert dataclasses.replace(job, vectors=()).fingerprint == job.fingerprint   # fewer saved vectors: same numbers


def test_linear_line_moves_the_ac_drive_to_the_sine():
    """The pre-run of a linear start drives the small-signal analysis with each drive's sine (amplitude,
    phase − 90°: sin is cos delayed by a quarter period) and removes every other ac excitation."""
    from optiyield.sim.ngspice.warmstart import linear_line

    line = "VS src 0 dc 0 ac {acin} sin(0 {sqrt(0.4*exp(pin*0.23))} {fin})"
    drive = "{sqrt(0.4*exp(pin*0.23))}"
    assert linear_line(line, ("vs",)) == f"VS src 0 ac {drive} -90 dc 0 sin(0 {drive} {{fin}})"
    assert linear_line("VO ro 0 dc 0 ac {acout}", ("vs",)) == "VO ro 0 dc 0"
    assert linear_line("V1 a 0 ac 1 45 sin (0 1 1G 0 0 30)", ("v1",)) == "V1 a 0 ac 1 -60 sin(0 1 1G 0 0 30)"
    assert linear_line("VDD vdd 0 dc {VDD}", ("vs",)) == "VDD vdd 0 dc {VDD}"
    assert linear_line("R1 a b 50", ("vs",)) == "R1 a b 50"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["dc 0", "ac 1", "ac {m} 30", "dc {v}", "ac=2", "pulse(0 1 1n)"]), max_size=4),
       st.sampled_from(["sin(0 1 5G)", "sin(0.5 {a} {f} 0 0 15)", ""]))
def test_linear_line_keeps_everything_but_the_ac_specification(parts, sine):
    """Property: every token of a source line except its ac specification survives, in order; a drive
    gets exactly one `ac`."""
    from optiyield.sim.ngspice.warmstart import linear_line

    line = " ".join(["V1 n1 0", *parts, sine]).strip()
    out = linear_line(line, ("v1",) if sine else ())
    kept = [p for p in parts if not p.startswith("ac")]
    assert out.split()[:3] == ["V1", "n1", "0"]
    rest = out.split(maxsplit=3)[3] if len(out.split()) > 3 else ""
    if sine:
        assert rest.startswith("ac ") and rest.count("ac ") == 1
        rest = rest.split(maxsplit=3)[3]   # ac, magnitude, phase
    assert rest.split() == " ".join([*kept, sine]).split()


def test_linear_start_is_checked_when_the_testbench_is_loaded(tmp_path):
    _netlist(tmp_path, "C1 out 0 1p")
    doc = {"name": "t", "netlist": "n.cir", "measures": {"v": {"fn": "harmonic_amplitude", "out": "out", "f0": "5G"}},
           "linear_start": {"f0": "5G", "periods": 4, "drive": "VX"}}
    (tmp_path / "tb.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="linear_start.*VX"):
        load_testbench(tmp_path / "tb.yaml")
    doc["linear_start"]["drive"] = "V1"
    (tmp_path / "tb.yaml").write_text(yaml.safe_dump(doc))
    assert load_testbench(tmp_path / "tb.yaml").job([]).linear_start.drives == ("V1",)


@pytest.mark.ngspice
def test_linear_start_settles_in_fewer_periods(tmp_path):
    """warm_tank (loaded Q ~ 6): started from the linear periodic state (operating point + small-signal response
    to the drive), 8 periods give the 20-period cold value to 1e-3, where a cold run of 8 periods is 1 % off;
    each linear-start sample costs two ngspice runs (the pre-run and the transient)."""
    from optiyield.sim.job import LinearStart

    job = dataclasses.replace(load_testbench(CIRCUITS / "warm_tank.yaml").job(["W"]), warm_start=None)
    rows = np.array([[20e-6], [26e-6]])
    short = dataclasses.replace(job.netlist, analyses=(".tran 2p 1.6n 0 2p",))
    with Engine(workers=2) as engine:
        cold = engine.run(job, rows)
        linear = engine.run(dataclasses.replace(job, linear_start=LinearStart(5e9, 8, ("VS",))), rows)
        brief = engine.run(dataclasses.replace(job, netlist=short), rows)
    assert (linear.status == "ok").all() and linear.runs == 2 * cold.runs
    np.testing.assert_allclose(linear.values["vout"], cold.values["vout"], rtol=1e-3)
    np.testing.assert_allclose(linear.values["pdc"], cold.values["pdc"], rtol=1e-3)
    assert (np.abs(brief.values["vout"] / cold.values["vout"] - 1) > 5e-3).all()
