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
    parasitics: regression            # none (default) | regression: add Cgs/Cgd/Cds to every MOSFET
    parasitic_coefficients: fit.yaml  # optional: coefficients (a mapping or a file), default the VGA paper's
    compat: hsa                       # ngspice compatibility mode (set ngbehavior=hsa in the spinit), e.g. for sky130
    pdk: {name: sky130, section: tt}  # a PDK's model library (optiyield/pdk), .lib-included before the netlist
    warm_start: {f0: 28G, periods: 12}  # driven transients: Jacobian rows start from their base's settled state

Instead of ``netlist:``, ``pyspice: bench.py:build`` names a Python function that returns a PySpice ``Circuit``;
PySpice writes the netlist text and the engine runs it like a file (:mod:`optiyield.pyspice_netlist`).
Every ``.meas`` line of the netlist is also a measure under its own name.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optiyield import safety
from optiyield.errors import SpecError, load_validated
from optiyield.measure import expr
from optiyield.measure.bindings import Circuit, Nodes
from optiyield.measure.registry import MEASURES
from optiyield.measure.sweep import reduce_sweep
from optiyield.netlist import Netlist, NetlistError, parse_netlist
from optiyield.netlist.includes import content as included
from optiyield.parasitics import ParasiticCoefficients, ParasiticError, add_parasitics, load_coefficients
from optiyield.pdk import Library, PdkNotInstalled, load_library
from optiyield.sim.job import Extraction, LinearStart, SimJob
from optiyield.sim.ngspice.deck import meas_replicable
from optiyield.sim.ngspice.runner import COMPAT_MODE
from optiyield.sim.ngspice.warmstart import WarmStartError, check_drives
from optiyield.sim.ngspice.warmstart import plan as warm_plan
from optiyield.sim.protocol import Waveforms
from optiyield.units import UnitError, eng_field, parse_eng

#: Analyses that cannot be replicated as copies in one deck (one output or fixed port numbering).
SINGLE_ONLY = {"noise", "sp", "pss", "sens", "tf", "pz", "disto"}


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
    r: float | None = None  # ohm: load resistance of a harmonic power
    f0: float | None = None  # Hz: fundamental of a transient Fourier window
    periods: int | None = Field(default=None, ge=1)  # whole periods of f0 in the window
    harmonic: int | None = Field(default=None, ge=0)  # harmonic of f0 (default 1)
    start: float | None = None  # s: start of a transient window given in time
    stop: float | None = None  # s: end of a transient window (default: end of the run)
    device: str | None = None  # an instance, M1 or X1.M3 (operating-point measures; written into `.save`)
    quantity: str | None = None  # an instance quantity of `device`: vds, vdsat, id, gm, … (device_op)
    expr: str | None = None  # arithmetic over other measures (optiyield/measure/expr.py)
    reduce: Literal["max", "min", "span", "mean"] | None = None  # over the sweep
    at: float | None = None  # sweep value whose result is reported
    unit: str | None = None  # unit shown for an expr measure

    @field_validator("out", "in_", mode="before")
    @classmethod
    def _check_nodes(cls, value: Any) -> Any:
        return None if value is None else _nodes(value)

    @field_validator("supply", mode="before")
    @classmethod
    def _supply_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str | None) -> str | None:
        return None if value is None else safety.device_name(value)

    @field_validator("quantity")
    @classmethod
    def _quantity_name(cls, value: str | None) -> str | None:
        return None if value is None else safety.device_quantity(value)

    @field_validator("f", "z0", "zl", "t0", "r", "f0", "start", "stop", "at", mode="before")
    @classmethod
    def _eng(cls, value: Any) -> Any:
        return eng_field(value)

    @model_validator(mode="after")
    def _consistent(self) -> MeasureDef:
        if sum(x is not None for x in (self.fn, self.meas, self.expr)) != 1:
            raise ValueError("give exactly one of `fn` (a library function), `meas` (a .meas result name) "
                             "or `expr` (an expression over other measures)")
        if self.reduce is not None and self.at is not None:
            raise ValueError("give `reduce` or `at`, not both")
        if self.expr is not None:
            try:
                expr.parse(self.expr)
            except expr.ExprError as exc:
                raise ValueError(str(exc)) from None
            return self
        if self.meas is not None:
            return self
        if self.unit is not None:
            raise ValueError("`unit` is for `expr` measures (library functions know their unit)")
        if self.fn not in MEASURES:
            raise ValueError(f"unknown measure function {self.fn!r}; expected one of {', '.join(MEASURES.names())}")
        function = MEASURES.get(self.fn)
        function.binding.check(self, function)
        return self


