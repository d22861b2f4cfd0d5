"""How a library measure binds to simulated vectors: one small object per binding kind.

A testbench measure such as ``gain_db: {fn: lf_gain_db, out: vout}`` names a library function (an
entry of :data:`optiyield.measure.registry.MEASURES`) and its bindings (nodes, sources, options). Each
entry carries a :class:`Binding` that knows which fields it needs (:meth:`Binding.check`, run when the
testbench is loaded) and how to read them from a run (:meth:`Binding.extract`, given a
:class:`VectorReader` over the run's waveforms). Nothing here imports the simulator: the reader and the
circuit facts are small protocols the testbench implements.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from optiyield.measure import rf, tran
from optiyield.measure.noise import noise_density_at

if TYPE_CHECKING:
    from optiyield.measure.registry import MeasureFunction

Nodes = str | tuple[str, str]
#: A per-copy vector a binding reads: ("v", node) for a node voltage, ("i", source) for a source's current.
Vector = tuple[str, str]
_GROUND = ("0", "gnd")


def node_vectors(*nodes: Nodes | None) -> tuple[Vector, ...]:
    """The node-voltage vectors of nodes and node pairs (ground and None left out)."""
    out: list[Vector] = []
    for item in nodes:
        for node in (item,) if isinstance(item, str) else item or ():
            if node.lower() not in _GROUND:
                out.append(("v", node.lower()))
    return tuple(out)


def source_vectors(circuit: Circuit, *names: str | None) -> tuple[Vector, ...]:
    """The current and both terminal voltages of each named voltage source (None left out)."""
    out: list[Vector] = []
    for name in names:
        if name is not None:
            src = circuit.sources[name.lower()]
            out += [("i", src.name.lower()), *node_vectors(src.plus, src.minus)]
    return tuple(out)

#: Every binding field a measure definition may carry (``in_`` is YAML's ``in``).
FIELDS = ("out", "in_", "supply", "node", "source", "f", "ref", "z0", "zl", "t0", "r",
          "f0", "periods", "harmonic", "start", "stop", "device", "quantity")


class VectorReader(Protocol):
    """Vectors of every sample of one run, shape (K, points); see :class:`optiyield.sim.protocol.Waveforms`."""

    def axis(self, kind: str) -> np.ndarray:
        """Frequency or time axis of an analysis."""
        ...

    def node(self, kind: str, node: str) -> np.ndarray:
        """A node voltage."""
        ...

    def nodes(self, kind: str, nodes: Nodes) -> np.ndarray:
        """A node voltage, or the difference of a pair."""
        ...

    def current(self, kind: str, source: str) -> np.ndarray:
        """A voltage source's branch current."""
        ...

    def vector(self, kind: str, name: str) -> np.ndarray:
        """A vector that is not per copy (single-sample decks), broadcast to every sample."""
        ...

    def device(self, kind: str, device: str, quantity: str) -> np.ndarray:
        """An instance quantity of a device."""
        ...


class Source(Protocol):
    """A voltage source of the circuit: its name and + and − nodes."""

    name: str
    plus: str
    minus: str


@dataclass(frozen=True)
class Circuit:
    """What bindings need to know of the circuit: its voltage sources (lower-case name → source) and the
    simulation temperature (°C)."""

    sources: Mapping[str, Source]
    temperature: float = 27.0


class Binding:
    """Base of the binding kinds. ``fields`` are the definition fields this kind always needs;
    ``optional`` those it may take besides the function's own options."""

    fields: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def check(self, definition: Any, fn: MeasureFunction) -> None:
        """Raise ValueError (a message for the user) when ``definition`` lacks or misuses a field."""
        name = definition.fn
        need = self.fields + fn.requires
        allowed = set(need) | set(fn.options) | set(self.optional)
        for key in need:
            if getattr(definition, key) is None:
                raise ValueError(f"{name} needs `{key.rstrip('_')}`")
        windowed = fn.analysis == "tran" and {"f0", "start"} <= set(fn.options)
        if windowed and (definition.f0 is None) == (definition.start is None):
            raise ValueError(f"{name} needs a window: `f0` (with `periods`) or `start`")
        for key in ("periods", "harmonic"):
            if getattr(definition, key) is not None and "f0" in allowed and definition.f0 is None:
                raise ValueError(f"`{key}` counts periods of `f0`; give `f0` too")
        for key in FIELDS:
            if getattr(definition, key, None) is not None and key not in allowed:
                raise ValueError(f"{name} does not take `{key.rstrip('_')}`")
        if fn.options == ("f",) and definition.f is None:
            raise ValueError(f"{name} needs `f` (a frequency such as 1G)")

    def sources(self, definition: Any) -> tuple[str, ...]:
        """Voltage sources the definition names (checked against the netlist when it is loaded)."""
        return tuple(definition.supply or ()) + ((definition.source,) if definition.source else ())

    def probes(self, definition: Any, fn: MeasureFunction) -> tuple[tuple[str, str], ...]:
        """Device quantities (device, quantity) the simulation must save for this measure (none for most
        bindings: node voltages and source currents are always written)."""
        return ()

    def unit(self, definition: Any, fn: MeasureFunction) -> str:
        """SI unit of the measure's values (the function's own unit unless the binding knows better)."""
        return fn.unit

    def extract(self, definition: Any, fn: MeasureFunction, reader: VectorReader, circuit: Circuit) -> np.ndarray:
        """Values of the measure for every sample of a run, shape (K,)."""
        raise NotImplementedError

    def vectors(self, definition: Any, circuit: Circuit) -> tuple[Vector, ...] | None:
        """The per-copy vectors :meth:`extract` reads (a superset is fine), so that a deck can write only
        those; None when they cannot be listed (then every vector is written)."""
        return None


