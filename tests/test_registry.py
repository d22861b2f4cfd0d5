"""Extension points: a run step registered from outside the package runs through `optiyield run`; every
option given to the wrong step is an error naming the step and the option; the registry's tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field
from typer.testing import CliRunner

from optiyield.cli import app
from optiyield.objective import minimax_value
from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, IterationRecord, Result
from optiyield.registry import SIMULATORS, STEPS, Registry, RegistryError, StepMethod, StepOptions

ROOT = Path(__file__).resolve().parents[1]
CSVA = ROOT / "specs" / "csva.yaml"


class ToyOptions(StepOptions):
    """A toy optimizer's options: how many points to try."""

    moves: int = Field(3, ge=1)


def toy(problem: Problem, x0: np.ndarray, options: ToyOptions, callback: IterationCallback | None) -> Result:
    """Try ``moves`` points between x0 and the centre of the bounds (one batched request); keep the one with
    the smallest minimax error (x0 included)."""
    evaluator = problem.evaluator
    span = evaluator.meter.span()
    centre = (evaluator.lower + evaluator.upper) / 2
    points = np.array([x0 + (centre - x0) * k / options.moves for k in range(options.moves + 1)])
    errors = evaluator.responses(points).errors(evaluator.errors)[:, 0, :]
    scores = minimax_value(errors, evaluator.errors.weights)
    history = []
    for k, (point, score) in enumerate(zip(points, scores, strict=True)):
        record = IterationRecord(phase="toy", iteration=k, simulations=evaluator.meter.simulations,
                                 x=evaluator.design(point), objective=float(score))
        history.append(record)
        if callback:
            callback(record)
    best = int(np.argmin(scores))
    return Result(method="toy", x=points[best], design=evaluator.design(points[best]), objective=float(scores[best]),
                  yield_estimate=None, history=history, iterations=len(points), cost=span.cost, status="done")


def _spec(tmp_path: Path, steps: str) -> Path:
    text = CSVA.read_text().replace("../circuits", str(ROOT / "circuits"))
    text = text[: text.index("  steps:")] + "  steps:\n" + steps
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.mark.ngspice
def test_a_toy_optimizer_registered_here_runs_through_optiyield_run(tmp_path):
    method = StepMethod(kind="yield", name="toy", options=ToyOptions, run=toy)
    spec = _spec(tmp_path, "    - {yield: toy, moves: 2}\n")
    with STEPS.registered(method.key, method):
        result = CliRunner().invoke(app, ["run", str(spec), "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        bad = _spec(tmp_path, "    - {yield: toy, budget: 5}\n")
        refused = CliRunner().invoke(app, ["validate", str(bad)])
    assert "yield toy" in result.output
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    (step,) = summary["steps"]
    assert step["label"] == "1. yield toy" and step["result"]["method"] == "toy"
    assert step["result"]["iterations"] == 3 and step["simulations"] >= 3
    assert refused.exit_code == 2
    assert "run.steps[0].budget: `yield: toy` does not take `budget` (its options: moves)" in " ".join(
        refused.output.split())
    assert "yield:toy" not in STEPS  # unregistered after the block
    with pytest.raises(RegistryError, match="unknown `yield` method 'toy'; expected one of l1"):
        STEPS.method("yield", "toy")


@pytest.mark.parametrize("step, where, message", [
    ("{staged: bfgs, max_iter: 50, gradient: central}", "run.steps[0].max_iter",
     "`staged: bfgs` does not take `max_iter` (its options: rounds, budget, protect)"),
    ("{baseline: random, gradient: past}", "run.steps[0].gradient",
     "`baseline: random` does not take `gradient` (its options: budget)"),
    ("{nominal: minimax, phases: 3}", "run.steps[0].phases", "`nominal: minimax` does not take `phases`"),
    ("{verify: {samples: 100, budget: 3}}", "run.steps[0].verify.budget", "`verify: mc` does not take `budget`"),
    ("{verify: {samples: 100}, max_iter: 3}", "run.steps[0].max_iter", "`verify` takes its options inside"),
    ("{yield: l1, rounds: 2}", "run.steps[0].rounds", "`yield: l1` does not take `rounds`"),
    ("{yield: cmaes}", "run.steps[0].yield", "unknown `yield` method 'cmaes'; expected one of l1"),
    ("{optimize: l1}", "run.steps[0]", "a step names exactly one of `propose`, `nominal`"),
])
def test_misplaced_step_options_are_errors_naming_step_and_option(tmp_path, step, where, message):
    result = CliRunner().invoke(app, ["validate", str(_spec(tmp_path, f"    - {step}\n"))])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text
    assert f"{where}: " in text and message in text, text


def test_empty_steps_are_refused(tmp_path):
    text = CSVA.read_text().replace("../circuits", str(ROOT / "circuits"))
    path = tmp_path / "spec.yaml"
    path.write_text(text[: text.index("  steps:")] + "  steps: []\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "run.steps: empty" in " ".join(result.output.split())


def test_registry_tables():
    table: Registry[int] = Registry("number", {"pi": "math:pi"})
    assert table.names() == ("pi",) and table.get("pi") == pytest.approx(np.pi)
    table.register("e", 3)
    with pytest.raises(ValueError, match="already registered"):
        table.register("e", 4)
    with pytest.raises(RegistryError, match="unknown number 'tau'; expected one of pi, e"):
        table.get("tau")
    assert set(STEPS.kinds()) >= {"propose", "nominal", "yield", "staged", "baseline", "verify"}
    assert "ngspice" in SIMULATORS
