"""``{yield: auto}``: ℓ1/IGAT on a growing outcome set, then a pass-count polish (the default yield step)."""

from pathlib import Path

import numpy as np
import pytest

from optiyield.objective import passes
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.yield_auto import head, stage_sizes, yield_auto
from optiyield.sim.engine import Engine
from optiyield.spec import DEFAULT_STEPS, RunSettings, load_spec
from optiyield.stats.variation import OutcomeSet

SPEC = Path(__file__).resolve().parents[1] / "specs" / "csva.yaml"


def test_stage_sizes_grow_to_the_whole_set():
    assert stage_sizes(300, 50, 2) == [50, 100, 200, 300]
    assert stage_sizes(40, 50, 2) == [40]
    assert stage_sizes(100, 50, 2) == [50, 100]
    assert stage_sizes(10, 3, 1.5) == [3, 5, 8, 10]


def test_head_keeps_the_same_samples():
    spec = load_spec(SPEC)
    outcomes = OutcomeSet.draw(spec.model, 64, "sobol", 2)
    first = head(outcomes, 16)
    assert first.n == 16
    nominal = spec.nominal()
    full, part = outcomes.apply(nominal), first.apply(nominal)
    for name in part:
        np.testing.assert_array_equal(part[name], full[name][:16])
    assert head(outcomes, 100) is outcomes


def test_default_steps_are_minimax_auto_verify():
    assert [next(iter(s)) for s in DEFAULT_STEPS] == ["nominal", "yield", "verify"]
    steps = RunSettings().steps
    assert [(s.kind, s.method) for s in steps] == [("nominal", "minimax"), ("yield", "auto"), ("verify", "mc")]


@pytest.mark.ngspice
def test_auto_raises_the_yield_and_never_returns_a_worse_design():
    """From a design where part of the CSVA's outcomes fail: stages of 10, 20, 40 outcomes, then a polish of
    6 designs; the result is at least as good as the start on the whole set, its count is its own, and the
    history names the stages."""
    spec = load_spec(SPEC)
    outcomes = OutcomeSet.draw(spec.model, 40, "sobol", 5)
    evaluator = Evaluator(spec, Engine())
    start = np.array([1.5, 0.75, 6e-6, 1.5e3])
    start_passed = int(passes(evaluator.responses(start, outcomes).errors(evaluator.errors)[0]).sum())
    result = yield_auto(evaluator, outcomes, start, start_samples=10, max_iter=4, polish=6)
    assert result.yield_estimate.passed >= start_passed
    check = Evaluator(spec, Engine()).responses(result.x, outcomes).errors(evaluator.errors)[0]
    assert int(passes(check).sum()) == result.yield_estimate.passed
    phases = {r.phase.split(":")[0] for r in result.history}
    assert {"10 outcomes", "20 outcomes", "40 outcomes", "polish"} <= phases
    assert "10 → 20 → 40" in result.status
