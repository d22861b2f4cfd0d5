"""Testbench definitions: a netlist plus named measurements, written by a user without Python.

A ``testbench.yaml`` next to the netlist::

    name: csva
    netlist: netlist.cir              # runnable ngspice deck with .param defaults and analyses
    measures:
      power:   {fn: dc_power, supply: VDD}
      gain_db: {fn: lf_gain_db, out: vout}          # v(out) / v(in); `in` optional (ac source mag 1)
      bw:      {fn: bandwidth_3db, out: vout}
      gmax:    {meas: gmax}                         # a .meas result of the netlist
    batch_size: 500                   # copies per ngspice run
    timeout: 60                       # s, wall-clock limit of one ngspice run
    transistors: [M1]                 # devices the region check wants in saturation (staged BFGS)

Every ``.meas`` line of the netlist is also a measure under its own name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optiyield.errors import SpecError, load_validated
from optiyield.measure import rf
from optiyield.measure.catalog import CATALOG, MeasureFunction
from optiyield.measure.noise import noise_density_at
from optiyield.netlist import Netlist, NetlistError, parse_netlist
from optiyield.sim.deck import Layout, meas_replicable
from optiyield.sim.engine import SimJob
from optiyield.sim.runner import RunOutcome
from optiyield.units import UnitError, parse_eng

#: Analyses that cannot be replicated as copies in one deck (one output or fixed port numbering).
SINGLE_ONLY = {"noise", "sp", "pss", "sens", "tf", "pz", "disto"}

Nodes = str | tuple[str, str]




def _nodes(value: Any) -> Nodes:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return (value[0].lower(), value[1].lower())
    raise ValueError(f"expected a node name or a pair [plus, minus], got {value!r}")


class MeasureDef(BaseModel):
    """One named measure of a testbench: a library function with its bindings, or a ``.meas`` name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    fn: str | None = None
    meas: str | None = None
    out: Nodes | None = None
    in_: Nodes | None = Field(default=None, alias="in")
    supply: tuple[str, ...] | None = None
    node: str | None = None
    source: str | None = None
    f: float | None = None
    ref: Literal["lf", "peak"] | None = None
    z0: float | None = None  # ohm: port-1 (source) reference resistance of the RF measures
    zl: float | None = None  # ohm: port-2 load resistance of the RF measures
    t0: float | None = None  # K: source temperature of a noise figure (default 290, IEEE)

    @field_validator("out", "in_", mode="before")
    @classmethod
    def _check_nodes(cls, value: Any) -> Any:
        return None if value is None else _nodes(value)

    @field_validator("supply", mode="before")
    @classmethod
    def _supply_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("f", "z0", "zl", "t0", mode="before")
    @classmethod
    def _eng(cls, value: Any) -> Any:
        try:
            return None if value is None else parse_eng(value)
        except UnitError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> MeasureDef:
        if (self.fn is None) == (self.meas is None):
            raise ValueError("give exactly one of `fn` (a library function) or `meas` (a .meas result name)")
        if self.meas is not None:
            return self
        if self.fn not in CATALOG:
            raise ValueError(f"unknown measure function {self.fn!r}; expected one of {', '.join(CATALOG)}")
        spec = CATALOG[self.fn]
        need = {"transfer": ("out",), "supply": ("supply",), "node": ("node",), "source": ("source",),
                "noise": (), "port": (), "port_noise": ()}[spec.binding] + spec.requires
        allowed = set(need) | set(spec.options) | ({"in_"} if spec.binding == "transfer" else set())
        for key in need:
            if getattr(self, key) is None:
                raise ValueError(f"{self.fn} needs `{key.rstrip('_')}`")
        for key in ("out", "in_", "supply", "node", "source", "f", "ref", "z0", "zl", "t0"):
            if getattr(self, key) is not None and key not in allowed:
                raise ValueError(f"{self.fn} does not take `{key.rstrip('_')}`")
        if spec.options == ("f",) and self.f is None:
            raise ValueError(f"{self.fn} needs `f` (a frequency such as 1G)")
        return self


