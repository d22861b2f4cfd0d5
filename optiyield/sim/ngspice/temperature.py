"""Several temperatures in one ngspice process: the corner engine's deck (docs/corners.md).

ngspice has one temperature per circuit (``.temp``/``.options temp=``; BSIM4 has no per-instance ``dtemp``), so
copies at different temperatures cannot share a run. They can share a *process*: a control block that sets
``option temp=T`` and re-runs the parsed circuit gives results bit-identical to a separate ``.temp T`` deck, while
the models are read and the circuit set up once (sky130 OTA, 3 temperatures: 0.65 s CPU instead of 1.59 s).

A job with ``SimJob.temperature`` set carries the temperature (°C) as the LAST column of each row (named
:data:`TEMPERATURE`, not a netlist parameter). A deck of such rows renders each distinct parameter row once as a
copy and runs every distinct temperature of the batch in turn (``option temp=T``, ``run``, one ``write`` per
analysis); row r is then read from its copy in the plots of its temperature. A batch the engine splits down to
one row is one copy at one temperature, so failures are isolated per (row, temperature) as ever.

A batch whose rows share ONE temperature (always so for a testbench that cannot run as copies: ``.noise``,
``.sp``, …) is the ordinary deck with its ``.temp`` line replaced, run with ngspice's ``-r`` output: a ``.control``
run keeps every vector in memory and costs about twice the CPU (CSVA, 500 copies: 0.19 vs 0.10 s), so the loop is
only worth it where the model set-up dominates (sky130).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiyield.sim.job import SimJob
from optiyield.sim.ngspice.deck import Layout, _rewrite_meas, render
from optiyield.sim.ngspice.rawfile import Plot

#: Name of the row column that holds the simulation temperature in °C (never a netlist parameter).
TEMPERATURE = "@temp"
_TEMP_LINE = re.compile(r"^\.(temp\b|options?\b.*\btemp\s*=)", re.IGNORECASE)


def format_temperature(value: float) -> str:
    """A temperature as ngspice reads it (``-40``, ``27``, ``125.5``)."""
    return f"{value:.10g}"


@dataclass(frozen=True)
class MappedLayout(Layout):
    """A :class:`Layout` whose sample k reads rendered copy ``index[k]`` (and, with a temperature loop, the
    ``.meas`` results of its run, suffixed ``_t<run>``)."""

    index: tuple[int, ...] = ()
    suffix: str = ""

    def node(self, k: int, node: str) -> str | None:
        return super().node(self.index[k], node)

    def source_current(self, k: int, source: str) -> str:
        return super().source_current(self.index[k], source)

    def device(self, k: int, device: str, quantity: str) -> str:
        return super().device(self.index[k], device, quantity)

    def meas_name(self, k: int, name: str) -> str:
        return super().meas_name(self.index[k], name) + self.suffix


@dataclass(frozen=True)
class TemperaturePlan:
    """How the rows of a temperature deck map onto its copies and runs: ``copy[r]`` the rendered copy of row r,
    ``run[r]`` the index of its temperature in ``temperatures`` (the order of the runs), ``kinds`` the analyses
    each run writes (in order), ``points`` copies per sample (a sweep), ``copies`` whether the deck has copies,
    ``loop`` whether the deck re-runs the circuit per temperature from a control block (else it is an ordinary deck
    at its one temperature, whose plots are all that temperature's)."""

    copy: tuple[int, ...]
    run: tuple[int, ...]
    temperatures: tuple[float, ...]
    kinds: tuple[str, ...]
    points: int
    copies: bool
    loop: bool = True

    def check(self, plots: list[Plot]) -> str | None:
        """Why the plots of a run do not match this plan (a missing run or analysis), or None."""
        if not self.loop:
            return None
        expected = [kind for _ in self.temperatures for kind in self.kinds]
        found = [plot.kind for plot in plots]
        if found != expected:
            return (f"the temperature runs wrote plots {', '.join(found) or 'none'}; expected "
                    f"{', '.join(expected)} ({len(self.temperatures)} temperatures)")
        return None

    def groups(self, plots: list[Plot], stdout: str,
               waveforms: Callable[..., Any]) -> list[tuple[float, np.ndarray, Any]]:
        """Per temperature: (°C, the rows at it, their waveforms made by ``waveforms(plots, layout, count,
        stdout)``)."""
        out = []
        width = len(self.kinds)
        run_of = np.asarray(self.run)
        copy_of = np.asarray(self.copy)
        for index, temperature in enumerate(self.temperatures):
            rows = np.flatnonzero(run_of == index)
            if not len(rows):
                continue
            flat = tuple(int(c) * self.points + j for c in copy_of[rows] for j in range(self.points))
            layout = MappedLayout(copies=self.copies, index=flat, suffix=f"_t{index + 1}" if self.loop else "")
            chosen = plots[index * width:(index + 1) * width] if self.loop else plots
            out.append((temperature, rows, waveforms(chosen, layout, len(flat), stdout)))
        return out


class TemperatureWaveforms:
    """The results of a temperature deck: :meth:`groups` splits them by temperature, each group an ordinary
    Waveforms over its rows (the corner extractor measures each group at its own temperature)."""

    def __init__(self, plan: TemperaturePlan, plots: list[Plot], count: int, stdout: str,
                 waveforms: Callable[..., Any]) -> None:
        self.plan, self.plots, self.count, self.stdout, self._waveforms = plan, plots, count, stdout, waveforms

    def groups(self) -> list[tuple[float, np.ndarray, Any]]:
        """(temperature °C, row indices, Waveforms of those rows) for every temperature of the deck."""
        return self.plan.groups(self.plots, self.stdout, self._waveforms)

    def kinds(self) -> tuple[str, ...]:
        """Analyses present in the results."""
        return tuple(dict.fromkeys(p.kind for p in self.plots))


def _at_temperature(job: SimJob, temperature: float) -> SimJob:
    """The job whose netlist sets ``.temp`` to ``temperature`` (its own ``.temp``/``.options temp=`` lines dropped)."""
    netlist = job.netlist
    hoisted = tuple(line for line in netlist.hoisted if not _TEMP_LINE.match(line.strip()))
    hoisted += (f".temp {format_temperature(temperature)}",)
    return dataclasses.replace(job, netlist=dataclasses.replace(netlist, hoisted=hoisted))


def render_temperatures(job: SimJob, rows: np.ndarray, *, gentle: bool = False,
                        raw_path: str = "out.raw") -> tuple[str, int, TemperaturePlan]:
    """Render rows (K, len(job.names)) whose last column is the temperature: the deck text, the number of
    values the extractor reads (rows × sweep points) and the :class:`TemperaturePlan` that maps rows to copies
    and runs."""
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    names = job.names[:-1]
    params, temps = rows[:, :-1], rows[:, -1]
    points = len(job.sweep[1]) if job.sweep else 1
    kinds = tuple(dict.fromkeys(job.netlist.analysis_kinds))
    if not job.copies and rows.shape[0] != 1:
        raise ValueError("single mode renders exactly one sample")
    unique: dict[bytes, int] = {}
    first: list[int] = []
    copy = []
    for r, row in enumerate(params):
        key = np.ascontiguousarray(row).tobytes()
        if key not in unique:
            unique[key] = len(unique)
            first.append(r)
        copy.append(unique[key])
    distinct = params[first]
    order: dict[float, int] = {}
    run = tuple(order.setdefault(float(t), len(order)) for t in temps)
    if len(order) == 1:  # one temperature: the ordinary deck at it (ngspice's -r output, half the CPU of a loop)
        single = _at_temperature(job, float(temps[0]))
        text, _ = render(single.netlist, names, distinct, raw_path, copies=job.copies, options=job.options,
                         gentle=gentle, saves=job.saves, sweep=job.sweep)
        plan = TemperaturePlan(copy=tuple(copy), run=run, temperatures=tuple(order), kinds=kinds, points=points,
                               copies=job.copies, loop=False)
        return text, rows.shape[0] * points, plan
    netlist = dataclasses.replace(job.netlist, measures=())
    text, _ = render(netlist, names, distinct, raw_path, copies=True, options=job.options, gentle=gentle,
                     saves=job.saves, sweep=job.sweep)
    block = [".control", "set appendwrite"]
    for index, temperature in enumerate(order, start=1):
        block += [f"option temp={format_temperature(temperature)}", "run"]
        for line in job.netlist.measures:
            kind = line.split()[1].lower()
            block.append(f"setplot {kind}{index}")
            for k in range(len(unique) * points):
                parts = _rewrite_meas(line, k).split(maxsplit=3)
                block.append(" ".join([parts[0], parts[1], f"{parts[2]}_t{index}", *parts[3:]]))
        for kind in kinds:
            block += [f"setplot {kind}{index}", f"write {raw_path}"]
    block += ["quit", ".endc", ".end"]
    body = text.rstrip()
    body = body[: -len(".end")].rstrip() if body.endswith(".end") else body
    plan = TemperaturePlan(copy=tuple(copy), run=run, temperatures=tuple(order), kinds=kinds, points=points,
                           copies=True)
    return body + "\n" + "\n".join(block) + "\n", rows.shape[0] * points, plan


__all__ = ["TEMPERATURE", "MappedLayout", "TemperaturePlan", "TemperatureWaveforms", "format_temperature",
           "render_temperatures"]