def window(definition: Any) -> dict[str, Any]:
    """Keyword arguments of a transient measure's window (:mod:`optiyield.measure.tran`)."""
    keys = {"f0": definition.f0, "periods": definition.periods, "harmonic": definition.harmonic,
            "start": definition.start, "stop": definition.stop}
    return {k: v for k, v in keys.items() if v is not None}


def _finish(result: Any, fn: MeasureFunction) -> np.ndarray:
    if fn.unit == "dBm" and fn.analysis == "tran":
        result = tran.to_dbm(result)
    return np.asarray(result, dtype=float)


class Transfer(Binding):
    """``out`` (optionally over ``in``) of an ac analysis: the function gets (frequency, H)."""

    fields, optional = ("out",), ("in_",)

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        kind = fn.analysis
        out = reader.nodes(kind, definition.out)
        h = out / reader.nodes(kind, definition.in_) if definition.in_ is not None else out
        kwargs = {k: getattr(definition, k) for k in ("f", "ref") if getattr(definition, k) is not None}
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(fn.function(reader.axis(kind), h, **kwargs), dtype=float)

    def vectors(self, definition, circuit):  # noqa: ANN001, ANN201 - see Binding
        return node_vectors(definition.out, definition.in_)


class Supply(Binding):
    """Power delivered by voltage sources ``supply``: at the operating point the function gets
    (plus, minus, current) per source; in a transient, (time, power waveform) and the window."""

    fields = ("supply",)

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        kind = fn.analysis
        sources = [circuit.sources[name.lower()] for name in definition.supply or ()]
        if kind == "tran":
            power = 0.0
            for src in sources:
                power = power + (reader.node(kind, src.plus) - reader.node(kind, src.minus)) * -reader.current(
                    kind, src.name)
            return _finish(fn.function(reader.axis(kind), np.real(power), **window(definition)), fn)
        terms = [(reader.node(kind, s.plus)[:, 0].real, reader.node(kind, s.minus)[:, 0].real,
                  reader.current(kind, s.name)[:, 0].real) for s in sources]
        return np.asarray(fn.function(terms), dtype=float)

    def vectors(self, definition, circuit):  # noqa: ANN001, ANN201 - see Binding
        return source_vectors(circuit, *(definition.supply or ()))


class Node(Binding):
    """The operating-point voltage of ``node``."""

    fields = ("node",)

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        return np.asarray(fn.function(reader.node(fn.analysis, definition.node)[:, 0].real), dtype=float)

    def vectors(self, definition, circuit):  # noqa: ANN001, ANN201 - see Binding
        return node_vectors(definition.node)


class SourceCurrent(Binding):
    """The operating-point current of voltage source ``source``."""

    fields = ("source",)

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        return np.asarray(fn.function(reader.current(fn.analysis, definition.source)[:, 0].real), dtype=float)

    def vectors(self, definition, circuit):  # noqa: ANN001, ANN201 - see Binding
        return (("i", definition.source.lower()),)


@dataclass(frozen=True)
class Noise(Binding):
    """A noise density spectrum of a ``.noise`` analysis (``onoise_spectrum`` or ``inoise_spectrum``)."""

    spectrum: str = "onoise_spectrum"

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        return noise_density_at(reader.axis(fn.analysis), reader.vector(fn.analysis, self.spectrum),
                                definition.f or 0.0)


class Port(Binding):
    """An RF port of an ac analysis around the source ``source`` with reference resistance ``z0``: the
    function gets (frequency, S11) when ``in`` is given, (frequency, S21 into load ``zl``) for ``out``."""

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        src = circuit.sources[(definition.source or "").lower()]
        v_s = reader.node("ac", src.plus) - reader.node("ac", src.minus)
        z0 = float(definition.z0 or 0.0)
        if definition.in_ is not None:
            # current delivered into the port: ngspice's i(VS) flows from + through the source to -
            x = rf.s11_from_current(reader.nodes("ac", definition.in_), -reader.current("ac", src.name), z0)
        else:
            x = rf.s21(reader.nodes("ac", definition.out), v_s, z0, float(definition.zl or 0.0))
        args = (definition.f,) if definition.f is not None else ()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(fn.function(reader.axis("ac"), x, *args), dtype=float)

    def vectors(self, definition, circuit):  # noqa: ANN001, ANN201 - see Binding
        return source_vectors(circuit, definition.source) + node_vectors(definition.in_, definition.out)


