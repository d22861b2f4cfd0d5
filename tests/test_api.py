"""The public Python API: every example of docs/python-api.md runs (in order, as one session), the notebook-style
example docs/examples/csva_run.py reproduces the CSVA run of docs/optimization.md, and bad arguments are the
CLI's errors as exceptions. Real ngspice throughout."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import optiyield as oy

pytestmark = pytest.mark.ngspice
DOC = ROOT / "docs" / "python-api.md"
EXAMPLE = ROOT / "docs" / "examples" / "csva_run.py"


def code_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder where specs/ and circuits/ are the repository's (examples write out/ here)."""
    for name in ("specs", "circuits"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    saved = list(sys.path)
    yield tmp_path
    sys.path[:] = saved


def test_python_api_doc_examples_run(workdir):
    pytest.importorskip("PySpice.Spice.Netlist", reason="the PySpice example needs the extra `pyspice`")
    pytest.importorskip("skrf", reason="the Touchstone example needs the extra `rf`")
    pytest.importorskip("dash", reason="the dashboard example needs the extra `dashboard`")
    blocks = code_blocks(DOC)
    assert len(blocks) >= 10
    namespace: dict = {}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{DOC.name} block {index + 1}", "exec"), namespace)  # noqa: S102 - our own docs
        except Exception as exc:
            raise AssertionError(f"docs/python-api.md, code block {index + 1} failed:\n{block}") from exc
    assert (workdir / "out" / "csva-quick" / "report.html").is_file()
    assert (workdir / "out" / "lna" / "lna_start.s2p").is_file()


def test_notebook_example_reproduces_the_csva_run(tmp_path):
    """docs/examples/csva_run.py: specs/csva.yaml's run (minimax, yield ℓ1 with IGAT, 2,000-sample verification)
    gives the figures of docs/optimization.md (IGAT row: 88.0 % [83.8, 91.2] on the 300 outcomes, 87.7 %
    verified)."""
    lines = [line for line in EXAMPLE.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 14, f"the example should stay about a dozen lines, it has {len(lines)}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPTIYIELD_OUT": str(tmp_path / "csva")}
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    run = oy.open_run(tmp_path / "csva")
    assert run.start_yield.passed == 0
    assert (run.final_yield.passed, run.final_yield.n) == (264, 300)          # 88.0 %
    assert round(run.verified_yield.value * 100, 1) == 87.7
    assert "88.0 % [83.8, 91.2]" in done.stdout and "HiGHS" not in done.stdout


def test_problem_views_and_html():
    problem = oy.load(ROOT / "specs" / "csva.yaml")
    assert list(problem.design.index) == ["VDD", "Vgate", "W", "Rd"]
    assert problem.specs.loc["power", "unit"] == "W"
    assert "<table" in problem._repr_html_() and "csva" in repr(problem)
    assert problem.measures == ("power", "gain_db", "bw", "ugf")


@pytest.mark.parametrize(("call", "option"), [
    (lambda p: p.monte_carlo(sampler="latin"), "sampler"),
    (lambda p: p.monte_carlo(samples=0), "samples"),
    (lambda p: p.monte_carlo(ci_width=2.0), "ci-width"),
    (lambda p: p.monte_carlo(workers=0), "workers"),
    (lambda p: p.monte_carlo(cluster="udp://x"), "cluster"),
    (lambda p: p.sensitivity(design_step=0), "design_step"),
    (lambda p: p.run("unused", resume=True, fresh=True), "resume"),
    (lambda p: oy.load(ROOT / "specs" / "csva.yaml", base="x"), "base"),
])
def test_bad_arguments_are_option_errors(call, option):
    problem = oy.load(ROOT / "specs" / "csva.yaml")
    with pytest.raises(oy.OptionError) as info:
        call(problem)
    assert info.value.option == option


def test_spec_errors_name_the_key(tmp_path):
    problem = oy.load(ROOT / "specs" / "csva.yaml")
    with pytest.raises(oy.SpecError, match=r"design\.X: not a design variable"):
        problem.at(X=1)
    with pytest.raises(oy.SpecError, match=r"run\.steps\[0\]\.nominal: unknown `nominal` method 'foo'"):
        problem.with_run(steps=[{"nominal": "foo"}])
    with pytest.raises(oy.OptionError, match="source: expected a spec file"):
        oy.load({"name": "x", "testbench": "nowhere.yaml", "specs": {}}.items())   # not a mapping
    with pytest.raises(oy.SpecError, match="testbench file 'nowhere.yaml' not found"):
        oy.load({"name": "x", "testbench": "nowhere.yaml", "specs": {"g": {"min": 1}}}, base=tmp_path)
    with pytest.raises(oy.RunError, match="no store"):
        problem.run(tmp_path / "out", resume=True)
    assert not (tmp_path / "out" / "run_info.json").exists()    # refused before anything was written


def test_a_dict_spec_runs_and_reports(tmp_path):
    """A spec given as a mapping (no file): the run, its report (the spec passed in) and open_run with it."""
    import yaml

    data = yaml.safe_load((ROOT / "specs" / "csva.yaml").read_text())
    data["run"] = {"seed": 2, "samples": 30, "steps": [{"nominal": "minimax", "max_iter": 2},
                                                        {"verify": {"samples": 50}}]}
    problem = oy.load(data, base=ROOT / "specs")
    steps = []
    run = problem.run(tmp_path / "out", on_step=steps.append, workers=1)
    assert [s.label for s in steps] == ["1. minimax (igat)", "2. verify (50 new)"]
    assert run.report_path is not None and run.report_error is None
    assert run.summary["spec_file"] is None
    with pytest.raises(oy.RunError, match="do not name their spec file"):
        oy.open_run(tmp_path / "out")
    assert oy.open_run(tmp_path / "out", problem).final_yield == run.final_yield
    assert "<table" in run._repr_html_() and "<table" in run.verify._repr_html_()


def test_import_optiyield_stays_light():
    """`import optiyield` loads no other module of the package and none of its heavy dependencies (the API's
    names are resolved on first use); measured with -X importtime: about 2 ms."""
    code = ("import sys, optiyield; print(sorted(m for m in sys.modules if m.startswith('optiyield')), "
            "[m for m in ('numpy', 'pandas', 'typing', 'pydantic') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split("\n")[0] == "['optiyield'] []", done.stdout
    assert oy.load.__module__ == "optiyield.api" and "load" in dir(oy)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        oy.nothing  # noqa: B018