class SweepDef(BaseModel):
    """A parametric sweep: every sample is simulated at each value of one netlist ``.param``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    param: str
    values: tuple[float, ...] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _eng_values(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list of values, e.g. [-20, -10, 0]")
        try:
            return tuple(parse_eng(v) for v in value)
        except UnitError as exc:
            raise ValueError(str(exc)) from None


class WarmStartDef(BaseModel):
    """``warm_start``: finite-difference rows start from their base outcome's settled state (docs/testbench.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    f0: float = Field(gt=0)  # Hz: the drive frequency; the cold .tran must end on a whole period of it
    periods: int = Field(ge=1)  # length of a warm run, in periods of f0

    @field_validator("f0", mode="before")
    @classmethod
    def _eng_f0(cls, value: Any) -> Any:
        return eng_field(value)


class LinearStartDef(BaseModel):
    """``linear_start``: cold transients start from the linear periodic state and run ``periods`` of ``f0``
    (docs/testbench.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    f0: float = Field(gt=0)  # Hz: the drive frequency
    periods: int = Field(ge=3)  # length of the run, in periods of f0
    drive: str | tuple[str, ...]  # the sine source(s) whose small-signal response is the start
    max_swing: float | None = Field(None, gt=0)  # V: scale the linear state down beyond this node amplitude

    @field_validator("f0", "max_swing", mode="before")
    @classmethod
    def _eng(cls, value: Any) -> Any:
        return eng_field(value)

    @property
    def drives(self) -> tuple[str, ...]:
        """The drive sources as a tuple."""
        return (self.drive,) if isinstance(self.drive, str) else tuple(self.drive)


class PdkRef(BaseModel):
    """A PDK model library and the section (process corner) to include: ``{name: sky130, section: tt}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    section: str = "tt"