class TestbenchFile(BaseModel):
    """Schema of ``testbench.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    netlist: str
    models: tuple[str, ...] = ()
    analyses: tuple[str, ...] = ()
    measures: dict[str, MeasureDef] = {}
    replicate: Literal["auto", True, False] = "auto"
    batch_size: int = Field(500, ge=1, le=20000)
    timeout: float = Field(60.0, gt=0)
    options: str = ""
    transistors: tuple[str, ...] = ()

    @field_validator("timeout", mode="before")
    @classmethod
    def _eng_timeout(cls, value: Any) -> Any:
        try:
            return parse_eng(value)
        except UnitError as exc:
            raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Testbench:
    """A loaded testbench: parsed netlist, measures, and how to run it."""

    name: str
    netlist: Netlist
    measures: dict[str, MeasureDef]
    copies: bool
    batch_size: int
    timeout: float
    options: str
    source: Path | None = None
    transistors: tuple[str, ...] = ()

    @property
    def measure_names(self) -> tuple[str, ...]:
        """All measures: the declared ones, then ``.meas`` results not declared under another name."""
        return tuple(self.measures)

    def unit(self, measure: str) -> str:
        """SI unit of a measure (empty for ``.meas`` results, whose unit ngspice does not say)."""
        definition = self.measures[measure]
        return CATALOG[definition.fn].unit if definition.fn else ""

    def nominal(self, name: str) -> float | None:
        """Numeric ``.param`` default of a netlist parameter (None if absent or an expression)."""
        return self.netlist.param_value(name)

    def has_param(self, name: str) -> bool:
        """True when the netlist declares ``.param name``."""
        return name.lower() in self.netlist.params

    def job(self, names: Sequence[str]) -> SimJob:
        """The engine job simulating this testbench with ``names`` varied per sample."""
        expected = tuple(dict.fromkeys(k for k in self.netlist.analysis_kinds if k in ("op", "ac", "dc", "tran")))
        return SimJob(netlist=self.netlist, names=tuple(names), measures=self.measure_names,
                      extract=self.extract, copies=self.copies, batch_size=self.batch_size,
                      timeout=self.timeout, options=self.options, expected=expected)

    def extract(
        self, outcome: RunOutcome, layout: Layout, count: int
    ) -> tuple[dict[str, np.ndarray], list[str | None]]:
        """Compute every measure for the ``count`` samples of one run (vectorised over samples).

        A sample whose vectors hold non-finite values is reported as bad (its simulation is unusable);
        a measure that is undefined for a sample (e.g. no -3 dB crossing) is NaN but not a failure.
        """
        reader = _VectorReader(outcome, layout, count)
        values: dict[str, np.ndarray] = {}
        meas_values = _parse_meas(outcome.stdout) if self.netlist.measures else {}
        for name, definition in self.measures.items():
            if definition.meas is not None:
                key = definition.meas.lower()
                values[name] = np.array([meas_values.get(layout.meas_name(k, key), np.nan) for k in range(count)])
            else:
                values[name] = _evaluate(definition, reader, self.netlist)
        return values, reader.bad


class _VectorReader:
    """Gathers (count, points) arrays of one vector across copies, remembering non-finite samples."""

    def __init__(self, outcome: RunOutcome, layout: Layout, count: int) -> None:
        self.outcome, self.layout, self.count = outcome, layout, count
        self.bad: list[str | None] = [None] * count
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def _gather(self, kind: str, names: list[str | None], label: str) -> np.ndarray:
        plot = self.outcome.plot(kind)
        present = [n for n in names if n is not None]
        block = np.zeros((self.count, plot.points), dtype=plot.data.dtype)
        if present:
            rows = [k for k, n in enumerate(names) if n is not None]
            block[rows] = plot.columns(present)
        finite = np.isfinite(block).all(axis=1)
        for k in np.flatnonzero(~finite):
            self.bad[k] = self.bad[k] or f"non-finite values in {label} ({kind})"
        return block

    def node(self, kind: str, node: str) -> np.ndarray:
        key = (kind, f"v:{node}")
        if key not in self._cache:
            names = [self.layout.node(k, node) for k in range(self.count)]
            self._cache[key] = self._gather(kind, names, f"v({node})")
        return self._cache[key]

    def nodes(self, kind: str, nodes: Nodes) -> np.ndarray:
        if isinstance(nodes, tuple):
            return self.node(kind, nodes[0]) - self.node(kind, nodes[1])
        return self.node(kind, nodes)

    def current(self, kind: str, source: str) -> np.ndarray:
        key = (kind, f"i:{source}")
        if key not in self._cache:
            names: list[str | None] = [self.layout.source_current(k, source) for k in range(self.count)]
            self._cache[key] = self._gather(kind, names, f"i({source})")
        return self._cache[key]

    def vector(self, kind: str, name: str) -> np.ndarray:
        """A vector that is not per copy (single-sample decks only, e.g. ``onoise_spectrum``)."""
        key = (kind, name)
        if key not in self._cache:
            self._cache[key] = self._gather(kind, [name] * self.count, name)
        return self._cache[key]

    def axis(self, kind: str) -> np.ndarray:
        plot = self.outcome.plot(kind)
        name = {"ac": "frequency", "tran": "time", "noise": "frequency"}.get(kind)
        if name is None or name not in plot:
            name = next(iter(plot.index))
        return np.real(plot[name])


def _evaluate(definition: MeasureDef, reader: _VectorReader, netlist: Netlist) -> np.ndarray:
    spec = CATALOG[definition.fn or ""]
    kind = spec.analysis
    if spec.binding == "transfer":
        out = reader.nodes(kind, definition.out)  # type: ignore[arg-type]
        h = out / reader.nodes(kind, definition.in_) if definition.in_ is not None else out
        kwargs: dict[str, Any] = {}
        if definition.f is not None:
            kwargs["f"] = definition.f
        if definition.ref is not None:
            kwargs["ref"] = definition.ref
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(spec.function(reader.axis(kind), h, **kwargs), dtype=float)
    if spec.binding == "supply":
        terms = []
        for name in definition.supply or ():
            src = netlist.sources[name.lower()]
            terms.append((reader.node(kind, src.plus)[:, 0].real, reader.node(kind, src.minus)[:, 0].real,
                          reader.current(kind, src.name)[:, 0].real))
        return np.asarray(spec.function(terms), dtype=float)
    if spec.binding == "port":
        return _evaluate_port(definition, spec, reader, netlist)
    if spec.binding == "port_noise":
        t0 = definition.t0 if definition.t0 is not None else rf.T0_IEEE
        temp = simulation_temperature(netlist) + rf.ZERO_CELSIUS
        args = (definition.z0, temp, t0)
        inoise = reader.vector(kind, "inoise_spectrum")
        if definition.f is not None:
            return np.asarray(spec.function(reader.axis(kind), inoise, definition.f, *args), dtype=float)
        return np.asarray(spec.function(inoise, *args), dtype=float)
    if spec.binding == "noise":
        vector = "onoise_spectrum" if definition.fn == "output_noise_at" else "inoise_spectrum"
        return noise_density_at(reader.axis(kind), reader.vector(kind, vector), definition.f or 0.0)
    if spec.binding == "node":
        return np.asarray(spec.function(reader.node(kind, definition.node or "")[:, 0].real), dtype=float)
    return np.asarray(spec.function(reader.current(kind, definition.source or "")[:, 0].real), dtype=float)


def _evaluate_port(definition: MeasureDef, spec: MeasureFunction, reader: _VectorReader,
                   netlist: Netlist) -> np.ndarray:
    """RF measures from .ac: S11 (binding `in`) or S21 (binding `out`) of the ports around `source`."""
    src = netlist.sources[(definition.source or "").lower()]
    v_s = reader.node("ac", src.plus) - reader.node("ac", src.minus)
    z0 = float(definition.z0 or 0.0)
    if definition.in_ is not None:
        # current delivered into the port: ngspice's i(VS) flows from + through the source to -
        x = rf.s11_from_current(reader.nodes("ac", definition.in_), -reader.current("ac", src.name), z0)
    else:
        x = rf.s21(reader.nodes("ac", definition.out), v_s, z0, float(definition.zl or 0.0))  # type: ignore[arg-type]
    args = (definition.f,) if definition.f is not None else ()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(spec.function(reader.axis("ac"), x, *args), dtype=float)


_TEMP_LINE = re.compile(r"^\.(?:temp\s+|options?\b.*\btemp\s*=\s*)([-+]?\d+\.?\d*(?:e[-+]?\d+)?)", re.I)


def simulation_temperature(netlist: Netlist) -> float:
    """Simulation temperature in degrees C: the netlist's ``.temp`` (or ``.options temp=``), else 27."""
    for line in netlist.hoisted:
        match = _TEMP_LINE.match(line.strip())
        if match:
            return float(match[1])
    return 27.0


