"""What a run step works on, and the signature every step method implements.

``optiyield run`` looks each step of ``run.steps`` up in :data:`optiyield.registry.STEPS` and calls its
``run(problem, x0, options, callback) -> Result``: ``problem`` a :class:`Problem`, ``x0`` the design the
previous step produced (SI, in ``problem.evaluator.names`` order), ``options`` the method's validated
options model, ``callback`` an :data:`~optiyield.optim.result.IterationCallback` (or None) for every
:class:`~optiyield.optim.result.IterationRecord`; the :class:`~optiyield.optim.result.Result` carries the
design the step hands on (one it has evaluated) and its cost. A new optimizer is one module defining its
options model and run function, plus one line in the registry (docs/architecture.md has an example).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optiyield.optim.evaluator import Evaluator
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet


@dataclass
class Problem:
    """The problem every step of a run shares: the spec, the evaluator (engine, store and cost meter),
    the fixed outcome set yield steps optimize over (common random numbers), and the confidence level of
    yield intervals."""

    spec: Spec
    evaluator: Evaluator
    outcomes: OutcomeSet

    @property
    def confidence(self) -> float:
        """Two-sided confidence level of yield intervals (0.95 = 95 %)."""
        return self.spec.run.confidence

    @property
    def folder(self) -> Path:
        """The spec file's folder, against which files a step names (models) are resolved."""
        return self.spec.base if self.spec.base is not None else Path.cwd()
