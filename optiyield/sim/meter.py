"""What simulations cost: one meter for every optimizer, step and Monte Carlo.

A :class:`Meter` keeps running totals (samples simulated, samples served from the store, ngspice
processes, ngspice process seconds, failed samples). Whoever wants the cost of a piece of work opens a
:meth:`Meter.span` before it and reads ``span.cost`` after it: a :class:`Cost` with the differences and
the elapsed wall time. This replaces the "snapshot the counters, subtract later" idiom.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Cost:
    """The cost of some work: ``simulations`` (samples run by the simulator), ``cached`` (samples served
    from the store), ``runs`` (simulator processes), ``ngspice_seconds`` (their summed wall time, s),
    ``failed`` (samples that failed) and ``wall_seconds`` (elapsed time of the work, s)."""

    simulations: int = 0
    cached: int = 0
    runs: int = 0
    ngspice_seconds: float = 0.0
    failed: int = 0
    wall_seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able figures."""
        return asdict(self)


class Meter:
    """Running totals of simulation cost (see the module docstring). Not thread-safe: one owner."""

    def __init__(self) -> None:
        self.simulations = 0
        self.cached = 0
        self.runs = 0
        self.ngspice_seconds = 0.0
        self.failed = 0

    def add(self, *, simulations: int = 0, cached: int = 0, runs: int = 0, ngspice_seconds: float = 0.0,
            failed: int = 0) -> None:
        """Count finished work."""
        self.simulations += simulations
        self.cached += cached
        self.runs += runs
        self.ngspice_seconds += ngspice_seconds
        self.failed += failed

    def total(self) -> Cost:
        """Everything counted so far (without wall time)."""
        return Cost(self.simulations, self.cached, self.runs, self.ngspice_seconds, self.failed)

    def span(self) -> Span:
        """Start measuring a piece of work."""
        return Span(self)


class Span:
    """The cost of the work done since it was opened: :attr:`cost`."""

    def __init__(self, meter: Meter) -> None:
        self.meter, self.start, self.started = meter, meter.total(), time.perf_counter()

    @property
    def cost(self) -> Cost:
        """Differences of the meter's totals since the span opened, and the elapsed wall time."""
        now = self.meter.total()
        return Cost(simulations=now.simulations - self.start.simulations, cached=now.cached - self.start.cached,
                    runs=now.runs - self.start.runs,
                    ngspice_seconds=now.ngspice_seconds - self.start.ngspice_seconds,
                    failed=now.failed - self.start.failed, wall_seconds=time.perf_counter() - self.started)
