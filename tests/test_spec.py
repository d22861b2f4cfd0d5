"""Spec files: valid files load into frozen objects; every bad file gets one clear message."""

from pathlib import Path

import pydantic
import pytest
import yaml

from optiyield.errors import SpecError
from optiyield.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
TESTBENCH = ROOT / "circuits" / "csva" / "testbench.yaml"


def base_spec() -> dict:
    return {
        "name": "t",
        "testbench": str(TESTBENCH),
        "design": {"W": {"start": "5u", "min": "3u", "max": "10u"}, "Rd": {"start": "1k", "min": 500, "max": "3k"}},
        "variation": {
            "parameters": [
                {"param": "Rd", "dist": "normal", "sigma": "4%"},
                {"param": "dvth", "dist": "normal", "sigma": "15m"},
                {"param": "mu", "dist": "normal", "sigma": 0.03},
                {"param": "W", "dist": "uniform", "tol": "50n"},
            ],
            "correlations": [["dvth", "mu", -0.3]],
        },
        "specs": {"gain_db": {"min": 10}, "bw": {"min": "200M"}, "power": {"max": "950u", "weight": 2}},
        "run": {"seed": 3, "samples": 100},
    }


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def error_of(tmp_path: Path, data: dict | str) -> SpecError:
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(str(path))
    return info.value


def test_valid_spec_loads_with_units_and_is_frozen(tmp_path):
    spec = load_spec(write(tmp_path, base_spec()))
    assert spec.file.design["W"].start == pytest.approx(5e-6)
    assert spec.file.design["Rd"].max == pytest.approx(3e3)
    assert spec.file.specs["bw"].min == pytest.approx(200e6)
    assert spec.file.specs["power"].weight == 2
    assert spec.parameters == ("W", "Rd", "dvth", "mu")
    assert spec.nominal()["mu"] == 1.0 and spec.nominal()["dvth"] == 0.0
    draw = {d.name: d for d in spec.model.draws}
    assert draw["Rd"].relative and draw["Rd"].spread == pytest.approx(0.04)
    assert not draw["W"].relative and draw["W"].spread == pytest.approx(50e-9)
    assert spec.model.dims == 4
    with pytest.raises(pydantic.ValidationError):
        spec.file.design["W"].start = 1.0  # type: ignore[misc]


def test_shipped_spec_loads():
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    assert spec.testbench.copies
    assert set(spec.file.specs) <= set(spec.testbench.measure_names)


def test_variation_as_plain_list(tmp_path):
    data = base_spec()
    data["variation"] = [{"param": "Rd", "dist": "uniform", "tol": "5%"}]
    assert load_spec(write(tmp_path, data)).model.dims == 1


def test_mismatch_entry_has_one_dimension_per_parameter(tmp_path):
    data = base_spec()
    data["variation"] = [{"params": ["dvth", "mu"], "dist": "normal", "sigma": "1m", "mode": "mismatch"}]
    assert load_spec(write(tmp_path, data)).model.dims == 2


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda d: d.update(colour="red"), "colour", "unknown key"),
        (lambda d: d["design"]["W"].update(step="1u"), "design.W.step", "unknown key"),
        (lambda d: d["specs"].update(gain={"min": 3}), "specs.gain", "unknown measure 'gain'"),
        (lambda d: d["specs"]["bw"].update(max="100M"), "specs.bw", "min 200M is greater than max 100M"),
        (lambda d: d["design"]["W"].update(min="20u"), "design.W", "min 20u is greater than max 10u"),
        (lambda d: d["design"]["W"].update(start="50u"), "design.W.start", "50u is outside [3u, 10u]"),
        (lambda d: d["design"].update(Lx={"start": 1, "min": 0, "max": 2}), "design.Lx", "no `.param Lx`"),
        (lambda d: d["design"]["W"].update(start="5x"), "design.W.start", "expected a number such as 350p"),
        (lambda d: d["specs"].update(power={}), "specs.power", "give `min`, `max` or both"),
        (lambda d: d.pop("specs"), "specs", "required key is missing"),
        (lambda d: d["run"].update(samples=0), "run.samples", "greater than or equal to 1"),
        (lambda d: d["run"].update(sampler="lhs"), "run.sampler", "'mc' or 'sobol'"),
        (lambda d: d["variation"]["parameters"][0].update(dist="lognormal"), "variation.parameters[0].dist",
         "'normal' or 'uniform'"),
        (lambda d: d["variation"]["parameters"][0].update(tol="5%"), "variation.parameters[0]",
         "a normal variation takes `sigma`"),
        (lambda d: d["variation"]["parameters"][1].update(param="dvt"), "variation.parameters[1].param",
         "no `.param dvt`"),
        (lambda d: d["variation"].update(correlations=[["dvth", "nope", 0.5]]), "variation.correlations",
         "nope"),
        (lambda d: d.update(testbench="missing.yaml"), "testbench", "not found"),
    ],
)
def test_error_messages(tmp_path, mutate, path, message):
    data = base_spec()
    mutate(data)
    error = error_of(tmp_path, data)
    assert error.path == path, str(error)
    assert message in error.message, str(error)


