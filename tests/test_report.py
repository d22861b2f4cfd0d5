"""The HTML report end to end: real runs through ngspice, the page opened in a real headless Chromium.

Chromium and its driver come from Debian (`make setup` installs them: apt packages chromium and
chromium-driver); selenium drives them through /usr/bin/chromedriver, so nothing is downloaded. A
missing browser fails these tests with a message saying how to install it, it does not skip them.
"""

import json
import re
from pathlib import Path

import pytest
from conftest import small_csva_spec
from typer.testing import CliRunner

from optiyield.cli import app
from optiyield.report.figures import passing
from optiyield.report.html import SECTIONS, load_folder, reason_kind

pytestmark = pytest.mark.ngspice
ROOT = Path(__file__).resolve().parents[1]


def open_page(driver, path: Path) -> dict:
    """Load a report and return what the browser saw: headings, images, network fetches."""
    driver.get(path.resolve().as_uri())
    return driver.execute_script("""
        return {
          ready: document.readyState,
          headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
          images: Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0,
                                                          width: i.naturalWidth, alt: i.alt})),
          fetched: performance.getEntriesByType('resource').map(r => r.name),
          title: document.title,
        };""")


def static_checks(text: str) -> None:
    """Every section heading is there, and nothing refers outside the file."""
    for _key, title in SECTIONS:
        assert title in text, title
    assert 'src="http' not in text and "<link" not in text and "<script" not in text
    assert not re.search(r"""(src|href)=["'](?!data:image/png;base64,|#)""", text)
    assert "http://" not in text and "https://" not in text


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A real `optiyield run` folder of the small CSVA spec (the run writes report.html itself)."""
    folder = tmp_path_factory.mktemp("report")
    spec = small_csva_spec(folder)
    out = folder / "out"
    result = CliRunner().invoke(app, ["run", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and (out / "report.html").is_file()
    return spec, out


def test_run_report_shows_every_section_and_every_image_loads(run_folder, browser):
    spec, out = run_folder
    text = (out / "report.html").read_text()
    static_checks(text)
    summary = json.loads((out / "summary.json").read_text())
    run = json.loads((out / "run_summary.json").read_text())
    assert run["spec_file"] == str(spec.resolve())
    assert f"verified yield: <strong>{summary['yield']['value'] * 100:.1f} %</strong>" in text
    assert "orange outline: the start design over the optimization outcomes" in text
    assert "run `optiyield sensitivity" in text
    page = open_page(browser, out / "report.html")
    assert page["ready"] == "complete" and page["title"].startswith("csva_small")
    assert page["headings"] == [f"{n}. {title}" for n, (_key, title) in enumerate(SECTIONS, start=2)]
    # 3 histograms, the yield trace, the objective traces, the scatter; no sensitivity.json yet
    assert len(page["images"]) == 6, page["images"]
    assert all(image["ok"] for image in page["images"]), page["images"]
    assert page["fetched"] == []


def test_before_histograms_are_the_runs_own_start_responses(run_folder):
    """The "before" sample is rebuilt from the store exactly: its pass count is the run's start yield."""
    _spec, out = run_folder
    data = load_folder(out)
    run = json.loads((out / "run_summary.json").read_text())
    assert data.before is not None and data.before_note == "" and data.outcomes == (60, "sobol", 1)
    ok = None
    for name, bound in data.spec.file.specs.items():
        values = data.before[name]
        assert len(values) == 60
        ok = passing(values, bound) if ok is None else ok & passing(values, bound)
    assert int(ok.sum()) == run["start_yield"]["passed"]
    assert [r for r in data.history if r.get("event") == "done"][-1]["step"] == run["steps"][-1]["label"]


def test_report_command_adds_sensitivity(run_folder, browser):
    spec, out = run_folder
    result = CliRunner().invoke(app, ["sensitivity", str(spec), "--at", "final", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.html").read_text()
    static_checks(text)
    assert "computed at the final design" in text and "run `optiyield sensitivity" not in text
    page = open_page(browser, out / "report.html")
    assert len(page["images"]) == 7 and all(image["ok"] for image in page["images"]), page["images"]
    assert page["fetched"] == []


def test_yield_folder_with_failed_simulations(tmp_path, browser):
    """`optiyield yield` on the failure probe: no optimization sections, failures grouped with parameters."""
    spec = ROOT / "tests" / "circuits" / "probes_spec.yaml"
    result = CliRunner().invoke(app, ["yield", str(spec), "-n", "20", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.html").read_text()
    static_checks(text)
    summary = json.loads((tmp_path / "summary.json").read_text())
    failed = summary["failed_simulations"]
    assert failed > 0
    assert f"Monte Carlo sample: {failed} of 20 simulations failed" in text
    kinds = {reason_kind(r) for r in summary["failure_reasons"]}
    assert len(kinds) == 1 and "u0 at current temperature = # is not positive" in kinds.pop()
    assert "no optimization history in this folder" in text and "the spec has a single measure" in text
    page = open_page(browser, tmp_path / "report.html")
    assert len(page["images"]) == 1 and page["images"][0]["ok"], page["images"]


def test_report_errors(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no run_summary.json or summary.json" in result.output
    (tmp_path / "summary.json").write_text(json.dumps({"spec_file": str(tmp_path / "moved.yaml")}))
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "pass it with --spec SPEC" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["report", "--help"])
    assert result.exit_code == 0 and "Example" in result.output