class TestbenchFile(BaseModel):
    """Schema of ``testbench.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    netlist: str | None = None
    pyspice: str | None = None  # FILE.py:NAME, a function returning a PySpice Circuit (optiyield/pyspice_netlist.py)
    models: tuple[str, ...] = ()
    analyses: tuple[str, ...] = ()
    measures: dict[str, MeasureDef] = {}
    replicate: Literal["auto", True, False] = "auto"
    batch_size: int = Field(500, ge=1, le=20000)
    timeout: float = Field(60.0, gt=0)
    options: str = ""
    transistors: tuple[str, ...] = ()
    sweep: SweepDef | None = None
    parasitics: Literal["none", "regression"] = "none"
    parasitic_coefficients: str | dict[str, Any] | None = None
    compat: str = ""
    pdk: PdkRef | None = None
    warm_start: WarmStartDef | None = None
    linear_start: LinearStartDef | None = None

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        return safety.file_name(value)

    @field_validator("options")
    @classmethod
    def _options_line(cls, value: str) -> str:
        return safety.deck_line(value, "`options`")

    @field_validator("analyses")
    @classmethod
    def _analysis_lines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(safety.analysis_line(line) for line in value)

    @field_validator("models")
    @classmethod
    def _model_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(safety.model_path(path) for path in value)

    @field_validator("transistors")
    @classmethod
    def _device_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(safety.device_name(name) for name in value)

    @model_validator(mode="after")
    def _one_netlist(self) -> TestbenchFile:
        if (self.netlist is None) == (self.pyspice is None):
            raise ValueError("give exactly one of `netlist` (an ngspice netlist file) or `pyspice` (FILE.py:NAME, a "
                             "function returning a PySpice Circuit)")
        return self

    @field_validator("pdk", mode="before")
    @classmethod
    def _pdk_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("compat")
    @classmethod
    def _compat_mode(cls, value: str) -> str:
        if value and not COMPAT_MODE.match(value):
            raise ValueError(f"unknown ngspice compatibility mode {value!r}; expected a combination of hs, ps, lt, ki, "
                             "spe and a (e.g. hsa: HSPICE, applied to the whole netlist), or all / spice3")
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _eng_timeout(cls, value: Any) -> Any:
        return eng_field(value)

    @field_validator("parasitics", mode="before")
    @classmethod
    def _parasitics_value(cls, value: Any) -> Any:
        if value not in ("none", "regression"):
            raise ValueError(f"expected `none` (the netlist as written) or `regression` (Cgs/Cgd/Cds from the "
                             f"N, w, M regression added to every MOSFET, docs/testbench.md), got {value!r}")
        return value


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
    sweep: SweepDef | None = None
    parasitics: ParasiticCoefficients | None = None  # regression added to every MOSFET (None: as written)
    compat: str = ""  # ngspice compatibility mode (set ngbehavior=...), "" for ngspice's own behaviour
    pdk: tuple[Library, str] | None = None  # (model library, section) whose .lib line heads netlist.hoisted
    warm_start: WarmStartDef | None = None  # finite-difference rows start settled (sim/ngspice/warmstart.py)
    linear_start: LinearStartDef | None = None  # cold rows start from the linear periodic state

    @property
    def measure_names(self) -> tuple[str, ...]:
        """Reported measures: the declared ones, then ``.meas`` results not declared under another name;
        names starting with ``_`` are intermediates (used by expressions, not reported)."""
        return tuple(name for name in self.measures if not name.startswith("_"))

    @property
    def sweep_points(self) -> int:
        """Copies simulated per sample: the number of sweep values (1 without a sweep)."""
        return len(self.sweep.values) if self.sweep else 1

    def unit(self, measure: str) -> str:
        """SI unit of a measure (empty for ``.meas`` results, whose unit ngspice does not say)."""
        definition = self.measures[measure]
        if definition.expr is not None:
            return definition.unit or ""
        if not definition.fn:
            return ""
        function = MEASURES.get(definition.fn)
        return function.binding.unit(definition, function)

    def nominal(self, name: str) -> float | None:
        """Numeric ``.param`` default of a netlist parameter (None if absent or an expression)."""
        return self.netlist.param_value(name)

    def has_param(self, name: str) -> bool:
        """True when the netlist declares ``.param name``."""
        return name.lower() in self.netlist.params

    def job(self, names: Sequence[str]) -> SimJob:
        """The engine job simulating this testbench with ``names`` varied per sample."""
        expected = tuple(dict.fromkeys(k for k in self.netlist.analysis_kinds if k in ("op", "ac", "dc", "tran")))
        sweep = (self.sweep.param, self.sweep.values) if self.sweep else None
        if sweep and sweep[0].lower() in {n.lower() for n in names}:
            raise SpecError(self.source or self.name, "sweep.param",
                            f"{sweep[0]} is swept by the testbench; it cannot also be a design or statistical "
                            "parameter")
        copies = self.copies
        if copies:
            try:
                per_sample = self.netlist.placement((*names, *(sweep[:1] if sweep else ()))).per_sample
            except NetlistError as exc:
                raise SpecError(self.source or self.name, "netlist", str(exc)) from None
            if per_sample and sweep:
                raise SpecError(self.source or self.name, "sweep", f"`{per_sample[0]}` refers to a parameter that "
                                "varies per sample or along the sweep; a sweep runs as copies in one deck, which has "
                                "one such line")
            copies = not per_sample  # e.g. `.temp {tj}` with tj sampled: one sample per deck
        batch = max(1, self.batch_size // self.sweep_points)
        identity = {"measures": {k: _identity(v) for k, v in self.measures.items()},
                    "parasitics": self.parasitics.model_dump() if self.parasitics is not None else None}
        return SimJob(netlist=self.netlist, names=tuple(names), measures=self.measure_names,
                      extract=self.extract, copies=copies, batch_size=batch, timeout=self.timeout,
                      options=self.options, expected=expected, sweep=sweep, compat=self.compat,
                      vectors=self.recorded_vectors(), identity=json.dumps(identity, sort_keys=True, default=str),
                      warm_start=(self.warm_start.f0, self.warm_start.periods) if self.warm_start and copies else None,
                      linear_start=self._linear_start() if copies else None, devices=self.probes)

    @property
    def probes(self) -> tuple[tuple[str, str], ...]:
        """Device quantities (device, quantity) the operating-point measures read; the simulator saves them
        for every copy (nothing extra when no measure asks for one)."""
        found: dict[tuple[str, str], None] = {}
        for definition in self.measures.values():
            if definition.fn is not None:
                function = MEASURES.get(definition.fn)
                for device, quantity in function.binding.probes(definition, function):
                    found[(device.lower(), quantity.lower())] = None
        return tuple(found)

    def _linear_start(self) -> LinearStart | None:
        linear = self.linear_start
        return None if linear is None else LinearStart(linear.f0, linear.periods, linear.drives, linear.max_swing)

    def recorded_vectors(self) -> tuple[tuple[str, str], ...]:
        """The per-copy vectors the measures read (("v", node) / ("i", source), from the measure bindings), for
        a deck that writes only those; () to write everything.

        Only decks with a transient (whose raw file is large) and only op/ac/dc/tran analyses, no ``.meas`` and
        no binding that cannot list its vectors. The PA's raw file goes from 6.0 to 0.4 MB per sample with the
        same numbers; on AC-only decks of 500 copies a long ``.save`` list made ngspice slower
        (docs/benchmarks.md), hence transient decks only.
        """
        kinds = set(self.netlist.analysis_kinds)
        if "tran" not in kinds or not kinds <= {"op", "ac", "dc", "tran"} or self.netlist.measures:
            return ()
        circuit = Circuit(self.netlist.sources)
        found: list[tuple[str, str]] = []
        for definition in self.measures.values():
            if definition.fn is None:
                continue
            listed = MEASURES.get(definition.fn).binding.vectors(definition, circuit)
            if listed is None:
                return ()
            found += listed
        return tuple(dict.fromkeys(found))

    def extract(self, waveforms: Waveforms, count: int) -> Extraction:
        """Compute every measure for the ``count`` samples of one run (vectorised over samples).

        A sample whose vectors hold non-finite values is reported as bad (its simulation is unusable);
        a measure that is undefined for a sample (e.g. no -3 dB crossing) is NaN but not a failure. A
        netlist ``.meas`` that gives no value is NaN with a note saying so (and what ngspice printed).
        """
        points = self.sweep_points
        reader = _VectorReader(waveforms, count * points)
        circuit = Circuit(self.netlist.sources, simulation_temperature(self.netlist))
        raw: dict[str, np.ndarray] = {}  # (count, points) per measure, before reduction
        notes: list[str | None] = [None] * count
        for name, definition in self.measures.items():
            if definition.meas is not None:
                flat = waveforms.measured(definition.meas.lower())
                _note_missing(notes, flat.reshape(count, points), name, definition.meas, waveforms.stdout)
            elif definition.fn is not None:
                function = MEASURES.get(definition.fn)
                flat = function.binding.extract(definition, function, reader, circuit)
            else:
                continue
            raw[name] = flat.reshape(count, points)
        if self.sweep:
            raw[self.sweep.param] = np.asarray(self.sweep.values, dtype=float).reshape(1, points)
        for name in _expression_order(self.measures):
            tree = expr.parse(self.measures[name].expr or "")
            raw[name] = np.broadcast_to(expr.evaluate(tree, raw), (count, points) if expr.sweep_valued(
                tree, lambda n: n == (self.sweep.param if self.sweep else None) or raw[n].shape[1] > 1) else (count, 1))
        bad = reader.bad
        if points > 1:
            bad = [next((b for b in bad[k * points:(k + 1) * points] if b), None) for k in range(count)]
        values = {name: _reduce(raw[name], self.measures[name], self.sweep) for name in self.measure_names}
        return Extraction(values, bad, notes)


def _identity(definition: MeasureDef) -> dict[str, Any]:
    """A measure definition as the job's identity sees it: the fields added later (``device``, ``quantity``) only
    when set, so the fingerprints of testbenches without them stay as they were (stores resume)."""
    return definition.model_dump(exclude={k for k in ("device", "quantity") if getattr(definition, k) is None})


def _note_missing(notes: list[str | None], values: np.ndarray, name: str, meas: str, stdout: str) -> None:
    """Note every sample whose ``.meas`` gave no value, with ngspice's own line about it when it printed one."""
    missing = ~np.isfinite(values).all(axis=1)
    if not missing.any():
        return
    said = next((line.strip() for line in stdout.splitlines()
                 if meas.lower() in line.lower() and ("fail" in line.lower() or "error" in line.lower())), "")
    text = f"measure {name}: `.meas {meas}` gave no value" + (f" (ngspice: {said[:200]})" if said else "")
    for k in np.flatnonzero(missing):
        notes[k] = f"{notes[k]}; {text}" if notes[k] else text