def test_correlation_matrix_not_positive_definite(tmp_path):
    data = base_spec()
    data["variation"] = {
        "parameters": [
            {"param": "dvth", "dist": "normal", "sigma": "10m"},
            {"param": "mu", "dist": "normal", "sigma": "2%"},
            {"param": "Rd", "dist": "normal", "sigma": "2%"},
        ],
        "correlations": [["dvth", "mu", 0.9], ["dvth", "Rd", 0.9], ["mu", "Rd", -0.9]],
    }
    error = error_of(tmp_path, data)
    assert error.path == "variation.correlations"
    assert "not positive definite" in error.message


def test_yaml_syntax_error_names_line(tmp_path):
    error = error_of(tmp_path, "name: t\ndesign: {W: [1, 2\n")
    assert "invalid YAML" in error.message and "line" in error.message


def test_top_level_must_be_mapping(tmp_path):
    assert "expected a mapping" in error_of(tmp_path, "- 1\n- 2\n").message


def test_missing_file():
    with pytest.raises(SpecError, match="file not found"):
        load_spec("/nonexistent/spec.yaml")


def test_testbench_errors_name_the_testbench_file(tmp_path):
    (tmp_path / "tb.yaml").write_text(
        f"name: x\nnetlist: {ROOT / 'circuits/csva/netlist.cir'}\n"
        "measures:\n  p: {fn: dc_power, supply: VXX}\n"
    )
    data = base_spec()
    data["testbench"] = "tb.yaml"
    data["specs"] = {"p": {"max": 1}}
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.file == str(tmp_path / "tb.yaml")
    assert info.value.path == "measures.p"
    assert "no voltage source named 'VXX'" in info.value.message


@pytest.mark.parametrize(
    ("measure", "message"),
    [
        ({"fn": "nosuch", "out": "vout"}, "unknown measure function 'nosuch'"),
        ({"fn": "lf_gain_db"}, "lf_gain_db needs `out`"),
        ({"fn": "dc_power", "supply": "VDD", "out": "x"}, "dc_power does not take `out`"),
        ({"fn": "gain_db_at", "out": "vout"}, "needs `f`"),
        ({"fn": "lf_gain_db", "meas": "g", "out": "vout"}, "exactly one of `fn`"),
    ],
)
def test_measure_definition_errors(tmp_path, measure, message):
    data = base_spec()
    data["testbench"] = {"name": "x", "netlist": str(ROOT / "circuits/csva/netlist.cir"), "measures": {"m": measure}}
    data["specs"] = {"m": {"min": 0}}
    error = error_of(tmp_path, data)
    assert error.path.startswith("testbench.measures.m"), str(error)
    assert message in error.message, str(error)
