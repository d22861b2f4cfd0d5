"""PVT corners of a spec: process × supply (any netlist parameter) × temperature, validated and expanded.

A spec's ``corners:`` lists the conditions every spec must hold at (docs/corners.md)::

    corners:
      process: [tt, ff, ss]           # process corners: PDK sections and/or the parameter sets below
      processes:                      # a process corner as fixed parameter values (and/or a model section)
        tt: {}
        ff: {dvth: -45m, mu: 1.09}
        ss: {dvth: 45m, mu: 0.91}
      VDD: [-10%, 0%, +10%]           # any other key is a netlist .param: absolute values, or % of its nominal
      temp: [-40, 27, 125]            # °C
      named:                          # corners beyond the product, each a full set of values
        - {name: hot_slow_low, process: ss, VDD: -10%, temp: 125}
      monte_carlo: mismatch           # false (nominal at each corner), mismatch, or true (all remaining variation)
      temperature_runs: auto          # process: a deck's temperatures re-run in one ngspice process; decks: one
                                      # deck per temperature; auto: process for a PDK or .lib section, else decks

The axes expand to every combination (process × parameters × temperature, in that order, temperature fastest),
followed by the named corners. A corner *fixes* every parameter any corner sets (at its nominal value where a
corner gives none), so ``tt`` means "the process parameters at their typical values", and the Monte Carlo inside a
corner samples only the rest: ``mismatch`` the ``mode: mismatch`` entries, ``true`` every entry. The same outcome
deviates apply at every corner (common random numbers).

How a corner runs (docs/corners.md, measured): a model-library section is a deck of its own (two sections cannot
share one); parameters are columns of the rows, so copies at different supplies or process parameters share a
deck; temperatures either re-run one parsed deck in one ngspice process (:mod:`optiyield.sim.ngspice.temperature`:
0.41x the CPU of separate decks for the sky130 OTA, whose model set-up dominates) or get a deck each (ngspice's
``-r`` batch output costs half the CPU of a ``.control`` run for the 45 nm BSIM4 cards, whose load is cheap).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optiyield.errors import SpecError
from optiyield.netlist import NetlistError
from optiyield.netlist.includes import content
from optiyield.pdk import with_section
from optiyield.sim.job import Extraction, SimJob
from optiyield.sim.ngspice.temperature import TEMPERATURE, format_temperature
from optiyield.testbench import Testbench, simulation_temperature
from optiyield.units import UnitError, format_eng, parse_eng

#: Keys of ``corners:`` that are not parameter axes.
RESERVED = ("process", "processes", "temp", "named", "monte_carlo", "temperature_runs")
#: At most this many corners (a product grows fast; each corner multiplies every simulation).
MAX_CORNERS = 1000
#: Absolute zero, °C.
ABSOLUTE_ZERO = -273.15
_LIB_LINE = re.compile(r'^\.lib\s+"([^"]+)"\s+(\S+)\s*$', re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9_.+\-=/%]{1,80}$")


@dataclass(frozen=True)
class CornerValue:
    """A corner's value of one parameter: absolute (SI), or ``relative`` to its nominal (0.1 = +10 %)."""

    value: float
    relative: bool = False

    def apply(self, nominal: float) -> float:
        """The parameter's value at the corner, given its nominal value."""
        return nominal * (1.0 + self.value) if self.relative else self.value

    @property
    def text(self) -> str:
        """``1.08`` or ``+10%``."""
        if self.relative:
            return "0%" if self.value == 0 else f"{self.value * 100:+.6g}%"
        return format_eng(self.value)