class _VectorReader:
    """The vectors of one run for the measure bindings: (count, points) arrays, cached, remembering the
    samples whose vectors hold non-finite values."""

    def __init__(self, waveforms: Waveforms, count: int) -> None:
        self.waveforms, self.count = waveforms, count
        self.bad: list[str | None] = [None] * count
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def _read(self, key: tuple[str, ...], fetch: Callable[[], np.ndarray], label: str) -> np.ndarray:
        if key not in self._cache:
            block = fetch()
            if np.ndim(block) == 1:  # one vector for the whole (single-sample) run
                block = np.broadcast_to(block, (self.count, len(block)))
            for k in np.flatnonzero(~np.isfinite(block).all(axis=1)):
                self.bad[k] = self.bad[k] or f"non-finite values in {label} ({key[0]})"
            self._cache[key] = block
        return self._cache[key]

    def node(self, kind: str, node: str) -> np.ndarray:
        return self._read((kind, "v", node), lambda: self.waveforms.node(kind, node), f"v({node})")

    def nodes(self, kind: str, nodes: Nodes) -> np.ndarray:
        if isinstance(nodes, tuple):
            return self.node(kind, nodes[0]) - self.node(kind, nodes[1])
        return self.node(kind, nodes)

    def current(self, kind: str, source: str) -> np.ndarray:
        return self._read((kind, "i", source), lambda: self.waveforms.current(kind, source), f"i({source})")

    def device(self, kind: str, device: str, quantity: str) -> np.ndarray:
        return self._read((kind, "d", device, quantity), lambda: self.waveforms.device(kind, device, quantity),
                          f"{device}[{quantity}]")

    def vector(self, kind: str, name: str) -> np.ndarray:
        return self._read((kind, "x", name), lambda: self.waveforms.vector(kind, name), name)

    def axis(self, kind: str) -> np.ndarray:
        return self.waveforms.axis(kind)


