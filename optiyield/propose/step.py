"""The ``propose`` run step: a trained model or an analytical sizer proposes candidates, all are
re-simulated, the best (smallest minimax error) becomes the start of the next step.

``{propose: {model: FILE, candidates: 8}}`` (a file from ``optiyield train``, relative to the spec) or
``{propose: {sizer: lna_cascode, options: {idd: 5m}}}`` (an analytical sizer of
:data:`optiyield.registry.SIZERS`). A yield model (``optiyield train --model yield``) ranks its candidates by
predicted yield; they are re-simulated over the first ``check_samples`` outcomes of the run's outcome set (25
by default) and the one passing most becomes the start. The candidates table is the result's ``proposals``
table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from optiyield.optim.method import Problem
from optiyield.optim.result import IterationCallback, Result
from optiyield.optim.yield_auto import head
from optiyield.propose import Proposer, propose_start
from optiyield.registry import SIZERS, StepMethod, StepOptions
from optiyield.units import UnitError, parse_eng
from optiyield.yield_ import YieldEstimate


def _eng_options(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    try:
        return {k: parse_eng(v) for k, v in value.items()}
    except UnitError as exc:
        raise ValueError(str(exc)) from None


class ProposeOptions(StepOptions):
    """A proposer step: a model file from ``optiyield train`` (``model``, path relative to the spec file) or
    an analytical sizer by name (``sizer``, e.g. ``lna_cascode``, with its keyword ``options`` such as
    ``{idd: 5m, gain_db: 21}``); how many candidates to re-simulate, how many query targets to draw (models),
    the seed, and whether to re-simulate the candidates one at a time (best-ranked first) and stop at the
    first meeting every spec. ``check_samples``: re-simulate the candidates over this many outcomes of the
    run's outcome set and keep the one passing most, instead of the nominal check (default: the proposer's
    ``check_samples``, 25 for a yield model; 0 = nominal for the others)."""

    model: str | None = None
    sizer: str | None = None
    options: Annotated[dict[str, float], BeforeValidator(_eng_options)] = {}
    candidates: int = Field(8, ge=1, le=1000)
    targets: int = Field(256, ge=1)
    seed: int = 0
    sequential: bool = False
    check_samples: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> ProposeOptions:
        if (self.model is None) == (self.sizer is None):
            raise ValueError("give exactly one of `model` (a file from `optiyield train`) or `sizer` "
                             f"(an analytical sizer: {', '.join(SIZERS.names())})")
        if self.sizer is not None and self.sizer not in SIZERS:
            raise ValueError(f"unknown sizer {self.sizer!r}; expected one of {', '.join(SIZERS.names())}")
        if self.options and self.sizer is None:
            raise ValueError("`options` are keyword options of a `sizer`")
        return self

    def check(self, spec: Any, folder: Path) -> Iterator[tuple[str, str]]:
        """The model file must exist next to the spec."""
        if self.model is not None and not (folder / self.model).is_file():
            yield "model", f"model file {self.model!r} not found (train one with `optiyield train`)"


def _run(problem: Problem, x0: np.ndarray, options: ProposeOptions, callback: IterationCallback | None) -> Result:
    evaluator, spec = problem.evaluator, problem.spec
    span = evaluator.meter.span()
    proposer: Proposer
    if options.sizer is not None:
        proposer, kind = SIZERS.get(options.sizer)(probe=evaluator.probe, **options.options), options.sizer
    else:
        from optiyield.propose.yield_model import load_model, model_proposer

        model = load_model(problem.folder / (options.model or ""), spec)
        proposer, kind = model_proposer(model, options.targets), model.kind
    check = options.check_samples if options.check_samples is not None else getattr(proposer, "check_samples", 0)
    outcomes = head(problem.outcomes, check) if check else None
    proposal = propose_start(proposer, spec, evaluator, options.candidates, options.seed,
                             sequential=options.sequential, outcomes=outcomes)
    estimate = None
    if outcomes is None:
        status = (f"{len(proposal.designs)} candidates re-simulated, {int((proposal.error <= 0).sum())} meet every "
                  f"spec; best is candidate {proposal.best}")
    else:
        passed = proposal.passed[proposal.best]  # type: ignore[index]
        estimate = YieldEstimate.from_counts(int(round(passed * outcomes.n)), outcomes.n, problem.confidence)
        status = (f"{len(proposal.designs)} candidates re-simulated over {outcomes.n} outcomes; best is candidate "
                  f"{proposal.best}, passing {passed:.0%} of them")
    return Result(method=f"propose ({kind})", x=proposal.x, design=evaluator.design(proposal.x),
                  objective=float(proposal.error[proposal.best]), yield_estimate=estimate, iterations=1,
                  cost=span.cost, tables={"proposals": proposal.frame(evaluator.names)}, status=status)


def _label(options: ProposeOptions) -> str:
    source = options.sizer or Path(options.model or "").name
    return f"propose ({source}, {options.candidates} candidate{'s' if options.candidates != 1 else ''})"


METHOD = StepMethod(kind="propose", name="candidates", options=ProposeOptions, run=_run, label=_label, nested=True)
