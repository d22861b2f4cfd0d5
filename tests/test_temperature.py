"""Several temperatures in one ngspice process (sim/ngspice/temperature.py) against separate ``.temp`` decks."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from optiyield.corners import TemperatureExtract, with_temperature
from optiyield.montecarlo import sample_matrix
from optiyield.sim.engine import FAILED, OK, Engine
from optiyield.sim.ngspice.temperature import TEMPERATURE
from optiyield.spec import load_spec
from optiyield.stats.variation import OutcomeSet
from optiyield.testbench import load_testbench

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]
TEMPS = (-40.0, 27.0, 125.0)


@pytest.fixture(scope="module")
def engine():
    with Engine(workers=2) as engine:
        yield engine


def temperature_job(testbench, names, batch_size=None):
    job = testbench.job(names)
    return dataclasses.replace(job, names=(*names, TEMPERATURE), temperature=True,
                               batch_size=batch_size or job.batch_size * len(TEMPS),
                               extract=TemperatureExtract(testbench))


def test_temperatures_in_one_process_equal_separate_decks(engine):
    """6 CSVA samples at -40/27/125 °C: one deck of 6 copies run at three temperatures gives exactly (bit for
    bit) the numbers of three decks with `.temp T`, and temperature moves every measure."""
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    rows = sample_matrix(spec, OutcomeSet.draw(spec.model, 6, "mc", 3))
    job = temperature_job(spec.testbench, spec.parameters, batch_size=18)
    together = engine.run(job, np.array([[*row, t] for row in rows for t in TEMPS]))
    assert together.runs <= 2 and (together.status == OK).all()
    for index, temp in enumerate(TEMPS):
        single = with_temperature(spec.testbench, temp)
        alone = engine.run(dataclasses.replace(single.job(spec.parameters), batch_size=3), rows)
        for name in job.measures:
            np.testing.assert_array_equal(together.values[name][index::3], alone.values[name], err_msg=name)
    cold, hot = together.values["power"][0::3], together.values["power"][2::3]
    assert np.all(cold > 1.5 * hot)  # mobility falls with temperature: the CSVA draws far less at 125 °C


def test_a_failing_row_fails_alone_at_every_temperature(engine):
    """A row with a negative width makes BSIM4 stop; it is isolated (per row and temperature) while the other
    rows keep their values."""
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    rows = sample_matrix(spec, OutcomeSet.draw(spec.model, 4, "mc", 5))
    rows[2, spec.parameters.index("W")] = -1e-6
    job = temperature_job(spec.testbench, spec.parameters, batch_size=12)
    result = engine.run(job, np.array([[*row, t] for row in rows for t in TEMPS]))
    status = result.status.reshape(4, 3)
    assert (status[2] == FAILED).all() and (status[[0, 1, 3]] == OK).all()
    reference = engine.run(with_temperature(spec.testbench, 125.0).job(spec.parameters), rows[[0, 1, 3]])
    np.testing.assert_allclose(result.values["gain_db"].reshape(4, 3)[[0, 1, 3], 2], reference.values["gain_db"],
                               rtol=1e-9)


RC = """* RC low-pass with a temperature-dependent resistor (tc1), a .meas and a swept capacitor
.param R=1k C=1n
V1 in 0 dc 0 ac 1
R1 in out {R} tc1=0.004
C1 out 0 {C}
.temp 27
.ac dec 50 1k 10meg
.meas ac f3db when vdb(out)=-3.0103
.end
"""


def test_meas_and_sweep_per_temperature(tmp_path, engine):
    """`.meas` results and sweep copies are read per temperature: the -3 dB corner of an RC with a tc1 = 0.004/K
    resistor is 1/(2πR(T)C), R(T) = R(1 + 0.004 (T − 27)), at each temperature and swept capacitance."""
    (tmp_path / "rc.cir").write_text(RC)
    (tmp_path / "tb.yaml").write_text("name: rc\nnetlist: rc.cir\nsweep: {param: C, values: [1n, 2n]}\n"
                                      "measures:\n  f3db: {meas: f3db, reduce: max}\n  f3db_2n: {meas: f3db, at: 2n}\n")
    testbench = load_testbench(tmp_path / "tb.yaml")
    job = temperature_job(testbench, ("R",), batch_size=9)
    rows = np.array([[r, t] for r in (1e3, 2e3) for t in TEMPS])
    result = engine.run(job, rows)
    assert (result.status == OK).all(), result.reason
    for k, (r, t) in enumerate(rows):
        resistance = r * (1 + 0.004 * (t - 27))
        assert result.values["f3db"][k] == pytest.approx(1 / (2 * np.pi * resistance * 1e-9), rel=2e-3)
        assert result.values["f3db_2n"][k] == pytest.approx(1 / (2 * np.pi * resistance * 2e-9), rel=2e-3)


def test_single_sample_decks_take_the_temperature_too(tmp_path, engine):
    """A testbench that runs one sample per deck (replicate: false) gets `.temp T` in its own deck."""
    (tmp_path / "rc.cir").write_text(RC)
    (tmp_path / "tb.yaml").write_text("name: rc\nnetlist: rc.cir\nreplicate: false\nmeasures:\n  f3db: {meas: f3db}\n")
    testbench = load_testbench(tmp_path / "tb.yaml")
    job = temperature_job(testbench, ("R",))
    assert not job.copies
    rows = np.array([[1e3, t] for t in TEMPS])
    result = engine.run(job, rows)
    assert result.runs == 3 and (result.status == OK).all()
    expected = [1 / (2 * np.pi * 1e3 * (1 + 0.004 * (t - 27)) * 1e-9) for t in TEMPS]
    np.testing.assert_allclose(result.values["f3db"], expected, rtol=2e-3)


def test_the_temperature_flag_is_part_of_the_fingerprint():
    """A temperature job keys the store differently; a plain job's fingerprint is unchanged by the new field."""
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    job = spec.testbench.job(spec.parameters)
    assert dataclasses.replace(job, temperature=False).fingerprint == job.fingerprint
    assert temperature_job(spec.testbench, spec.parameters).fingerprint != job.fingerprint


def test_a_batch_at_one_temperature_is_an_ordinary_deck():
    """Rows at one temperature render the plain deck with `.temp T` (ngspice's -r output); several temperatures
    render the control loop."""
    from optiyield.sim.ngspice import NgspiceSimulator

    spec = load_spec(ROOT / "specs" / "csva.yaml")
    job = temperature_job(spec.testbench, spec.parameters)
    row = [spec.nominal()[p] for p in spec.parameters]
    simulator = NgspiceSimulator()
    try:
        one = simulator.render(job, np.array([[*row, 125.0], [*row, 125.0]])).text
        two = simulator.render(job, np.array([[*row, 125.0], [*row, -40.0]])).text
    finally:
        simulator.close()
    assert ".control" not in one and ".temp 125" in one and one.count("X1 ") == 0  # one distinct row: one copy
    assert "option temp=125" in two and "option temp=-40" in two and two.count("X1 ") == 0
