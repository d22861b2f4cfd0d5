"""Worst-case distances as statistical corners, through ngspice: `optiyield wcd` on the CSVA 4-sigma spec, each
exported corner simulated by plain ngspice (no optiyield in between) lands on its spec bound; the ngspice
alterparam block and the high-sigma `optiyield yield --method is` against the brute-force reference."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optiyield.cli import app
from optiyield.reliability.corners import Corner, alter_text, column_names, control_text, param_text, slug
from optiyield.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "csva_4sigma.yaml"
NETLIST = ROOT / "circuits" / "csva" / "netlist.cir"
REFERENCE = json.loads((ROOT / "experiments" / "reference" / "high_sigma_brute_force.json").read_text())


def _ngspice(deck: Path, cwd: Path) -> dict[str, float]:
    """Run ngspice in batch mode on ``deck``; the values of its ``print`` lines (name → value)."""
    proc = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) = (\S+)$", proc.stdout, re.MULTILINE)}


def _deck(tmp: Path, name: str, extra: str) -> Path:
    """The shipped CSVA netlist (model include made absolute), ``extra`` inserted before .end."""
    text = NETLIST.read_text().replace("../models/ptm45lp.lib", str(ROOT / "circuits" / "models" / "ptm45lp.lib"))
    assert text.rstrip().endswith(".end")
    path = tmp / name
    path.write_text(text.rstrip()[: -len(".end")] + extra + "\n.end\n")
    return path


PRINTS = ".control\nrun\nsetplot op1\nprint -vdd#branch*v(vdd)\nsetplot ac1\nprint vdb(vout)[0]\nquit\n.endc\n"


@pytest.mark.ngspice
def test_wcd_corners_run_in_ngspice_at_their_bounds(tmp_path):
    out = tmp_path / "wcd"
    result = CliRunner().invoke(app, ["wcd", str(SPEC), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "worst-case distances at the start design" in result.output and "engine calls" in result.output
    data = json.loads((out / "wcd.json").read_text())
    corners = {c["name"]: c for c in data["corners"]}
    assert set(corners) == {"gain_db_min", "gain_db_max", "power_max"}
    # exploration finds the triode region of the lower gain bound (the search from the nominal ends near 8.8)
    assert 3.8 < corners["gain_db_min"]["beta"] < 4.3
    assert corners["gain_db_min"]["u"]["dvth"] < -3  # a low threshold: M1 leaves saturation
    assert 3.7 < corners["gain_db_max"]["beta"] < 4.1 and 4.0 < corners["power_max"]["beta"] < 4.5
    assert data["simulations"] < 1000
    csv = (out / "wcd.csv").read_text().splitlines()
    assert len(csv) == 4 and "beta" in csv[0] and "dvth" in csv[0]
    for name, corner in corners.items():
        include = out / "corners" / f"{name}.param"
        text = include.read_text()
        lines = [line for line in text.splitlines() if line.startswith(".param ")]
        assert text.isascii() and len(lines) == 6  # VDD, Vgate, W, Rd, dvth, mu
        values = _ngspice(_deck(tmp_path, f"{name}.cir", f".include {include}\n{PRINTS}"), tmp_path)
        measured = values["vdb(vout)[0]"] if corner["measure"] == "gain_db" else values["-vdd#branch*v(vdd)"]
        # plain ngspice reproduces the batched engine's number at the corner, and that number is the bound
        assert measured == pytest.approx(corner["measure_at_corner"], rel=1e-6)
        slack = 2e-3 if corner["status"] == "converged" else 1e-2
        assert abs(measured - corner["limit"]) <= slack * abs(corner["limit"]), (name, measured, corner["status"])
    # the ngspice alterparam block: each corner re-parsed and run; its last analysis (the .op) written
    control = (out / "corners" / "corners_ngspice.control").read_text()
    _ngspice(_deck(tmp_path, "alter.cir", control), tmp_path)
    from optiyield.sim.ngspice.rawfile import read_raw

    op = read_raw(tmp_path / "power_max.raw")[0]
    power = float(-(op["i(vdd)"] if "i(vdd)" in op else op["vdd#branch"])[0] * op["v(vdd)"][0])
    assert power == pytest.approx(corners["power_max"]["measure_at_corner"], rel=1e-6)
    alter = (out / "corners" / "corners.alter").read_text()
    assert alter.count(".alter ") == 3 and ".alter power_max beta=" in alter


def test_corner_texts_without_simulation():
    spec = load_spec(SPEC)
    assert column_names(spec.model) == ["Rd", "W", "VDD", "dvth", "mu"]
    assert slug("gain_db ≥ 7") == "gain_db_min" and slug("power ≤ 0.001") == "power_max"
    corner = Corner(label="gain_db ≥ 7", measure="gain_db", bound="min", limit=7.0, beta=4.0, status="converged",
                    iterations=5, u={"dvth": -4.0}, values={"dvth": -0.06, "mu": 1.0}, nominal={"dvth": 0.0},
                    measure_value=7.0)
    assert Corner.from_dict(json.loads(json.dumps(corner.to_dict()))) == corner
    text = param_text(corner, "csva")
    assert text.isascii() and ".param dvth=-0.06\n" in text and "gain_db >= 7" in text
    empty = Corner(label="bw ≥ 1", measure="bw", bound="min", limit=1.0, beta=float("inf"), status="unreachable",
                   iterations=3, u={}, values={}, nominal={}, measure_value=float("nan"))
    assert not empty.has_point and empty.to_dict()["beta"] == "inf"
    assert alter_text([corner, empty]).count(".alter") == 1
    assert control_text([corner, empty]).count("reset") == 1


@pytest.mark.ngspice
def test_yield_method_is_against_the_brute_force(tmp_path):
    result = CliRunner().invoke(app, ["yield", str(SPEC), "--method", "is", "--budget", "1000", "--out",
                                      str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "failure probability by form+is" in result.output and "importance samples" in result.output
    data = json.loads((tmp_path / "high_sigma.json").read_text())
    assert data["simulations"] <= 1000 and data["method"] == "form+is"
    # measured with run.seed = 1: 3.65e-5 against the 1e7-sample brute force 3.77e-5 [3.40, 4.17]e-5
    assert data["low"] <= REFERENCE["probability"] <= data["high"]
    assert abs(data["probability"] / REFERENCE["probability"] - 1) < 0.2
    assert data["sigma"] == pytest.approx(REFERENCE["sigma"], abs=0.1)
    assert set(data["details"]["per_bound"]) == set(REFERENCE["per_bound"])
    bad = CliRunner().invoke(app, ["yield", str(SPEC), "--method", "sorm", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--method: expected one of mc, is, subset, ce, nais" in bad.output
