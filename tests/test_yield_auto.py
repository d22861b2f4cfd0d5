"""``{yield: auto}``: ℓ1 (IGAT or FAST Jacobians) on a growing outcome set, then a pass-count polish (the default
yield step)."""

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from optiyield.objective import passes
from optiyield.optim import yield_auto as yield_auto_module
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.gradients import FastIGAT, make_provider
from optiyield.optim.result import Result
from optiyield.optim.yield_auto import (
    FAST_FROM,
    YieldAutoOptions,
    head,
    stage_gradient,
    stage_plan,
    stage_sizes,
    yield_auto,
)
from optiyield.sim.engine import Engine
from optiyield.sim.meter import Meter
from optiyield.spec import DEFAULT_STEPS, RunSettings, Step, load_spec
from optiyield.stats.variation import OutcomeSet
from optiyield.yield_ import YieldEstimate

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


def test_gradient_rule_by_design_variables():
    """``auto``: IGAT below FAST_FROM design variables (the CSVA's 4), FAST from it on (OPAMP2's 13); an
    explicit choice is kept whatever n."""
    assert stage_gradient("auto", 4) == "igat"
    assert stage_gradient("auto", FAST_FROM - 1) == "igat"
    assert stage_gradient("auto", FAST_FROM) == "fast"
    assert stage_gradient("auto", 13) == "fast"
    assert stage_gradient("igat", 13) == "igat"
    assert stage_gradient("fast", 4) == "fast"


def test_gradient_option_is_validated_and_reaches_the_step():
    assert YieldAutoOptions().gradient == "auto"
    assert Step.model_validate({"yield": "auto", "gradient": "fast"}).options.gradient == "fast"
    for bad in ("past", "central", "FAST", ""):
        with pytest.raises(ValidationError):
            Step.model_validate({"yield": "auto", "gradient": bad})


IGAT_PLAN = [(10, "igat"), (20, "igat"), (40, "igat")]
FAST_PLAN = [(10, "igat-fast"), (40, "fast")]


def test_stage_plans():
    """IGAT on every prefix; FAST: IGAT with FAST starts on the first prefix, then FAST on the whole set."""
    assert stage_plan(40, 10, 2, "igat") == IGAT_PLAN
    assert stage_plan(40, 10, 2, "fast") == FAST_PLAN
    assert stage_plan(40, 50, 2, "fast") == [(40, "fast")]


@pytest.mark.parametrize(("gradient", "n", "expected", "label"), [
    ("auto", 4, IGAT_PLAN, "l1/IGAT on 10 → 20 → 40"), ("auto", 13, FAST_PLAN, "l1/IGAT-FAST then FAST on 10 → 40"),
    ("igat", 13, IGAT_PLAN, "l1/IGAT on 10 → 20 → 40"), ("fast", 4, FAST_PLAN, "l1/IGAT-FAST then FAST on 10 → 40")])
def test_every_stage_uses_the_chosen_provider(monkeypatch, gradient, n, expected, label):
    """No simulator: yield_l1 is a stand-in that records its calls; each ℓ1 stage gets the outcomes and provider
    of the plan the option (and the rule, for ``auto``) chose, and the status names it."""
    calls = []

    def fake_l1(evaluator, outcomes, x, *, gradient, **_):  # noqa: ANN001, ANN003, ANN202
        calls.append((outcomes.n, gradient))
        return Result(method="fake", x=x, design={}, objective=0.0,
                      yield_estimate=YieldEstimate.from_counts(outcomes.n // 2, outcomes.n), history=[],
                      iterations=1)

    class FakeEvaluator:
        def __init__(self) -> None:
            self.n, self.x0, self.meter = n, np.full(n, 0.5), Meter()

        def clip(self, x: np.ndarray) -> np.ndarray:
            return np.clip(x, 0, 1)

        def design(self, x: np.ndarray) -> dict[str, float]:
            return {f"x{i}": float(v) for i, v in enumerate(x)}

        def passing(self, x: np.ndarray, outcomes: OutcomeSet) -> np.ndarray:
            return np.zeros(outcomes.n, dtype=bool)  # every outcome fails at the start: the stages' design wins

    monkeypatch.setattr(yield_auto_module, "yield_l1", fake_l1)
    outcomes = OutcomeSet.draw(load_spec(SPEC).model, 40, "sobol", 5)
    evaluator = FakeEvaluator()
    result = yield_auto(evaluator, outcomes, start_samples=10, polish=0, gradient=gradient)
    assert calls == expected
    assert result.status.startswith(label)


@pytest.mark.ngspice
def test_auto_with_fast_never_returns_a_worse_design():
    """The FAST plan on the CSVA (an explicit choice: the rule keeps IGAT at 4 variables) keeps the guarantee:
    at least the start's count on the whole set, and the returned count is the design's own."""
    spec = load_spec(SPEC)
    outcomes = OutcomeSet.draw(spec.model, 40, "sobol", 5)
    evaluator = Evaluator(spec, Engine())
    start = np.array([1.5, 0.75, 6e-6, 1.5e3])
    start_passed = int(passes(evaluator.responses(start, outcomes).errors(evaluator.errors)[0]).sum())
    result = yield_auto(evaluator, outcomes, start, start_samples=20, max_iter=3, polish=4, gradient="fast")
    assert result.yield_estimate.passed >= start_passed
    check = Evaluator(spec, Engine()).responses(result.x, outcomes).errors(evaluator.errors)[0]
    assert int(passes(check).sum()) == result.yield_estimate.passed
    assert result.status.startswith("l1/IGAT-FAST then FAST on 20 → 40 outcomes")


@pytest.mark.ngspice
def test_igat_fast_starts_with_a_fast_jacobian():
    """The FAST plan's prefix provider: its start costs N + n·m simulations (FAST's anchors), not PAST's (n + 1)·N,
    and its trials update the Jacobian without simulating more than the trial point."""
    spec = load_spec(SPEC)
    outcomes = OutcomeSet.draw(spec.model, 60, "sobol", 1)
    evaluator = Evaluator(spec, Engine())
    provider = make_provider("igat-fast", evaluator, outcomes)
    assert isinstance(provider, FastIGAT)
    start = np.array([1.5, 0.75, 6e-6, 1.5e3])
    _, jac = provider.start(start)
    m = provider.fast.anchors.n
    assert m < outcomes.n
    assert evaluator.meter.simulations == outcomes.n + len(start) * m
    before = jac.copy()
    provider.trial(evaluator.clip(start * 1.02))
    assert evaluator.meter.simulations == 2 * outcomes.n + len(start) * m
    assert not np.allclose(provider.jac, before)
