"""The command line end to end, through ngspice, on the shipped CSVA spec."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from optiyield.cli import app

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "csva.yaml"


@pytest.mark.ngspice
def test_yield_end_to_end(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["yield", str(SPEC), "--samples", "300", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for text in ("gain_db", "bw", "power", "overall", "failed simulations: 0", "samples/s"):
        assert text in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 300 and summary["seed"] == 4
    assert 0.0 <= summary["yield"]["low"] <= summary["yield"]["value"] <= summary["yield"]["high"] <= 1.0
    assert set(summary["per_spec"]) == {"gain_db", "bw", "power"}
    table = pd.read_parquet(out / "samples.parquet")
    assert len(table) == 300 and (table["status"] == "ok").all()
    assert pd.read_csv(out / "samples.csv").shape == table.shape
    limits = yaml.safe_load(SPEC.read_text())["specs"]
    assert limits == {"gain_db": {"min": 11}, "bw": {"min": "230M"}, "power": {"max": "850u"}}
    passed = ((table.gain_db >= 11) & (table.bw >= 230e6) & (table.power <= 850e-6)).sum()
    assert summary["yield"]["passed"] == passed
    for name in ("gain_db", "bw", "power"):
        assert summary["per_spec"][name]["passed"] == {"gain_db": (table.gain_db >= 11).sum(),
                                                        "bw": (table.bw >= 230e6).sum(),
                                                        "power": (table.power <= 850e-6).sum()}[name]
    for name in ("gain_db", "bw", "power"):
        png = out / f"hist_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.ngspice
def test_same_seed_same_yield(tmp_path):
    runs = []
    for index in range(2):
        out = tmp_path / f"o{index}"
        result = CliRunner().invoke(app, ["yield", str(SPEC), "-n", "120", "--seed", "9", "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs.append(json.loads((out / "summary.json").read_text())["yield"])
    assert runs[0] == runs[1]


@pytest.mark.ngspice
def test_sequential_stopping(tmp_path):
    result = CliRunner().invoke(app, ["yield", str(SPEC), "-n", "4000", "--ci-width", "0.2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["samples"] < 4000
    assert summary["yield"]["high"] - summary["yield"]["low"] < 0.2


def test_validate_ok():
    result = CliRunner().invoke(app, ["validate", str(SPEC)])
    assert result.exit_code == 0 and "ok" in result.output


def test_bad_spec_exits_2_with_one_message_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("{start: 5u,   min: 3u,  max: 10u}", "{start: 50u, min: 3u, max: 10u}")
                   .replace("../circuits", str(ROOT / "circuits")))
    for command in ("validate", "yield"):
        proc = subprocess.run([sys.executable, "-m", "optiyield", command, str(bad)], capture_output=True, text=True)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr + proc.stdout
        assert f"{bad}: design.W.start: 50u is outside [3u, 10u]" in " ".join(proc.stderr.split())


def test_help_has_examples():
    for command in ([], ["yield"], ["validate"]):
        result = CliRunner().invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.ngspice
def test_failed_simulations_count_against_yield_and_are_listed(tmp_path):
    spec = ROOT / "tests" / "circuits" / "probes_spec.yaml"
    result = CliRunner().invoke(app, ["yield", str(spec), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    table = pd.read_csv(tmp_path / "samples.csv")
    failed = table["status"] == "failed"
    assert failed.sum() == summary["failed_simulations"] > 0
    assert (table.loc[failed, "mu"] < 0).all() and (table.loc[~failed, "mu"] > 0).all()
    assert all("u0" in reason for reason in summary["failure_reasons"])
    in_spec = (~failed) & (table["vd"] >= -1050) & (table["vd"] <= -950)
    assert summary["yield"]["passed"] == in_spec.sum()
    assert summary["yield"]["n"] == 40
    assert f"failed simulations: {failed.sum()}" in result.output and "u0" in result.output