_MEAS_LINE = re.compile(r"^\s*([a-z_][\w.]*)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|-?nan|-?inf)", re.I | re.M)


def _parse_meas(stdout: str) -> dict[str, float]:
    return {m[1].lower(): float(m[2]) for m in _MEAS_LINE.finditer(stdout)}


def load_testbench(path: str | Path) -> Testbench:
    """Load ``testbench.yaml`` (and its netlist); raises :class:`SpecError` naming file and field."""
    path = Path(path)
    return build_testbench(load_validated(path, TestbenchFile), path.parent, path)


def build_testbench(spec: TestbenchFile, base: Path, file: Path | str) -> Testbench:
    """Resolve a validated testbench description against ``base`` (the folder of its file)."""
    try:
        netlist = parse_netlist(base / spec.netlist)
    except NetlistError as exc:
        raise SpecError(file, "netlist", str(exc)) from None
    if spec.models or spec.analyses:
        models = tuple(f'.include "{(base / m).resolve()}"' for m in spec.models)
        for index, model in enumerate(spec.models):
            if not (base / model).is_file():
                raise SpecError(file, f"models[{index}]", f"model file {model!r} not found next to {file}")
        netlist = Netlist(path=netlist.path, title=netlist.title, params=netlist.params, body=netlist.body,
                          hoisted=models + netlist.hoisted,
                          analyses=tuple(spec.analyses) or netlist.analyses,
                          measures=netlist.measures, sources=netlist.sources)
    if not netlist.analyses:
        raise SpecError(file, "analyses", f"no analysis in {netlist.path.name} and none under `analyses`")
    kinds = set(netlist.analysis_kinds)
    measures = dict(spec.measures)
    declared_meas = {d.meas.lower() for d in measures.values() if d.meas}
    for meas_name in netlist.measure_names:
        if meas_name not in declared_meas and meas_name not in measures:
            measures[meas_name] = MeasureDef(meas=meas_name)
    for name, definition in measures.items():
        where = f"measures.{name}"
        if definition.meas is not None:
            if definition.meas.lower() not in netlist.measure_names:
                raise SpecError(file, f"{where}.meas",
                                f"no `.meas ... {definition.meas} ...` line in {netlist.path.name}")
            continue
        fn = CATALOG[definition.fn or ""]
        if fn.analysis not in kinds:
            raise SpecError(file, where, f"{definition.fn} needs a .{fn.analysis} analysis in {netlist.path.name}")
        for source in (definition.supply or ()) + ((definition.source,) if definition.source else ()):
            if source.lower() not in netlist.sources:
                raise SpecError(file, where, f"no voltage source named {source!r} in {netlist.path.name}"
                                f" (sources: {', '.join(s.name for s in netlist.sources.values()) or 'none'})")
    for line in netlist.measures:
        if line.split()[1].lower() not in ("ac", "dc", "tran", "sp"):
            raise SpecError(file, "netlist", f"{netlist.path.name}: ngspice 39 measures only ac, dc, tran and sp "
                            f"results (`{line}`); use a measure function such as output_noise_at instead")
    replicable = not (kinds & SINGLE_ONLY) and all(meas_replicable(m) for m in netlist.measures)
    if spec.replicate is True and not replicable:
        raise SpecError(file, "replicate", "this testbench cannot be replicated as copies "
                        f"(analyses {', '.join(sorted(kinds & SINGLE_ONLY)) or 'none'} or a .meas with par()/@)")
    copies = replicable if spec.replicate == "auto" else bool(spec.replicate)
    return Testbench(name=spec.name, netlist=netlist, measures=measures, copies=copies,
                     batch_size=spec.batch_size, timeout=spec.timeout, options=spec.options,
                     source=Path(file) if file else None, transistors=spec.transistors)