def _expression_order(measures: dict[str, MeasureDef]) -> list[str]:
    """Expression measures in an order where each comes after the expressions it uses."""
    pending = {n: expr.names(expr.parse(d.expr)) for n, d in measures.items() if d.expr is not None}
    order: list[str] = []
    while pending:
        ready = [n for n, deps in pending.items() if not (deps & set(pending))]
        if not ready:
            raise SpecError("testbench", "measures",
                            f"expressions refer to each other in a cycle: {', '.join(pending)}")
        for n in ready:
            order.append(n)
            del pending[n]
    return order


def _reduce(values: np.ndarray, definition: MeasureDef, sweep: SweepDef | None) -> np.ndarray:
    """(K, J) → (K,): the sweep value at ``at``, a ``reduce`` over the sweep, or the single column."""
    if definition.at is not None and sweep is not None:
        column = int(np.argmin(np.abs(np.asarray(sweep.values) - definition.at)))
        return np.array(values[:, column], dtype=float)
    if definition.reduce is not None:
        return reduce_sweep(values, definition.reduce)[:, 0]
    return np.array(values[:, 0], dtype=float)


_TEMP_LINE = re.compile(r"^\.(?:temp\s+|options?\b.*\btemp\s*=\s*)([-+]?\d+\.?\d*(?:e[-+]?\d+)?)", re.I)