class PortNoise(Binding):
    """Noise figure of a port from ``inoise_spectrum`` (source resistance ``z0``, IEEE ``t0``)."""

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        t0 = definition.t0 if definition.t0 is not None else rf.T0_IEEE
        args = (definition.z0, circuit.temperature + rf.ZERO_CELSIUS, t0)
        inoise = reader.vector(fn.analysis, "inoise_spectrum")
        if definition.f is not None:
            return np.asarray(fn.function(reader.axis(fn.analysis), inoise, definition.f, *args), dtype=float)
        return np.asarray(fn.function(inoise, *args), dtype=float)


class Wave(Binding):
    """A transient waveform ``out`` (a node or pair): the function gets (time, wave) and the window."""

    fields, optional = ("out",), ()

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        kwargs = window(definition)
        if definition.r is not None:
            kwargs["r"] = definition.r
        wave = np.real(reader.nodes("tran", definition.out))
        return _finish(fn.function(reader.axis("tran"), wave, **kwargs), fn)

    def vectors(self, definition, circuit):  # noqa: ANN001, ANN201 - see Binding
        return node_vectors(definition.out)


class Drive(Binding):
    """A drive port in a transient: the voltage of node ``in`` and the current out of source ``source``'s
    + terminal; the function gets (time, voltage, current) and the window."""

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        src = circuit.sources[(definition.source or "").lower()]
        current = -np.real(reader.current("tran", src.name))
        voltage = np.real(reader.nodes("tran", definition.in_))
        return _finish(fn.function(reader.axis("tran"), voltage, current, **window(definition)), fn)

    def vectors(self, definition, circuit):  # noqa: ANN001, ANN201 - see Binding
        return (("i", (definition.source or "").lower()),) + node_vectors(definition.in_)

#: Unit of a device quantity by its leading letters (ngspice's BSIM4, BJT and diode instance quantities).
_QUANTITY_UNITS = (("v", "V"), ("i", "A"), ("g", "S"), ("c", "F"), ("q", "C"))

#: Device kind of an instance name's last path segment, by its first letter.
DEVICE_KINDS = {"m": "MOSFET", "q": "BJT", "d": "diode"}


def device_kind(device: str) -> str:
    """``m``, ``q``, ``d`` …: the first letter of the last path segment of an instance name (``X1.M3`` → ``m``)."""
    return device.rsplit(".", 1)[-1][:1].lower()


def quantity_unit(quantity: str) -> str:
    """SI unit of an instance quantity from its name (``vds`` V, ``id`` A, ``gm`` S, ``cgg`` F), "" if unknown."""
    lowered = quantity.lower()
    return next((unit for prefix, unit in _QUANTITY_UNITS if lowered.startswith(prefix)), "")


@dataclass(frozen=True)
class Device(Binding):
    """Operating-point instance quantities of one device (``device``: ``M1``, or ``X1.M3`` inside a
    subcircuit instance). ``quantities`` maps a device kind (the first letter of the instance name: ``m``,
    ``q``, ``d``) to the quantities the function takes, in order, as (K,) arrays; ``None`` means the
    definition's own ``quantity`` (the function then gets that one array). ngspice reports MOSFET and BJT
    quantities in the NMOS/NPN sense (a conducting PMOS has positive Vgs, Vds and Id), so one function
    serves both polarities (optiyield/optim/region.py)."""

    quantities: tuple[tuple[str, tuple[str, ...]], ...] | None = None

    fields = ("device",)

    def _wanted(self, definition: Any) -> tuple[str, ...]:
        if self.quantities is None:
            return (str(definition.quantity).lower(),)
        return dict(self.quantities)[device_kind(definition.device)]

    def check(self, definition: Any, fn: MeasureFunction) -> None:
        """Besides the fields: a device kind the function knows (``sat_margin`` needs a MOSFET)."""
        super().check(definition, fn)
        kinds = dict(self.quantities or ())
        if self.quantities is not None and device_kind(definition.device) not in kinds:
            wanted = " or ".join(f"a {DEVICE_KINDS.get(k, k)} ({k.upper()}…)" for k in kinds)
            raise ValueError(f"{definition.fn} needs {wanted}, got {definition.device!r}")

    def probes(self, definition, fn):  # noqa: ANN001, ANN201 - see Binding
        return tuple((definition.device, q) for q in self._wanted(definition))

    def unit(self, definition, fn):  # noqa: ANN001, ANN201 - see Binding
        return quantity_unit(definition.quantity) if self.quantities is None else fn.unit

    def extract(self, definition, fn, reader, circuit):  # noqa: ANN001, ANN201 - see Binding
        arrays = [np.real(reader.device(fn.analysis, definition.device, q))[:, 0] for q in self._wanted(definition)]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(fn.function(*arrays), dtype=float)
