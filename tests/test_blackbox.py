"""Library baselines (CMA-ES, Optuna TPE and GP) as run steps on the CSVA's outcomes, through ngspice."""

from pathlib import Path

import numpy as np
import pytest

from optiyield.objective import passes
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.method import Problem
from optiyield.registry import STEPS
from optiyield.sim.engine import Engine
from optiyield.spec import Step, load_spec
from optiyield.stats.variation import OutcomeSet

pytest.importorskip("cma", reason="the opt extra (pip install -e '.[opt]') has the library baselines")
pytest.importorskip("optuna", reason="the opt extra (pip install -e '.[opt]') has the library baselines")
pytestmark = pytest.mark.ngspice
SPEC = Path(__file__).resolve().parents[1] / "specs" / "csva.yaml"
# a design near the CSVA's minimax point, where about half the outcomes pass
START = np.array([1.5, 0.75, 6e-6, 1.5e3])


@pytest.mark.parametrize("method", ["cma-es", "optuna-tpe", "optuna-gp"])
def test_baseline_step_never_worse_and_within_budget(method):
    spec = load_spec(SPEC)
    outcomes = OutcomeSet.draw(spec.model, 20, "sobol", 3)
    evaluator = Evaluator(spec, Engine())
    problem = Problem(spec=spec, evaluator=evaluator, outcomes=outcomes)
    start_passed = int(passes(evaluator.responses(START, outcomes).errors(evaluator.errors)[0]).sum())
    step = Step.model_validate({"baseline": method, "budget": 400, "seed": 1})
    before = evaluator.meter.simulations
    result = STEPS.method(step.kind, step.method).run(problem, START, step.options, None)
    spent = evaluator.meter.simulations - before
    assert spent <= 400 and spent % outcomes.n == 0
    assert result.yield_estimate.passed >= start_passed
    check = int(passes(Evaluator(spec, Engine()).responses(result.x, outcomes).errors(evaluator.errors)[0]).sum())
    assert check == result.yield_estimate.passed  # the reported count is the design's own
    assert np.all(result.x >= evaluator.lower) and np.all(result.x <= evaluator.upper)
    batches = [r.data["candidates"] for r in result.history]
    assert sum(batches) * outcomes.n == spent  # each batch of candidates was one engine request
    assert max(batches) > 1  # populations / trial batches, not one design at a time


def test_unknown_option_is_refused():
    with pytest.raises(Exception, match="does not take `max_iter`"):
        Step.model_validate({"baseline": "cma-es", "max_iter": 3})
