"""Shared test helpers and fixtures (a real headless Chromium for the HTML pages)."""

import importlib.util
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from optiyield.cli import app
from optiyield.sim.engine import OK, Engine
from optiyield.sim.job import SimJob
from optiyield.spec import Spec


def simulate_points(spec: Spec, points: Sequence[Mapping[str, float]], job: SimJob | None = None) -> dict:
    """Simulate design points (parameter → value; the rest at the spec's nominal values) through ngspice
    in one batched call and return the measures; every simulation must succeed."""
    nominal = spec.nominal()
    values = np.array([[point.get(n, nominal[n]) for n in spec.parameters] for point in points])
    results = Engine(workers=2).run(job or spec.testbench.job(spec.parameters), values)
    assert (results.status == OK).all(), results.reason
    return results.values


def run_cli(*args: object) -> str:
    """Run an ``optiyield`` command in-process, assert it exits 0, and return its output with runs of
    whitespace collapsed (rich wraps long lines at the terminal width)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


#: The modules of the ``[ml]`` extra (pyproject.toml): inverse models and surrogates need all three.
ML_MODULES = ("torch", "sklearn", "joblib")


def _absent(module: str) -> bool:
    """Whether ``module`` cannot be imported (looked up without importing it: torch takes seconds)."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


#: The ``[ml]`` modules this interpreter lacks (empty when the extra is installed).
ML_MISSING = tuple(m for m in ML_MODULES if _absent(m))
ML_REASON = (f"the [ml] extra is not installed (no {', '.join(ML_MISSING)}): pip install -e '.[ml]' "
             "(make setup installs it)")
#: Mark a test that trains or loads inverse models / surrogates.
needs_ml = pytest.mark.skipif(bool(ML_MISSING), reason=ML_REASON)


def require_ml() -> None:
    """Skip the calling test or fixture when the ``[ml]`` extra is absent (see :data:`needs_ml`)."""
    if ML_MISSING:
        pytest.skip(ML_REASON)


ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1200,900")


def small_csva_spec(folder: Path, samples: int = 60, steps: list[dict] | None = None) -> Path:
    """specs/csva.yaml with fewer outcomes (``samples``) and iterations, or other run ``steps``: a real run in a
    few seconds."""
    spec = yaml.safe_load((ROOT / "specs" / "csva.yaml").read_text())
    spec["name"] = "csva_small"
    spec["testbench"] = str(ROOT / "circuits" / "csva" / "testbench.yaml")
    spec["run"] = {"seed": 1, "samples": samples, "sampler": "sobol", "steps": steps or [
        {"nominal": "minimax", "max_iter": 5},
        {"yield": "l1", "gradient": "igat", "max_iter": 3, "phases": 1},
        {"verify": {"samples": 300}}]}
    path = folder / "csva_small.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium driven by selenium; fails (never skips) when it is not installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the report test needs Debian's chromium and chromium-driver "
                    "(`make setup`, or `apt-get install chromium chromium-driver`)", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'", pytrace=False)
    profile = tempfile.mkdtemp(prefix="optiyield-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)




def default_sigint() -> None:
    """``preexec_fn`` for command subprocesses that a test interrupts with SIGINT: a suite started in the
    background of a non-interactive shell inherits SIGINT ignored, and Python then installs no Ctrl-C handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
