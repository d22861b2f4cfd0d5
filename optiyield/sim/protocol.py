"""The simulator seam: what the engine needs of a circuit simulator, and what a run gives back.

A :class:`Simulator` renders a job's parameter rows into a deck (K copies of the testbench, or one
sample), runs it with a time-out, and returns a :class:`RunOutcome` whose :class:`Waveforms` the
testbench's measures read. The engine (:mod:`optiyield.sim.engine`) does the batching, parallelism,
bisection and retries on top of any simulator. ngspice is :mod:`optiyield.sim.ngspice`; a second
simulator is one new module registered in :data:`optiyield.registry.SIMULATORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from optiyield.sim.job import SimJob


class Cancelled(RuntimeError):
    """Raised by :meth:`Simulator.run` after :meth:`Simulator.cancel`: the run was killed or not started."""


class Waveforms(Protocol):
    """The vectors of one run over ``count`` copies (samples × sweep points), read by measures.

    Kinds are analysis names (``op``, ``ac``, ``dc``, ``tran``, ``noise``, ``sp``). Per-copy arrays have
    shape (count, points); complex for small-signal analyses. A missing vector raises KeyError naming it.
    """

    count: int
    stdout: str

    def kinds(self) -> tuple[str, ...]:
        """Analyses present in the results."""
        ...

    def axis(self, kind: str) -> np.ndarray:
        """The sweep axis of an analysis: frequency (Hz), time (s), …; shape (points,), real."""
        ...

    def node(self, kind: str, node: str) -> np.ndarray:
        """Voltage of a node of every copy, V (zeros for ground)."""
        ...

    def current(self, kind: str, source: str) -> np.ndarray:
        """Branch current of a voltage source of every copy, A (SPICE sign: + to − through the source)."""
        ...

    def device(self, kind: str, device: str, quantity: str) -> np.ndarray:
        """An instance quantity (``vds``, ``gm``, …) of a device of every copy (saved with the job)."""
        ...

    def vector(self, kind: str, name: str) -> np.ndarray:
        """A vector by its simulator name that is not per copy (``onoise_spectrum``), shape (points,)."""
        ...

    def names(self, kind: str) -> tuple[str, ...]:
        """Every vector name of an analysis (single-sample runs: what a probe may read)."""
        ...

    def measured(self, name: str) -> np.ndarray:
        """A netlist ``.meas`` result of every copy, shape (count,); NaN where it has none."""
        ...


@dataclass(frozen=True)
class Deck:
    """A rendered input: its ``text``, the number of copies it holds, and the simulator's own notes on
    how to find each copy's vectors (``context``)."""

    text: str
    count: int
    context: Any = None


@dataclass
class RunOutcome:
    """One simulator run: why it failed (None when usable), its wall time in s, its text output, and
    its waveforms when it succeeded."""

    failure: str | None
    seconds: float = 0.0
    stdout: str = ""
    waveforms: Waveforms | None = None

    @property
    def ok(self) -> bool:
        """True when the run is usable."""
        return self.failure is None


class Simulator(Protocol):
    """A circuit simulator behind the engine (see the module docstring)."""

    name: str

    def render(self, job: SimJob, rows: np.ndarray, *, gentle: bool = False) -> Deck:
        """The deck simulating ``rows`` (shape (K, len(job.names)), SI) of ``job``; ``gentle`` asks for
        more robust (slower) convergence settings, used for a retry."""
        ...

    def run(self, deck: Deck, *, timeout: float, expected: tuple[str, ...] = (),
            slot: AbstractContextManager[object] | None = None) -> RunOutcome:
        """Run a deck with a wall-clock ``timeout`` (s); ``expected`` analyses must be present and
        complete. ``slot`` is held only while the simulator process runs (the engine's concurrency limit)."""
        ...

    def cancel(self) -> None:
        """Kill every running simulator process now; until :meth:`reset`, :meth:`run` raises
        :class:`Cancelled` instead of starting one (Ctrl-C, or an aborted engine call)."""
        ...

    def reset(self) -> None:
        """Accept runs again after :meth:`cancel`."""
        ...

    def close(self) -> None:
        """Release what the simulator holds (temporary folders)."""
        ...


@runtime_checkable
class WarmStarting(Protocol):
    """A simulator that can start a transient from a settled state (an optional capability; the engine
    checks for it). Used for jobs with ``warm_start``: the engine keeps the states a cold run ends in and
    starts later rows from them (:meth:`optiyield.sim.engine.Engine.run` with ``anchors``)."""

    def settled_states(self, job: SimJob, outcome: RunOutcome, samples: int) -> list[Any]:
        """The final state of each of the ``samples`` samples of a successful cold run of ``job`` (opaque
        objects, each holding the sample's sweep copies)."""
        ...

    def render_warm(self, job: SimJob, rows: np.ndarray, states: list[Any], linear: bool = False) -> Deck:
        """The deck simulating ``rows`` with row i started from ``states[i]`` (one of :meth:`settled_states`)
        and the job's short warm transient (``linear``: the linear start's transient, from
        :meth:`linear_states`)."""
        ...

    def render_linear(self, job: SimJob, rows: np.ndarray) -> Deck:
        """The pre-run of a job with ``linear_start``: operating point and small-signal response at f0."""
        ...

    def linear_states(self, job: SimJob, outcome: RunOutcome, samples: int) -> list[Any]:
        """The linear periodic state at t = 0 of each sample, from a successful :meth:`render_linear` run."""
        ...


class Backend(Protocol):
    """Where batches of samples run: the local :class:`~optiyield.sim.engine.Engine` or a cluster
    (:class:`~optiyield.execute.DaskEngine`). ``workers`` is the number of parallel slots rows are
    partitioned for."""

    workers: int

    def run(self, job: SimJob, values: np.ndarray, progress: Callable[[int], None] | None = None,
            sink: Callable[..., None] | None = None) -> Any:
        """Simulate every row of ``values`` (shape (N, len(job.names)), SI); returns
        :class:`~optiyield.sim.engine.SimResults`. ``sink(rows, values, status, reason)`` receives samples
        as soon as they are final."""
        ...

    def probe(self, job: SimJob, row: np.ndarray) -> RunOutcome:
        """One single-sample run without measures (see :meth:`optiyield.sim.engine.Engine.probe`)."""
        ...

    def close(self) -> None:
        """Release processes, folders and clusters."""
        ...
