"""The one result shape every optimizer returns, and the per-iteration callback they all accept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiyield.yield_ import YieldEstimate

#: Called after every iteration with its record (iteration, x, objective, yield, simulations, …).
IterationCallback = Callable[[dict[str, Any]], None]


@dataclass
class Result:
    """What an optimizer produced.

    ``x`` is the final design vector (SI, in the evaluator's variable order) and ``design`` the same
    as a mapping; ``objective`` the final objective value; ``yield_estimate`` the yield with its
    interval at ``x`` on the optimizer's outcome set (None for nominal-only methods); ``history`` one
    record per iteration; ``simulations`` the samples simulated by ngspice during this optimizer
    (served-from-store samples in ``cached``); ``ngspice_seconds`` their process time; ``status`` why
    it stopped.
    """

    method: str
    x: np.ndarray
    design: dict[str, float]
    objective: float
    yield_estimate: YieldEstimate | None
    history: list[dict[str, Any]] = field(default_factory=list)
    iterations: int = 0
    simulations: int = 0
    cached: int = 0
    ngspice_seconds: float = 0.0
    wall_seconds: float = 0.0
    status: str = ""

    def summary(self) -> dict[str, Any]:
        """JSON-able headline figures."""
        est = self.yield_estimate
        return {
            "method": self.method, "design": self.design, "objective": self.objective,
            "yield": None if est is None else {"value": est.value, "low": est.low, "high": est.high,
                                                "passed": est.passed, "n": est.n},
            "iterations": self.iterations, "simulations": self.simulations, "cached": self.cached,
            "ngspice_seconds": self.ngspice_seconds, "wall_seconds": self.wall_seconds, "status": self.status,
        }
