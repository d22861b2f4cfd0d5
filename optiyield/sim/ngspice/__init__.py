"""ngspice behind the :class:`~optiyield.sim.protocol.Simulator` protocol.

:mod:`~optiyield.sim.ngspice.deck` renders K copies of a testbench into one deck,
:mod:`~optiyield.sim.ngspice.runner` runs the ``ngspice -b`` process with a time-out and classifies its
output, :mod:`~optiyield.sim.ngspice.rawfile` reads the binary raw file; :class:`NgspiceWaveforms`
finds each copy's vectors in it (``v(x3.vout)``, ``i(v.x3.vdd)``, ``@m.x3.m1[vds]``).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager

import numpy as np

import optiyield.sim.ngspice.warmstart as warmstart
from optiyield.sim.job import SimJob
from optiyield.sim.ngspice.deck import Layout, render
from optiyield.sim.ngspice.rawfile import Plot
from optiyield.sim.ngspice.runner import NgspiceRunner
from optiyield.sim.ngspice.temperature import TemperaturePlan, TemperatureWaveforms, render_temperatures
from optiyield.sim.protocol import Deck, RunOutcome

_MEAS_LINE = re.compile(r"^\s*([a-z_][\w.]*)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|-?nan|-?inf)",
                        re.I | re.M)
_AXES = {"ac": "frequency", "tran": "time", "noise": "frequency", "sp": "frequency"}


class NgspiceWaveforms:
    """The vectors of one ngspice run over ``count`` copies (implements the Waveforms protocol)."""

    def __init__(self, plots: list[Plot], layout: Layout, count: int, stdout: str) -> None:
        self.plots, self.layout, self.count, self.stdout = plots, layout, count, stdout
        self._meas: dict[str, float] | None = None

    def plot(self, kind: str) -> Plot:
        """The first plot of an analysis kind; KeyError naming the kind when there is none."""
        for plot in self.plots:
            if plot.kind == kind:
                return plot
        raise KeyError(f"no {kind} results in the raw file")

    def kinds(self) -> tuple[str, ...]:
        """Analyses present in the raw file."""
        return tuple(dict.fromkeys(p.kind for p in self.plots))

    def axis(self, kind: str) -> np.ndarray:
        """Frequency or time of an analysis (the first vector when it has neither)."""
        plot = self.plot(kind)
        name = _AXES.get(kind)
        if name is None or name not in plot:
            name = next(iter(plot.index))
        return np.real(plot[name])

    def _per_copy(self, kind: str, names: list[str | None]) -> np.ndarray:
        plot = self.plot(kind)
        block = np.zeros((self.count, plot.points), dtype=plot.data.dtype)
        rows = [k for k, n in enumerate(names) if n is not None]
        if rows:
            block[rows] = plot.columns([n for n in names if n is not None])
        return block

    def node(self, kind: str, node: str) -> np.ndarray:
        """Voltage of ``node`` in every copy, (count, points)."""
        return self._per_copy(kind, [self.layout.node(k, node) for k in range(self.count)])

    def current(self, kind: str, source: str) -> np.ndarray:
        """Branch current of voltage source ``source`` in every copy, (count, points)."""
        return self._per_copy(kind, [self.layout.source_current(k, source) for k in range(self.count)])

    def device(self, kind: str, device: str, quantity: str) -> np.ndarray:
        """Instance quantity of ``device`` in every copy, (count, points)."""
        plot = self.plot(kind)
        names = []
        for k in range(self.count):
            vector = self.layout.device(k, device, quantity)
            names.append(next((key for key in (f"v({vector})", f"i({vector})", vector) if key in plot), vector))
        return self._per_copy(kind, names)

    def vector(self, kind: str, name: str) -> np.ndarray:
        """A vector by its ngspice name, (points,)."""
        return self.plot(kind)[name]

    def names(self, kind: str) -> tuple[str, ...]:
        """Every vector name of an analysis."""
        return tuple(self.plot(kind).index)

    def measured(self, name: str) -> np.ndarray:
        """``.meas`` result ``name`` of every copy (from ngspice's printed output), NaN where absent."""
        if self._meas is None:
            self._meas = {m[1].lower(): float(m[2]) for m in _MEAS_LINE.finditer(self.stdout)}
        return np.array([self._meas.get(self.layout.meas_name(k, name), np.nan) for k in range(self.count)])


class NgspiceSimulator:
    """Renders and runs decks with the ngspice executable (see the package docstring)."""

    name = "ngspice"

    def __init__(self, runner: NgspiceRunner | None = None) -> None:
        self.runner = runner or NgspiceRunner()
        self._plans: dict[str, warmstart.Plan] = {}

    def render(self, job: SimJob, rows: np.ndarray, *, gentle: bool = False) -> Deck:
        """K copies of ``job`` (one sample in single mode), the raw file written as ``out.raw``. A cold run
        of a job with ``warm_start`` writes every vector: its last point is the state later rows start from."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        if job.temperature:  # the last column is each row's temperature: one process runs them all
            text, count, plan = render_temperatures(job, rows, gentle=gentle)
            return Deck(text=text, count=count, context=(plan, job.compat))
        text, layout = render(job.netlist, job.names, rows, "out.raw", copies=job.copies, options=job.options,
                              gentle=gentle, saves=job.saves, sweep=job.sweep, devices=job.devices,
                              vectors=() if job.warm_start else job.vectors)
        points = len(job.sweep[1]) if job.sweep else 1
        return Deck(text=text, count=rows.shape[0] * points, context=(layout, job.compat))

    def plan(self, job: SimJob, linear: bool = False) -> warmstart.Plan:
        """The warm-start plan of a job with ``warm_start`` (``linear``: of its ``linear_start`` run), cached per
        job; raises :class:`~optiyield.sim.ngspice.warmstart.WarmStartError` when it cannot be warm-started."""
        key = f"{job.fingerprint}:{linear}"
        if key not in self._plans:
            if linear and job.linear_start is not None:
                found = warmstart.plan(job.netlist, job.linear_start.f0, job.linear_start.periods, whole=False)
            elif not linear and job.warm_start is not None:
                found = warmstart.plan(job.netlist, *job.warm_start)
            else:
                raise warmstart.WarmStartError("the job has no " + ("linear_start" if linear else "warm_start"))
            self._plans[key] = found
        return self._plans[key]

    def settled_states(self, job: SimJob, outcome: RunOutcome, samples: int) -> list[warmstart.CopyStates]:
        """The last point of a cold run's transient, per sample (its sweep copies together)."""
        assert isinstance(outcome.waveforms, NgspiceWaveforms)
        plot = outcome.waveforms.plot("tran")
        names = sorted(plot.index, key=plot.index.__getitem__)
        points = len(job.sweep[1]) if job.sweep else 1
        copies = warmstart.capture(names, plot.data[-1], samples * points)
        return [warmstart.pack(copies[i * points:(i + 1) * points]) for i in range(samples)]

    def render_warm(self, job: SimJob, rows: np.ndarray, states: list[warmstart.CopyStates],
                    linear: bool = False) -> Deck:
        """K copies of ``job``, row i (with its sweep copies) started from ``states[i]`` with the short
        ``.tran … uic`` of the job's warm-start plan (``linear``: of its linear start); only the measured
        vectors are written, except by a linear start of a job with ``warm_start`` (a cold run whose last point
        later rows start from)."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        copies = [state.of(c) for state in states for c in range(state.values.shape[0])]
        vectors = () if linear and job.warm_start else job.vectors
        text, layout = render(job.netlist, job.names, rows, "out.raw", copies=True, options=job.options,
                              saves=job.saves, sweep=job.sweep, vectors=vectors,
                              start=(self.plan(job, linear), copies))
        return Deck(text=text, count=len(copies), context=(layout, job.compat))

    def render_linear(self, job: SimJob, rows: np.ndarray) -> Deck:
        """The pre-run of a linear start: ``.op`` and ``.ac lin 1 f0 f0`` driven by the sine of each drive,
        every vector written."""
        assert job.linear_start is not None
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        netlist = warmstart.linear_netlist(job.netlist, job.linear_start.f0,
                                           tuple(d.lower() for d in job.linear_start.drives))
        text, layout = render(netlist, job.names, rows, "out.raw", copies=True, options=job.options, sweep=job.sweep)
        points = len(job.sweep[1]) if job.sweep else 1
        return Deck(text=text, count=rows.shape[0] * points, context=(layout, job.compat))

    def linear_states(self, job: SimJob, outcome: RunOutcome, samples: int) -> list[warmstart.CopyStates]:
        """Per sample, the linear periodic state at t = 0 of its copies, from a :meth:`render_linear` run."""
        assert isinstance(outcome.waveforms, NgspiceWaveforms) and job.linear_start is not None
        op, ac = outcome.waveforms.plot("op"), outcome.waveforms.plot("ac")
        points = len(job.sweep[1]) if job.sweep else 1
        copies = warmstart.linear_states((sorted(op.index, key=op.index.__getitem__), op.data[0]),
                                         (sorted(ac.index, key=ac.index.__getitem__), ac.data[0]),
                                         samples * points, job.linear_start.max_swing)
        return [warmstart.pack(copies[i * points:(i + 1) * points]) for i in range(samples)]

    def run(self, deck: Deck, *, timeout: float, expected: tuple[str, ...] = (),
            slot: AbstractContextManager[object] | None = None) -> RunOutcome:
        """Run ``ngspice -b`` on the deck in a private folder (removed afterwards)."""
        folder = self.runner.workdir()
        try:
            run = self.runner.run(deck.text, folder, timeout, expected, slot=slot, compat=deck.context[1])
        finally:
            self.runner.remove(folder)
        layout = deck.context[0]
        if run.ok and isinstance(layout, TemperaturePlan):
            failure = layout.check(run.plots)
            if failure is not None:
                return RunOutcome(failure=failure, seconds=run.seconds, stdout=run.stdout)
            waveforms: object = TemperatureWaveforms(layout, run.plots, deck.count, run.stdout, NgspiceWaveforms)
        else:
            waveforms = NgspiceWaveforms(run.plots, layout, deck.count, run.stdout) if run.ok else None
        return RunOutcome(failure=run.failure, seconds=run.seconds, stdout=run.stdout,
                          waveforms=waveforms)  # type: ignore[arg-type]

    def cancel(self) -> None:
        """Kill every running ngspice and start no new one until :meth:`reset`."""
        self.runner.cancel()

    def reset(self) -> None:
        """Accept runs again."""
        self.runner.reset()

    def close(self) -> None:
        """Remove the runner's spinit folder."""
        self.runner.close()


__all__ = ["NgspiceSimulator", "NgspiceWaveforms"]