_TEMP_PARAM = re.compile(r"^\.(?:temp\s+|options?\b.*\btemp\s*=\s*)[{']\s*([a-z_]\w*)\s*[}']", re.I)


def simulation_temperature(netlist: Netlist) -> float:
    """Simulation temperature in degrees C: the netlist's ``.temp`` (or ``.options temp=``), a number or a
    netlist ``.param`` with a numeric default (``.temp {t_c}``), else 27."""
    for line in netlist.hoisted:
        match = _TEMP_LINE.match(line.strip())
        if match:
            return float(match[1])
        match = _TEMP_PARAM.match(line.strip())
        value = netlist.param_value(match[1]) if match else None
        if value is not None:
            return value
    return 27.0


def load_testbench(path: str | Path) -> Testbench:
    """Load ``testbench.yaml`` (and its netlist); raises :class:`SpecError` naming file and field."""
    path = Path(path)
    return build_testbench(load_validated(path, TestbenchFile), path.parent, path)


def build_testbench(spec: TestbenchFile, base: Path, file: Path | str, netlist: Netlist | None = None) -> Testbench:
    """Resolve a validated testbench description against ``base`` (the folder of its file).

    ``netlist`` replaces the netlist the description names (the Python API passes the netlist of a PySpice
    ``Circuit`` object this way); otherwise it is read from ``netlist:`` or written by ``pyspice:``.
    """
    if netlist is None:
        netlist = _read_netlist(spec, base, file)
    if spec.models or spec.analyses:
        models = tuple(f'.include "{(base / m).resolve()}"' for m in spec.models)
        for index, model in enumerate(spec.models):
            if not (base / model).is_file():
                raise SpecError(file, f"models[{index}]", f"model file {model!r} not found next to {file}")
            try:
                included(models[index], f"{file}: models[{index}]")  # reads and checks the file and its includes
            except NetlistError as exc:
                raise SpecError(file, f"models[{index}]", str(exc)) from None
        netlist = Netlist(path=netlist.path, title=netlist.title, params=netlist.params, body=netlist.body,
                          hoisted=models + netlist.hoisted,
                          analyses=tuple(spec.analyses) or netlist.analyses,
                          measures=netlist.measures, sources=netlist.sources)
    compat, pdk = spec.compat, None
    if spec.pdk is not None:
        pdk = _pdk_library(spec.pdk, file)
        netlist = dataclasses.replace(netlist, hoisted=(pdk[0].line(pdk[1]),) + netlist.hoisted)
        compat = compat or pdk[0].compat
    parasitics = None
    if spec.parasitic_coefficients is not None and spec.parasitics != "regression":
        raise SpecError(file, "parasitic_coefficients", "these coefficients are used by `parasitics: regression`; "
                        "add that option or remove them")
    if spec.parasitics == "regression":
        parasitics = load_coefficients(spec.parasitic_coefficients, base, file)
        try:
            netlist = add_parasitics(netlist, parasitics)
        except ParasiticError as exc:
            raise SpecError(file, "parasitics", str(exc)) from None
    if not netlist.analyses:
        raise SpecError(file, "analyses", f"no analysis in {netlist.path.name} and none under `analyses`")
    kinds = set(netlist.analysis_kinds)
    measures = dict(spec.measures)
    declared_meas = {d.meas.lower() for d in measures.values() if d.meas}
    for meas_name in netlist.measure_names:
        if meas_name not in declared_meas and meas_name not in measures:
            measures[meas_name] = MeasureDef(meas=meas_name)
    sweep = spec.sweep
    if sweep is not None and sweep.param.lower() not in netlist.params:
        raise SpecError(file, "sweep.param", f"no `.param {sweep.param}=...` in {netlist.path.name} to sweep")
    for name, definition in measures.items():
        where = f"measures.{name}"
        if (definition.reduce is not None or definition.at is not None) and sweep is None:
            raise SpecError(file, where, "`reduce`/`at` select over a sweep; this testbench has no `sweep`")
        if definition.expr is not None:
            known = set(measures) | ({sweep.param} if sweep else set())
            for ref in sorted(expr.names(expr.parse(definition.expr)) - known):
                raise SpecError(file, f"{where}.expr", f"unknown name {ref!r}; expected a measure name"
                                + (f" or the sweep parameter {sweep.param!r}" if sweep else ""))
            continue
        if definition.meas is not None:
            if definition.meas.lower() not in netlist.measure_names:
                raise SpecError(file, f"{where}.meas",
                                f"no `.meas ... {definition.meas} ...` line in {netlist.path.name}")
            continue
        fn = MEASURES.get(definition.fn or "")
        if fn.analysis not in kinds:
            raise SpecError(file, where, f"{definition.fn} needs a .{fn.analysis} analysis in {netlist.path.name}")
        for source in fn.binding.sources(definition):
            if source.lower() not in netlist.sources:
                raise SpecError(file, where, f"no voltage source named {source!r} in {netlist.path.name}"
                                f" (sources: {', '.join(s.name for s in netlist.sources.values()) or 'none'})")
        if definition.device is not None:
            problem = unknown_device(netlist, definition.device)
            if problem:
                raise SpecError(file, f"{where}.device", problem)
    for line in netlist.measures:
        if line.split()[1].lower() not in ("ac", "dc", "tran", "sp"):
            raise SpecError(file, "netlist", f"{netlist.path.name}: ngspice 39 measures only ac, dc, tran and sp "
                            f"results (`{line}`); use a measure function such as output_noise_at instead")
    _check_expressions(measures, sweep, file)
    replicable = not (kinds & SINGLE_ONLY) and all(meas_replicable(m) for m in netlist.measures)
    if sweep is not None and (not replicable or spec.replicate is False):
        raise SpecError(file, "sweep", "a sweep runs as extra copies in one deck; this testbench is not replicable "
                        f"(analyses {', '.join(sorted(kinds & SINGLE_ONLY)) or 'none'}, or replicate: false)")
    if spec.replicate is True and not replicable:
        raise SpecError(file, "replicate", "this testbench cannot be replicated as copies "
                        f"(analyses {', '.join(sorted(kinds & SINGLE_ONLY)) or 'none'} or a .meas with par()/@)")
    copies = replicable if spec.replicate == "auto" else bool(spec.replicate)
    if spec.warm_start is not None:
        if not copies:
            raise SpecError(file, "warm_start", "a warm start needs a testbench that runs as copies")
        try:
            warm_plan(netlist, spec.warm_start.f0, spec.warm_start.periods)
        except WarmStartError as exc:
            raise SpecError(file, "warm_start", str(exc)) from None
    if spec.linear_start is not None:
        linear = spec.linear_start
        if not copies:
            raise SpecError(file, "linear_start", "a linear start needs a testbench that runs as copies")
        if spec.warm_start is not None and abs(spec.warm_start.f0 - linear.f0) > 1e-9 * linear.f0:
            raise SpecError(file, "linear_start", "f0 must be warm_start's f0 (warm runs start where it ends)")
        try:
            warm_plan(netlist, linear.f0, linear.periods, whole=False)
            check_drives(netlist, linear.drives)
        except WarmStartError as exc:
            raise SpecError(file, "linear_start", str(exc)) from None
    return Testbench(name=spec.name, netlist=netlist, measures=measures, copies=copies,
                     batch_size=spec.batch_size, timeout=spec.timeout, options=spec.options,
                     source=Path(file) if file else None, transistors=spec.transistors, sweep=sweep,
                     parasitics=parasitics, compat=compat, pdk=pdk, warm_start=spec.warm_start,
                     linear_start=spec.linear_start)


