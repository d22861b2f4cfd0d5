"""Proposers: where an optimization starts. A proposer turns a spec into candidate designs; every
candidate is re-simulated (nominal, one batched engine call) and the one with the smallest minimax error
becomes the optimizer's start; or, for a proposer that claims yield (a yield model), over a few outcomes of
the run's outcome set, and the candidate passing most of them wins.

Anything with a ``name`` and ``propose(spec, count, seed) -> (K, D) array`` (SI, in the spec's design
order) is a proposer: the trained inverse models (:class:`ModelProposer`, with the lookup baseline as a
model kind) and analytical sizers alike. ``run.steps`` uses one through ``{propose: {model: FILE,
candidates: 8}}``.

Only this module's names are imported eagerly; torch and scikit-learn load when a model is used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from optiyield.objective import minimax_value, passes
from optiyield.optim.evaluator import Evaluator
from optiyield.sim.engine import FAILED
from optiyield.spec import Spec
from optiyield.stats.variation import OutcomeSet


class Proposer(Protocol):
    """Proposes candidate start designs for a spec. A proposer whose claim is yield also has ``check_samples``:
    how many of the run's outcomes the ``propose`` step re-simulates its candidates over by default."""

    name: str

    def propose(self, spec: Spec, count: int, seed: int = 0) -> np.ndarray:
        """Up to ``count`` candidate designs, shape (K, D), SI, in ``spec.file.design`` order."""


class ModelProposer:
    """A trained inverse model (or the lookup baseline) answering the spec's thresholds as a query."""

    def __init__(self, model: Any, targets: int = 256) -> None:
        self.model, self.targets = model, targets
        self.name = f"{model.kind} model"

    def propose(self, spec: Spec, count: int, seed: int = 0) -> np.ndarray:
        """Diverse candidates for the spec's thresholds (see :mod:`optiyield.propose.query`)."""
        from optiyield.objective import ErrorModel
        from optiyield.propose.query import propose_candidates

        self.model.check(spec)
        return propose_candidates(self.model, ErrorModel.from_specs(spec.file.specs), count, self.targets,
                                  seed).designs


@dataclass(frozen=True)
class Proposal:
    """Re-simulated candidates: designs (K, D), SI; measured minimax error (K,) (≤ 0: every spec met;
    a failed simulation counts as a clear violation); the measures of each; index of the best. Checked over
    outcomes (:func:`resimulate_on`): the error and measures are medians over the outcomes and ``passed`` is
    the fraction of outcomes meeting every spec."""

    designs: np.ndarray
    error: np.ndarray
    measures: dict[str, np.ndarray]
    status: np.ndarray
    best: int
    passed: np.ndarray | None = None

    @property
    def x(self) -> np.ndarray:
        """The best candidate, the optimizer's start."""
        return self.designs[self.best]

    def frame(self, names: tuple[str, ...]) -> pd.DataFrame:
        """One row per candidate: the design variables ``names``, every measure, the minimax error and
        the simulation status (``proposals.csv``, ``optiyield propose --out``)."""
        table = pd.DataFrame(self.designs, columns=list(names))
        for name, values in self.measures.items():
            table[name] = values
        table["minimax_error"], table["status"] = self.error, self.status
        if self.passed is not None:
            table["yield_on_outcomes"] = self.passed
        return table


def resimulate(evaluator: Evaluator, designs: np.ndarray) -> Proposal:
    """Simulate every candidate at nominal in one engine call and pick the smallest minimax error."""
    designs = evaluator.clip(np.atleast_2d(np.asarray(designs, dtype=float)))
    responses = evaluator.responses(designs)
    errors = responses.errors(evaluator.errors)[:, 0, :]
    error = minimax_value(errors, evaluator.errors.weights)
    return Proposal(designs=designs, error=error, measures={k: v[:, 0] for k, v in responses.values.items()},
                    status=responses.status[:, 0], best=int(np.argmin(error)))


def resimulate_on(evaluator: Evaluator, designs: np.ndarray, outcomes: OutcomeSet) -> Proposal:
    """Simulate every candidate over ``outcomes`` in one engine call; the best passes most of them (ties: the
    proposer's order, best-ranked first). Status ``ok`` when every outcome simulated, else ``failed``."""
    designs = evaluator.clip(np.atleast_2d(np.asarray(designs, dtype=float)))
    responses = evaluator.responses(designs, outcomes)
    errors = responses.errors(evaluator.errors)
    passed = passes(errors).mean(axis=1)
    error = np.median(minimax_value(errors, evaluator.errors.weights), axis=1)
    status = np.where((responses.status != FAILED).all(axis=1), "ok", FAILED)
    with warnings.catch_warnings():  # a candidate failing every outcome has an all-NaN median: kept as NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        measures = {k: np.nanmedian(v, axis=1) for k, v in responses.values.items()}
    return Proposal(designs=designs, error=error, measures=measures, status=status, best=int(np.argmax(passed)),
                    passed=passed)


def propose_start(proposer: Proposer, spec: Spec, evaluator: Evaluator, count: int, seed: int = 0,
                  sequential: bool = False, outcomes: OutcomeSet | None = None) -> Proposal:
    """Ask ``proposer`` for ``count`` candidates and re-simulate them; the best is the new start.

    ``sequential``: simulate them one at a time in the proposer's order (best-ranked first) and stop at
    the first that meets every spec — fewer simulations, less parallelism. ``outcomes``: check them over
    these outcomes instead of at nominal (:func:`resimulate_on`)."""
    designs = np.atleast_2d(proposer.propose(spec, count, seed))
    if len(designs) == 0:
        raise ValueError(f"{proposer.name} proposed no candidate")
    if outcomes is not None:
        return resimulate_on(evaluator, designs, outcomes)
    if not sequential:
        return resimulate(evaluator, designs)
    parts = []
    for design in designs:
        parts.append(resimulate(evaluator, design[None, :]))
        if parts[-1].error[0] <= 0:
            break
    error = np.concatenate([p.error for p in parts])
    return Proposal(designs=np.vstack([p.designs for p in parts]), error=error,
                    measures={k: np.concatenate([p.measures[k] for p in parts]) for k in parts[0].measures},
                    status=np.concatenate([p.status for p in parts]), best=int(np.argmin(error)))
