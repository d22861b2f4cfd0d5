"""The evaluator's pass/fail view of a design over an outcome set, through ngspice."""

from pathlib import Path

import numpy as np
import pytest

from optiyield.objective import passes
from optiyield.optim.evaluator import Evaluator
from optiyield.sim.engine import Engine
from optiyield.spec import load_spec
from optiyield.stats.variation import OutcomeSet

SPEC = Path(__file__).resolve().parents[1] / "specs" / "csva.yaml"


@pytest.mark.ngspice
def test_passing_is_each_outcomes_pass_flag_at_one_design():
    """``passing`` simulates the design once per outcome and flags the outcomes that meet every spec, the same
    flags as the errors of :meth:`Evaluator.responses`; at a design where part of the CSVA's outcomes pass, the
    flags are mixed."""
    spec = load_spec(SPEC)
    outcomes = OutcomeSet.draw(spec.model, 16, "sobol", 5)
    evaluator = Evaluator(spec, Engine())
    x = np.array([1.65, 0.636, 8.6e-6, 905.0])  # part of these 16 outcomes pass
    flags = evaluator.passing(x, outcomes)
    assert flags.shape == (16,) and flags.dtype == bool
    assert evaluator.meter.simulations == 16
    expected = passes(Evaluator(spec, Engine()).responses(x, outcomes).errors(evaluator.errors)[0])
    np.testing.assert_array_equal(flags, expected)
    assert 0 < flags.sum() < 16
