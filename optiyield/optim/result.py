"""The one result shape every run step returns, and the one iteration record every optimizer emits."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiyield.sim.meter import Cost
from optiyield.yield_ import YieldEstimate


@dataclass(frozen=True)
class IterationRecord(Mapping[str, Any]):
    """One iteration (or event) of an optimizer, as callbacks, the journal and the report see it.

    ``phase`` is the optimizer's own name for the part of its work (``minimax``, ``yield phase 2``,
    ``staged-bfgs``, ``random search``); the run step the record belongs to is the journal's business.
    ``iteration`` counts within the optimizer; ``simulations`` is the evaluator's running total of
    simulated samples when the record was made; ``x`` the design (name → SI value); ``objective`` the
    optimizer's objective there; ``yield_estimate`` the yield on the optimization outcomes where the
    optimizer tracks it; ``accepted`` whether a trial point was taken; ``event`` a one-line note
    (restart, region check, …); ``data`` the method's own figures (trust radius, ρ, margins, stage
    details). As a mapping it reads like :meth:`to_dict` (``record["yield"]``, ``record.get("event")``).
    """

    phase: str
    iteration: int
    simulations: int
    x: dict[str, float] | None = None
    objective: float | None = None
    yield_estimate: YieldEstimate | None = None
    accepted: bool | None = None
    event: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the fields that are set, the yield as ``yield``/``yield_low``/``yield_high``/
        ``passed``, and the method's own figures."""
        out: dict[str, Any] = {"phase": self.phase, "iteration": self.iteration, "simulations": self.simulations}
        for key in ("x", "objective", "accepted", "event"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.yield_estimate is not None:
            est = self.yield_estimate
            out.update({"yield": est.value, "yield_low": est.low, "yield_high": est.high, "passed": est.passed})
        out.update(self.data)
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


#: Called with every record an optimizer makes.
IterationCallback = Callable[[IterationRecord], None]


@dataclass
class Result:
    """What a run step produced.

    ``x`` is the final design vector (SI, in the evaluator's variable order) and ``design`` the same
    as a mapping; ``objective`` the final objective value; ``yield_estimate`` the yield with its
    interval at ``x`` on the optimizer's outcome set (None for nominal-only methods); ``history`` one
    record per iteration; ``cost`` what the step's simulations cost (measured by the evaluator's meter,
    never counted by the optimizer itself); ``status`` why it stopped. Steps that are not optimizers
    attach what they made: ``monte_carlo`` (a verification), ``tables`` (named pandas frames the caller
    may write out, e.g. ``proposals``).
    """

    method: str
    x: np.ndarray
    design: dict[str, float]
    objective: float
    yield_estimate: YieldEstimate | None
    history: list[IterationRecord] = field(default_factory=list)
    iterations: int = 0
    cost: Cost = field(default_factory=Cost)
    status: str = ""
    monte_carlo: Any = None
    tables: dict[str, Any] = field(default_factory=dict)
    reliability: dict[str, Any] | None = None

    @property
    def simulations(self) -> int:
        """Samples simulated during this step (``cost.simulations``)."""
        return self.cost.simulations

    @property
    def cached(self) -> int:
        """Samples served from the store during this step."""
        return self.cost.cached

    @property
    def ngspice_seconds(self) -> float:
        """Summed simulator process time of this step, s."""
        return self.cost.ngspice_seconds

    @property
    def wall_seconds(self) -> float:
        """Elapsed time of this step, s."""
        return self.cost.wall_seconds

    def summary(self) -> dict[str, Any]:
        """JSON-able headline figures."""
        est = self.yield_estimate
        out = {"method": self.method, "design": self.design, "objective": self.objective,
               "yield": None if est is None else est.to_dict(), "iterations": self.iterations,
               **self.cost.to_dict(), "status": self.status}
        if self.reliability is not None:
            out["reliability"] = self.reliability
        return out
