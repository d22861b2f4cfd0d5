"""The `regions:` spec shorthand (optiyield/region_specs.py): expansion into measures and specs, its errors, and
a run that reports the constraints per device (run_summary.json, the HTML report)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, simulate_points

from optiyield.errors import SpecError
from optiyield.spec import spec_from_data

ROOT = Path(__file__).resolve().parents[1]
CIRCUITS = Path(__file__).parent / "circuits"


def _csva(**extra) -> dict:
    data = yaml.safe_load((ROOT / "specs" / "csva.yaml").read_text())
    data["testbench"] = str(ROOT / "circuits" / "csva" / "testbench.yaml")
    data.update(extra)
    return data


def _devices(regions: dict, **extra) -> dict:
    return {"name": "ops", "testbench": str(CIRCUITS / "op_devices.yaml"),
            "design": {"W": {"start": "2u", "min": "1u", "max": "4u"}},
            "specs": {"gain": {"min": 0}}, "regions": regions, **extra}


def test_expansion_names_bounds_and_defaults():
    spec = spec_from_data(_devices({"M1": "saturation", "X1.M3": {"region": "triode", "margin": "20m"},
                                    "M2": {"region": "cutoff", "margin": 0.1}, "Q1": "active",
                                    "M4": {"region": "saturation", "overdrive": None, "scale": "50m", "weight": 3}}))
    specs = spec.file.specs
    assert (specs["m1_sat"].min, specs["m1_vov"].min, specs["m1_sat"].scale) == (0.05, 0.0, 0.1)
    assert (specs["x1_m3_sat"].max, specs["x1_m3_vov"].min) == (-0.02, 0.0)
    assert specs["m2_vov"].max == -0.1 and "m2_sat" not in specs
    assert specs["q1_vcb"].min == 0.05
    assert "m4_vov" not in specs and (specs["m4_sat"].scale, specs["m4_sat"].weight) == (0.05, 3)
    measures = spec.testbench.measures
    assert measures["x1_m3_sat"].fn == "sat_margin" and measures["x1_m3_sat"].device == "X1.M3"
    assert measures["q1_vcb"].fn == "bjt_vcb" and measures["m2_vov"].fn == "overdrive"
    assert [r.device for r in spec.regions] == ["M1", "X1.M3", "M2", "Q1", "M4"]
    assert ("m1", "vdsat") in spec.testbench.probes and ("x1.m3", "vth") in spec.testbench.probes


def test_sweep_testbench_takes_the_worst_sweep_point():
    spec = spec_from_data(yaml.safe_load((ROOT / "specs" / "vga_10ghz.yaml").read_text())
                          | {"regions": {"M1": "saturation", "M2": "triode"}}, base=ROOT / "specs")
    measures = spec.testbench.measures
    assert measures["m1_sat"].reduce == "min" and measures["m1_vov"].reduce == "min"
    assert measures["m2_sat"].reduce == "max"  # an upper bound: the largest value over the sweep is the worst


@pytest.mark.parametrize(("extra", "where", "message"), [
    ({"regions": {"M1": "active"}}, "regions", "M1: 'active' is not a region of this device kind"),
    ({"regions": {"M1": "linear"}}, "regions.M1.region", "'saturation', 'triode', 'cutoff' or 'active'"),
    ({"regions": {"M9": "saturation"}}, "regions", "M9: no instance named 'M9' at the top level of netlist.cir"),
    ({"regions": {"M1\n.control": "saturation"}}, "regions", "expected a device instance name"),
    ({"regions": {"M1": {"region": "saturation", "margin": -1}}}, "regions.M1.margin", "greater than or equal"),
    ({"regions": {"M1": "saturation"}, "specs": {"m1_sat": {"min": 0.1}}}, "specs.m1_sat",
     "also made by `regions: {M1: …}`"),
])
def test_errors_name_the_field(extra, where, message):
    with pytest.raises(SpecError) as info:
        spec_from_data(_csva(**extra), base=ROOT / "specs")
    assert info.value.path == where and message in info.value.message, str(info.value)


def test_a_testbench_measure_of_the_same_name_must_be_the_same(tmp_path):
    testbench = yaml.safe_load((ROOT / "circuits" / "csva" / "testbench.yaml").read_text())
    testbench["netlist"] = str(ROOT / "circuits" / "csva" / "netlist.cir")
    testbench["measures"]["m1_sat"] = {"fn": "sat_margin", "device": "M1"}  # the same: used as it is
    spec = spec_from_data(_csva(testbench=testbench, regions={"M1": "saturation"}))
    assert spec.testbench.measures["m1_sat"].fn == "sat_margin"
    testbench["measures"]["m1_sat"] = {"fn": "device_op", "device": "M1", "quantity": "vds"}
    with pytest.raises(SpecError, match=r"regions: M1: the testbench already has a measure 'm1_sat'"):
        spec_from_data(_csva(testbench=testbench, regions={"M1": "saturation"}))


def test_regions_need_an_operating_point(tmp_path):
    testbench = {"name": "ac_only", "netlist": str(ROOT / "circuits" / "csva" / "netlist.cir"),
                 "analyses": [".ac dec 20 1k 100G"], "measures": {"gain_db": {"fn": "lf_gain_db", "out": "vout"}}}
    with pytest.raises(SpecError, match=r"regions: region constraints read the operating point: add `\.op`"):
        spec_from_data({"name": "x", "testbench": testbench, "specs": {"gain_db": {"min": 1}},
                        "regions": {"M1": "saturation"}})


@pytest.mark.ngspice
def test_region_specs_follow_the_device(tmp_path):
    """The expanded measures through ngspice: M1 of the CSVA saturated at the start, in triode at high Rd."""
    spec = spec_from_data(_csva(regions={"M1": "saturation"}), base=ROOT / "specs")
    values = simulate_points(spec, [{}, {"Vgate": 0.9, "Rd": 3e3}])
    assert values["m1_sat"][0] > 0.05 > 0 > values["m1_sat"][1]
    assert values["m1_vov"][0] > 0 and values["m1_vov"][1] > 0


@pytest.mark.ngspice
def test_run_reports_regions_per_device(tmp_path):
    """optiyield run with `regions:`: the constraint is a spec in the verification table, the run summary and
    the HTML report list it per device."""
    data = _csva(regions={"M1": "saturation"})
    data["run"]["steps"] = [{"nominal": "minimax", "max_iter": 3}, {"verify": {"samples": 100}}]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    text = run_cli("run", tmp_path / "spec.yaml", "--out", tmp_path / "out")
    assert "operating-point regions at the final design" in text
    assert re.search(r"│ M1 │ saturation │ 50mV │ m1_sat [0-9.]+mV, m1_vov [0-9.]+mV │ yes │", text)
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    (m1,) = summary["regions"]
    assert m1["device"] == "M1" and m1["met"] and m1["values"]["m1_sat"] > 0.05
    assert {"m1_sat", "m1_vov"} <= set(summary["verify"]["per_spec"])
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Operating-point regions" in page and "held in the Monte Carlo" in page


@pytest.mark.ngspice
def test_region_yields_experiment_smoke(tmp_path):
    """experiments/region_yields.py on the CSVA, tiny: the start yield scored without and with M1's region specs
    (the same samples: with ≤ without), and both runs verified."""
    from test_scripts import read_json, run_script

    out = tmp_path / "regions.json"
    text = run_script("experiments/region_yields.py", "--specs", "csva", "--samples", 20, "--verify", 40,
                      "--max-iter", 1, "--json", out, cwd=tmp_path)
    assert "Yield with and without the region specs" in text
    csva = read_json(out)["csva"]
    assert csva["regions"] == {"M1": "saturation"}
    assert csva["start"]["with"] <= csva["start"]["without"]
    for label in ("without", "with"):
        run = csva[label]
        assert run["verify_samples"] == 40 and 0 <= run["verified"] <= 1 and run["simulations"] > 0
        assert run["verified_with_regions"] <= run["verified"] or label == "with"
        assert set(run["region_failures"]) == {"M1"}