def corner_value(value: Any) -> CornerValue:
    """Parse a corner value: a number (engineering notation allowed, ``1.08``, ``45m``) or a percentage of the
    nominal value (``-10%``, ``+10%``, ``0%``); ValueError says what is expected."""
    if isinstance(value, CornerValue):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a number or a percentage such as -10%, got {value!r}")
    relative = isinstance(value, str) and value.strip().endswith("%")
    try:
        number = parse_eng(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return CornerValue(number, relative)


def _values(value: Any) -> tuple[CornerValue, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of values, e.g. [1.08, 1.2, 1.32] or [-10%, 0%, +10%], got {value!r}")
    if not value:
        raise ValueError("empty list: give at least one value (or leave the axis out)")
    return tuple(corner_value(v) for v in value)


def _temperature(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a temperature in °C, got {value!r}")
    try:
        number = parse_eng(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    if not math.isfinite(number) or number <= ABSOLUTE_ZERO:
        raise ValueError(f"{value!r} °C is below absolute zero (or not a number)")
    return number


class ProcessDef(BaseModel):
    """A process corner: a model-library ``section`` and/or fixed parameter values (the other keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    section: str | None = None
    values: dict[str, Any] = {}  # parameter → value as written (checked by build_corners, which names the key)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping of parameter values (and optionally `section`), got {data!r}")
        return {"section": data.get("section"), "values": {str(k): v for k, v in data.items() if k != "section"}}


class NamedCorner(BaseModel):
    """One explicit corner: ``name``, optional ``process``, ``temp`` and ``monte_carlo``, and parameter values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    process: str | None = None
    temp: float | None = None
    monte_carlo: bool | Literal["mismatch"] | None = None
    values: dict[str, Any] = {}  # parameter → value as written (checked by build_corners, which names the key)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping such as {{name: hot, process: ss, temp: 125}}, got {data!r}")
        known = {"name", "process", "temp", "monte_carlo"}
        values = {str(k): v for k, v in data.items() if k not in known}
        out = {k: data[k] for k in known if k in data}
        if out.get("temp") is not None:
            out["temp"] = _temperature(out["temp"])
        return {**out, "values": values}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"corner name {value!r}: use 1-80 letters, digits and _ . + - = / %")
        return value


class CornersFile(BaseModel):
    """Schema of ``corners:`` (see the module docstring). Keys other than the reserved ones are parameter axes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    process: tuple[str, ...] | None = None
    processes: dict[str, ProcessDef] = {}
    temp: tuple[float, ...] | None = None
    named: tuple[NamedCorner, ...] = ()
    monte_carlo: bool | Literal["mismatch"] = False
    temperature_runs: Literal["auto", "process", "decks"] = "auto"
    axes: dict[str, Any] = Field(default_factory=dict)  # parameter → values as written (build_corners checks them)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("expected a mapping: process, processes, temp, named, monte_carlo and parameter "
                             "axes such as VDD: [1.08, 1.2, 1.32]")
        if "axes" in data:
            raise ValueError("`axes` is not a key of corners: write each parameter axis under its own name")
        axes = {str(k): v for k, v in data.items() if k not in RESERVED}
        return {**{k: data[k] for k in RESERVED if k in data}, "axes": axes}

    @field_validator("process", mode="before")
    @classmethod
    def _process(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and not value:
            raise ValueError("empty list: give at least one process corner (or leave the axis out)")
        return value

    @field_validator("temp", mode="before")
    @classmethod
    def _temps(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            value = [value]
        if not value:
            raise ValueError("empty list: give at least one temperature in °C (or leave the axis out)")
        return tuple(_temperature(v) for v in value)


@dataclass(frozen=True)
class Corner:
    """One operating condition: its ``name``, ``process`` corner name, model-library ``section`` (None: the
    testbench's own), ``temperature`` in °C (None: the netlist's), fixed parameter ``values`` and what is sampled
    inside it (``monte_carlo``: ``none``, ``mismatch`` or ``all``)."""

    name: str
    process: str | None
    section: str | None
    temperature: float | None
    values: tuple[tuple[str, CornerValue], ...]
    monte_carlo: Literal["none", "mismatch", "all"]

    def describe(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"name": self.name, "process": self.process, "section": self.section,
                "temperature": self.temperature, "values": {p: v.text for p, v in self.values},
                "monte_carlo": self.monte_carlo}


@dataclass(frozen=True)
class CornerSet:
    """The expanded, validated corners of a spec, and what running them needs.

    ``sections`` are the distinct model-library sections (None: the testbench as written), each with its
    ``testbenches[section]``; ``extra`` the corner parameters that are not spec parameters (extra row columns);
    ``fixed`` every parameter some corner sets (fixed at every corner); ``temperatures`` whether some corner sets
    a temperature (the others run at ``default_temperature``); ``in_process`` whether the temperatures of a deck
    re-run in one ngspice process (else each temperature is a deck of its own)."""

    corners: tuple[Corner, ...]
    sections: tuple[str | None, ...]
    testbenches: tuple[Testbench, ...]
    extra: tuple[str, ...]
    extra_nominal: tuple[float, ...]
    fixed: tuple[str, ...]
    temperatures: bool
    default_temperature: float
    in_process: bool = True

    def __len__(self) -> int:
        return len(self.corners)

    @property
    def names(self) -> tuple[str, ...]:
        """The corner names, in order."""
        return tuple(c.name for c in self.corners)

    def section_index(self, corner: Corner) -> int:
        """Index of a corner's section in :attr:`sections`."""
        return self.sections.index(corner.section)

    def temperature(self, corner: Corner) -> float:
        """A corner's temperature in °C (the netlist's when it sets none)."""
        return self.default_temperature if corner.temperature is None else corner.temperature

    def at(self, corner: Corner, nominal: Mapping[str, float]) -> dict[str, float]:
        """The nominal point at a corner: every fixed parameter at the corner's value (absolute, or relative to
        ``nominal``), or at its nominal value when the corner gives none."""
        point = dict(nominal)
        given = dict(corner.values)
        for name in self.fixed:
            if name in given:
                point[name] = given[name].apply(nominal[name])
        return point

    def job_key(self, corner: Corner) -> tuple[int, float | None]:
        """The engine job a corner's rows go to: its section, and its temperature when temperatures are decks of
        their own (None: the job's rows carry their temperature)."""
        temperature = self.temperature(corner) if self.temperatures and not self.in_process else None
        return self.sections.index(corner.section), temperature

    @property
    def job_keys(self) -> tuple[tuple[int, float | None], ...]:
        """Every job key, in corner order."""
        return tuple(dict.fromkeys(self.job_key(c) for c in self.corners))

    @property
    def temperature_column(self) -> bool:
        """True when engine rows carry the temperature as their last column (temperatures in one process)."""
        return self.temperatures and self.in_process

    def jobs(self, parameters: Sequence[str]) -> dict[tuple[int, float | None], SimJob]:
        """One engine job per :attr:`job_keys` entry, varying ``parameters`` and the extra corner parameters per row
        (then the temperature, as the rows' last column, when temperatures run in one process)."""
        names = (*parameters, *self.extra)
        steps = len({self.temperature(c) for c in self.corners})
        out = {}
        for key in self.job_keys:
            section, temperature = key
            testbench = self.testbenches[section]
            if temperature is not None:
                testbench = with_temperature(testbench, temperature)
            job = testbench.job(names)
            if self.temperature_column:
                job = dataclasses.replace(job, names=(*names, TEMPERATURE), temperature=True,
                                          batch_size=job.batch_size * steps, extract=TemperatureExtract(testbench))
            out[key] = job
        return out

    def identity(self, parameters: Sequence[str]) -> str:
        """A digest of the corners and every section's job (the store keys corner rows by it)."""
        payload = {"corners": [c.describe() for c in self.corners], "fixed": list(self.fixed),
                   "extra": list(self.extra), "temperatures": self.temperatures, "in_process": self.in_process,
                   "jobs": [job.fingerprint for job in self.jobs(parameters).values()]}
        return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class TemperatureExtract:
    """The extractor of a temperature job: measures each temperature's rows with the testbench at that
    temperature (a noise figure needs it) and puts the values back in row order."""

    testbench: Testbench

    def __call__(self, waveforms: Any, count: int) -> Extraction:
        values: dict[str, np.ndarray] = {}
        bad: list[str | None] = [None] * count
        notes: list[str | None] = [None] * count
        for temperature, rows, group in waveforms.groups():
            found = with_temperature(self.testbench, temperature).extract(group, len(rows))
            for name, column in found.values.items():
                values.setdefault(name, np.full(count, np.nan))[rows] = column
            for k, row in enumerate(rows):
                bad[row] = found.bad[k]
                notes[row] = found.notes[k] if found.notes is not None else None
        return Extraction(values, bad, notes)


_TEMP_LINE = re.compile(r"^\.(temp\b|options?\b.*\btemp\s*=)", re.IGNORECASE)


def with_temperature(testbench: Testbench, temperature: float) -> Testbench:
    """``testbench`` with its netlist's ``.temp`` set to ``temperature`` (°C)."""
    netlist = testbench.netlist
    hoisted = tuple(line for line in netlist.hoisted if not _TEMP_LINE.match(line.strip()))
    hoisted += (f".temp {format_temperature(temperature)}",)
    return dataclasses.replace(testbench, netlist=dataclasses.replace(netlist, hoisted=hoisted))


def with_lib_section(testbench: Testbench, section: str, where: str) -> Testbench:
    """``testbench`` with the section of its one ``.lib "FILE" SECTION`` line swapped for ``section`` (a
    testbench without ``pdk:`` whose netlist includes a sectioned model library). ValueError when there is no
    such line, several, or the library has no such section."""
    lines = [(i, m) for i, line in enumerate(testbench.netlist.hoisted) if (m := _LIB_LINE.match(line.strip()))]
    if not lines:
        raise ValueError(f"process corner section {section!r}: the testbench names no model library section "
                         "(`pdk:` in testbench.yaml, or a `.lib \"FILE\" SECTION` line in the netlist)")
    if len({m[1] for _, m in lines}) > 1:
        raise ValueError(f"process corner section {section!r}: the netlist has .lib lines of several libraries "
                         f"({', '.join(sorted({m[1] for _, m in lines}))}); which one the section names is unclear")
    hoisted = list(testbench.netlist.hoisted)
    for index, match in lines:
        hoisted[index] = f'.lib "{match[1]}" {section}'
    try:
        content(hoisted[lines[0][0]], where)
    except NetlistError as exc:
        raise ValueError(str(exc)) from None
    return dataclasses.replace(testbench, netlist=dataclasses.replace(testbench.netlist, hoisted=tuple(hoisted)))


def _sections_of(testbench: Testbench) -> tuple[str, ...] | None:
    """The sections a process name may name directly: the PDK's, else None."""
    return testbench.pdk[0].sections if testbench.pdk is not None else None


def build_corners(file: CornersFile, testbench: Testbench, design: Sequence[str], parameters: Sequence[str],
                  source: str | Path) -> CornerSet:
    """Expand and check ``corners:`` against the testbench and the spec's parameters; :class:`SpecError` names
    the key (``corners.process``, ``corners.VDD``, ``corners.named[1].temp``) and what is wrong."""
    netlist_name = testbench.netlist.path.name
    spelled = {p.lower(): p for p in parameters}
    sweep = testbench.sweep.param.lower() if testbench.sweep is not None else None

    def parameter(name: str, where: str, value: CornerValue) -> str:
        if not testbench.has_param(name):
            raise SpecError(source, where, f"no `.param {name}` in {netlist_name} (a corner axis is a netlist "
                            f"parameter, or one of {', '.join(RESERVED)})")
        if name.lower() == sweep:
            raise SpecError(source, where, f"{name} is swept by the testbench; it cannot also be a corner parameter")
        canonical = spelled.get(name.lower(), name)
        if canonical in design and not value.relative:
            raise SpecError(source, where, f"{canonical} is a design variable: give its corner values relative to "
                            "the design, e.g. [-10%, 0%, +10%]")
        if canonical not in parameters and testbench.nominal(canonical) is None:
            raise SpecError(source, where, f"the netlist default of {canonical} must be a number (a corner value "
                            "relative to it, or the value at corners that do not set it)")
        return canonical

    def parse(raw: Any, where: str, many: bool = False) -> Any:
        try:
            return _values(raw) if many else corner_value(raw)
        except ValueError as exc:
            raise SpecError(source, where, str(exc)) from None

    def values(items: Mapping[str, Any], where: str) -> tuple[tuple[str, CornerValue], ...]:
        out: dict[str, CornerValue] = {}
        for name, raw in items.items():
            value = parse(raw, f"{where}.{name}")
            canonical = parameter(name, f"{where}.{name}", value)
            if canonical in out:
                raise SpecError(source, f"{where}.{name}", f"{canonical} is given twice")
            out[canonical] = value
        return tuple(out.items())

    section_testbench: dict[str | None, Testbench] = {None: testbench}

    def section_of(section: str, where: str) -> str:
        if section not in section_testbench:
            try:
                if testbench.pdk is not None:
                    section_testbench[section] = with_section(testbench, section)
                else:
                    section_testbench[section] = with_lib_section(testbench, section, f"{source}: {where}")
            except ValueError as exc:
                raise SpecError(source, where, str(exc)) from None
        return section

    processes: dict[str, tuple[str | None, tuple[tuple[str, CornerValue], ...]]] = {}
    for name, definition in file.processes.items():
        where = f"corners.processes.{name}"
        section = section_of(definition.section, f"{where}.section") if definition.section is not None else None
        processes[name] = (section, values(definition.values, where))

    def process(name: str, where: str) -> tuple[str | None, tuple[tuple[str, CornerValue], ...]]:
        if name in processes:
            return processes[name]
        sections = _sections_of(testbench)
        if sections is not None and name in sections:
            return section_of(name, where), ()
        if sections is None and any(_LIB_LINE.match(line.strip()) for line in testbench.netlist.hoisted):
            return section_of(name, where), ()
        known = list(processes) + list(sections or ())
        raise SpecError(source, where, f"unknown process corner {name!r}: define it under corners.processes (its "
                        "parameter values and/or `section`)" + (f"; known: {', '.join(known)}" if known else ""))

    mc_mode = {False: "none", True: "all", "mismatch": "mismatch"}
    corners: list[Corner] = []
    parsed = {name: parse(raw, f"corners.{name}", many=True) for name, raw in file.axes.items()}
    axes = {name: (parameter(name, f"corners.{name}", values_[0]), values_) for name, values_ in parsed.items()}
    for name, (_, values_) in axes.items():
        for value in values_:
            parameter(name, f"corners.{name}", value)
    canonical_axes = [canonical for canonical, _ in axes.values()]
    duplicate = sorted({p for p in canonical_axes if canonical_axes.count(p) > 1})
    if duplicate:
        raise SpecError(source, "corners", f"{duplicate[0]} is given as two axes (names are case-insensitive)")
    process_names = file.process if file.process is not None else (tuple(file.processes) or None)
    has_product = process_names is not None or bool(axes) or file.temp is not None
    if not has_product and not file.named:
        raise SpecError(source, "corners", "no corner: give process, temp, a parameter axis (e.g. VDD: [1.08, 1.2, "
                        "1.32]) or named corners")
    if has_product:
        count = math.prod([len(process_names or (None,)), *(len(v) for _, v in axes.values()),
                           len(file.temp or (None,))])
        if count + len(file.named) > MAX_CORNERS:
            raise SpecError(source, "corners", f"{count + len(file.named)} corners: at most {MAX_CORNERS} (each "
                            "corner multiplies every simulation)")
        resolved = [(p, *process(p, "corners.process")) if p is not None else (None, None, ())
                    for p in (process_names or (None,))]
        for (pname, section, pvalues), *picked, temp in itertools.product(
                resolved, *([(canonical, v) for v in vs] for canonical, vs in axes.values()), file.temp or (None,)):
            parts = [pname] if pname is not None else []
            parts += [f"{p}={v.text}" for p, v in picked]
            if temp is not None:
                parts.append(f"{temp:g}C")
            given = dict(pvalues)
            for p, v in picked:
                given[p] = v
            corners.append(Corner(name="/".join(parts), process=pname, section=section, temperature=temp,
                                  values=tuple(given.items()), monte_carlo=mc_mode[file.monte_carlo]))  # type: ignore[arg-type]
    for index, named in enumerate(file.named):
        where = f"corners.named[{index}]"
        section, pvalues = process(named.process, f"{where}.process") if named.process is not None else (None, ())
        given = dict(pvalues)
        given.update(values(named.values, where))
        mode = file.monte_carlo if named.monte_carlo is None else named.monte_carlo
        corners.append(Corner(name=named.name, process=named.process, section=section, temperature=named.temp,
                              values=tuple(given.items()), monte_carlo=mc_mode[mode]))  # type: ignore[arg-type]
    names = [c.name for c in corners]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise SpecError(source, "corners.named", f"corner name {twice!r} is used twice")
    fixed = tuple(dict.fromkeys(p for c in corners for p, _ in c.values))
    extra = tuple(p for p in fixed if p not in parameters)
    sections = tuple(dict.fromkeys(c.section for c in corners))
    temperatures = any(c.temperature is not None for c in corners)
    heavy = testbench.pdk is not None or any(_LIB_LINE.match(line.strip()) for line in testbench.netlist.hoisted)
    in_process = file.temperature_runs == "process" or (file.temperature_runs == "auto" and heavy)
    return CornerSet(corners=tuple(corners), sections=sections,
                     testbenches=tuple(section_testbench[s] for s in sections), extra=extra,
                     extra_nominal=tuple(float(testbench.nominal(p)) for p in extra),  # type: ignore[arg-type]
                     fixed=fixed, temperatures=temperatures,
                     default_temperature=simulation_temperature(testbench.netlist), in_process=in_process)


__all__ = ["ABSOLUTE_ZERO", "MAX_CORNERS", "Corner", "CornerSet", "CornerValue", "CornersFile", "NamedCorner",
           "ProcessDef", "TemperatureExtract", "build_corners", "corner_value", "with_lib_section",
           "with_temperature"]
