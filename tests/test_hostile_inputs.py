"""Spec and testbench files are data (issue 15, docs/security.md): whatever they hold, `optiyield` never
runs a command, never writes outside `--out`, never loses finished work to a late error, and answers bad
input with one clear message (exit 2), never a traceback. Each case here failed before the fix."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from optiyield import safety
from optiyield.cli import app
from optiyield.errors import MAX_FILE_BYTES
from optiyield.outdir import FolderLock, OutputError, prepare

ROOT = Path(__file__).resolve().parents[1]
CSVA_TB = ROOT / "circuits" / "csva" / "testbench.yaml"

SPEC = """name: {name}
testbench: {testbench}
design:
  W: {{start: 5u, min: 3u, max: 10u}}
variation:
  - {{param: Rd, dist: normal, sigma: {sigma}}}
specs:
  gain_db: {{min: {gain_min}}}
run:
  samples: {samples}
  steps:
    - {{verify: {{samples: 20}}}}
"""


def _spec(tmp_path: Path, testbench: str | None = None, **fields: object) -> Path:
    values = {"name": "csva", "testbench": str(CSVA_TB), "sigma": "4%", "gain_min": 11, "samples": 20, **fields}
    if testbench is not None:
        values["testbench"] = testbench
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(**values))
    return path


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    text = " ".join(result.output.split())
    assert "Traceback" not in text
    return result.exit_code, text


def _csva_testbench(tmp_path: Path, **extra: str) -> Path:
    """A copy of the CSVA testbench with extra (raw YAML) fields."""
    text = CSVA_TB.read_text().replace("netlist: netlist.cir", f"netlist: {CSVA_TB.parent / 'netlist.cir'}")
    text = "\n".join(line for line in text.splitlines() if line.split(":")[0] not in extra) + "\n"
    text += "".join(f"{key}: {value}\n" for key, value in extra.items())
    path = tmp_path / "tb.yaml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- no code runs, nothing written outside


@pytest.mark.parametrize("field, value, message", [
    ("options", '"reltol=1e-3\\n.control\\nshell touch PWNED\\n.endc"', "`options` must be one line"),
    ("analyses", '[".op\\n.control\\nshell touch PWNED\\n.endc"]', "expected one analysis line"),
    ("analyses", '["shell touch PWNED"]', "expected one analysis line"),
    ("models", '["x\\".lib\\nshell"]', "a model path must be one line without quotes"),
    ("transistors", '["M1[vds]\\n.control"]', "expected a device instance name"),
])
def test_no_text_of_a_testbench_can_start_a_control_block(tmp_path, field, value, message):
    tb = _csva_testbench(tmp_path, **{field: value})
    code, text = _cli("validate", _spec(tmp_path, str(tb)))
    assert code == 2 and f"{field}" in text and message in text, text
    assert not (tmp_path / "PWNED").exists()


def test_an_inline_testbench_in_a_spec_is_checked_the_same_way(tmp_path):
    inline = ("{name: csva, netlist: " + str(CSVA_TB.parent / "netlist.cir") + ", options: "
              "\"a\\n.control\\nshell touch PWNED\\n.endc\", measures: {gain_db: {fn: lf_gain_db, out: vout}}}")
    code, text = _cli("validate", _spec(tmp_path, inline))
    assert code == 2 and "testbench.options" in text and "must be one line" in text


@pytest.mark.parametrize("name", ["../../x", "/tmp/evil", "a/b", ".hidden", "..", "x" * 5000, "a b"])
def test_a_spec_name_cannot_leave_the_output_folder(tmp_path, name):
    code, text = _cli("validate", _spec(tmp_path, name=json.dumps(name)))
    assert code == 2 and "name:" in text and "is not a usable name" in text and len(text) < 600


@given(st.text(max_size=120))
def test_accepted_names_are_plain_file_names(text):
    try:
        safety.file_name(text)
    except ValueError:
        return
    assert "/" not in text and "\x00" not in text and not text.startswith(".") and len(text) <= 100


# ------------------------------------------------------------------ one clear error, never a traceback


@pytest.mark.parametrize("fields, where", [
    ({"gain_min": "1e999"}, "specs.gain_db.min: expected a finite number"),
    ({"sigma": "1e999"}, "variation"),
    ({"samples": 1_000_000_000_000}, "run.samples: Input should be less than or equal to 10000000"),
])
def test_absurd_numbers_are_refused_when_loading(tmp_path, fields, where):
    code, text = _cli("validate", _spec(tmp_path, **fields))
    assert code == 2 and where in text, text


def test_absurd_sample_counts_on_the_command_line_are_refused(tmp_path):
    code, text = _cli("yield", _spec(tmp_path), "-n", "1000000000000", "--out", tmp_path / "o")
    assert code == 2 and "--samples" in text


def test_binary_latin1_duplicate_keys_bombs_and_huge_files(tmp_path):
    spec = _spec(tmp_path)
    cases = {
        "binary.yaml": (b"\x00\x01\x02name: x\n", "not a text file"),
        "latin1.yaml": (spec.read_text().replace("name: csva", "name: csva\ndescription: 5 \xb5A").encode("latin-1"),
                        "ok"),
        "dup.yaml": (spec.read_text().replace("specs:", "specs:\n  gain_db: {min: 3}").encode(),
                     "duplicate key 'gain_db'"),
        "big.yaml": (b"# " + b"x" * (MAX_FILE_BYTES + 10) + b"\nname: x\n", "too large"),
        "bomb.yaml": (("a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
                       + "name: x\n").encode(), "expands to more than"),
    }
    for file, (data, expected) in cases.items():
        (tmp_path / file).write_bytes(data)
        started = time.perf_counter()
        code, text = _cli("validate", tmp_path / file)
        assert time.perf_counter() - started < 10 and len(text) < 1000, file
        if expected == "ok":
            assert code == 0, text
        else:
            assert code == 2 and expected in text, (file, text)


@pytest.mark.parametrize("kind", ["file", "proc"])
def test_an_unusable_output_folder_fails_before_any_simulation(tmp_path, kind):
    target = tmp_path / "a-file" if kind == "file" else Path("/proc/optiyield-out")
    if kind == "file":
        target.write_text("not a folder")
    started = time.perf_counter()
    for command in ("yield", "run"):
        code, text = _cli(command, _spec(tmp_path), "--out", target)
        assert code == 2 and str(target) in text, text
    assert time.perf_counter() - started < 5  # nothing was simulated first
    with pytest.raises(OutputError, match="is a file" if kind == "file" else "cannot write to"):
        prepare(target)


def test_a_measure_on_a_missing_node_stops_after_the_first_batch(tmp_path):
    tb = CSVA_TB.read_text().replace("netlist: netlist.cir", f"netlist: {CSVA_TB.parent / 'netlist.cir'}")
    tb = tb.replace("gain_db: {fn: lf_gain_db, out: vout, in: vin}", "gain_db: {fn: lf_gain_db, out: nowhere}")
    (tmp_path / "tb.yaml").write_text(tb)
    code, text = _cli("yield", _spec(tmp_path, str(tmp_path / "tb.yaml")), "-n", "4000", "--out", tmp_path / "o")
    assert code == 2 and "nowhere" in text and "does every node" in text
    assert not (tmp_path / "o" / "samples.csv").exists()


@pytest.mark.ngspice
def test_a_corrupt_store_and_another_problem_s_store_are_clear_errors(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "store.sqlite").write_bytes(b"this is not sqlite" * 100)
    code, text = _cli("run", _spec(tmp_path), "--out", out, "--resume")
    assert code == 2 and "is not a readable optiyield store" in text and "--fresh" in text
    (out / "store.sqlite").unlink()
    with sqlite3.connect(out / "store.sqlite") as db:  # a store of another parameter set
        db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                         "INSERT INTO meta VALUES ('fingerprint', 'x'), ('parameters', '[\"other\"]');")
    code, text = _cli("run", _spec(tmp_path), "--out", out, "--resume")
    assert code == 2 and "different testbench or parameter set" in text


def test_an_output_folder_is_used_by_one_run_at_a_time(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom optiyield.outdir import FolderLock\n"
                               f"with FolderLock({str(tmp_path)!r}):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"in use by another optiyield run \\(process {holder.pid}\\)"):
            FolderLock(tmp_path).__enter__()
        code, text = _cli("run", _spec(tmp_path), "--out", tmp_path, "--fresh")
        assert code == 2 and "in use by another optiyield run" in text
    finally:
        holder.kill()
        holder.wait()
    with FolderLock(tmp_path):  # free again once the holder is gone, however it ended
        pass