def _top_instances(netlist: Netlist) -> set[str]:
    """Lower-case names of the elements at the top level of the netlist: its body and what its include lines
    insert outside ``.subckt`` blocks."""
    lines = list(netlist.body)
    for line in netlist.hoisted:
        try:
            found = included(line, str(netlist.path))
        except NetlistError:
            found = None
        if found is not None:
            lines += [text for _, _, text in found.lines]
    names, depth = set(), 0
    for line in lines:
        word = line.split()[0].lower() if line.split() else ""
        if word == ".subckt":
            depth += 1
        elif word == ".ends":
            depth = max(0, depth - 1)
        elif depth == 0 and word[:1].isalpha():
            names.add(word)
    return names


def unknown_device(netlist: Netlist, device: str) -> str:
    """Why ``device`` (``M1``, ``X1.M3``) is not an instance at the top level of the netlist ("" when it is;
    below a subcircuit instance ngspice checks the rest, and a run names the quantity it could not find)."""
    top = device.split(".", 1)[0].lower()
    elements = _top_instances(netlist)
    if top in elements:
        return ""
    near = sorted(e for e in elements if e[:1] in ("m", "q", "d", "x"))
    return (f"no instance named {device.split('.', 1)[0]!r} at the top level of {netlist.path.name} (devices and "
            f"subcircuit instances: {', '.join(near) or 'none'}); inside a subcircuit instance write X1.M3")


def _read_netlist(spec: TestbenchFile, base: Path, file: Path | str) -> Netlist:
    """The netlist a testbench names: a file (``netlist:``) or a PySpice builder (``pyspice:``)."""
    if spec.pyspice is not None:
        from optiyield.pyspice_netlist import PySpiceError, pyspice_netlist

        try:
            return pyspice_netlist(spec.pyspice, base)
        except PySpiceError as exc:
            raise SpecError(file, "pyspice", str(exc)) from None
    try:
        return parse_netlist(base / (spec.netlist or ""))
    except NetlistError as exc:
        raise SpecError(file, "netlist", str(exc)) from None


def _pdk_library(ref: PdkRef, file: Path | str) -> tuple[Library, str]:
    """The PDK library and section a testbench names; SpecError when unknown or not installed."""
    try:
        library = load_library(ref.name)
    except ValueError as exc:
        raise SpecError(file, "pdk.name", str(exc)) from None
    except PdkNotInstalled as exc:
        raise SpecError(file, "pdk", str(exc)) from None
    try:
        library.line(ref.section)
    except ValueError as exc:
        raise SpecError(file, "pdk.section", str(exc)) from None
    return library, ref.section


def _check_expressions(measures: dict[str, MeasureDef], sweep: SweepDef | None, file: Path | str) -> None:
    """Expressions form no cycle, and in a sweep testbench every reported measure is one value per sample."""
    try:
        _expression_order(measures)
    except SpecError as exc:
        raise SpecError(file, "measures", exc.message) from None
    if sweep is None:
        return
    memo: dict[str, bool] = {}

    def valued(name: str) -> bool:  # does the unreduced result vary along the sweep?
        if name == sweep.param:
            return True
        if name not in memo:
            definition = measures[name]
            memo[name] = (expr.sweep_valued(expr.parse(definition.expr), valued) if definition.expr is not None
                          else True)
        return memo[name]

    for name, definition in measures.items():
        if name.startswith("_") or definition.reduce is not None or definition.at is not None:
            continue
        if valued(name):
            raise SpecError(file, f"measures.{name}", "one value per sample is needed in a sweep testbench: add "
                            "`at: VALUE` or `reduce: max|min|span|mean`, use a sweep function in `expr`, or name "
                            "the measure with a leading `_` (an intermediate)")
