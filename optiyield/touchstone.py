"""Touchstone export: the S-parameters of an RF testbench at one design, for system-level tools (scikit-rf).

The ports are the ones the testbench's RF measures already bind (``docs/testbench.md``, RF two-ports):
port 1 is the ac source ``source`` behind its resistor ``z0`` driving node ``in``; port 2 is node ``out``
loaded by the resistor ``zl``. Two single-sample ``.ac`` runs of the testbench's own netlist at the design
give every frequency of its ``.ac`` sweep:

* run A, as written (port 1 driven): S11 from the current into port 1 and S21 from ``out``, exactly as the
  measures ``s11_*``/``s21_*`` compute them (:mod:`optiyield.measure.rf`);
* run B, the same deck plus an ac current source of 1 A into port 2 (no dc: the operating point is the
  same). By superposition, B − A is the circuit's response to that current alone, and a 1 A Norton source
  in parallel with ``zl`` is a Thevenin source of ``zl`` volts behind ``zl``: port 2 driven with port 1
  terminated in ``z0``. So ``S22 = (Z_out − zl)/(Z_out + zl)`` with ``Z_out = ΔV_out / (1 − ΔV_out/zl)``,
  and ``S12 = 2 sqrt(z0 zl)/z0 · ΔV_in / zl``.

This holds when ``zl`` is the only load at port 2 (the RF bindings' assumption) and the source resistance
equals ``z0``. Ports of different reference resistance (the LNA: 200 Ω and 50 Ω) are written as Touchstone
2.0 with a ``[Reference]`` line; equal ones as Touchstone 1.0. tests/test_touchstone.py checks the four
parameters against ngspice's own ``.sp`` analysis of the same circuit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optiyield.measure import rf
from optiyield.measure.registry import MEASURES
from optiyield.netlist import Netlist
from optiyield.sim.engine import probing
from optiyield.sim.job import SimJob
from optiyield.sim.protocol import Waveforms
from optiyield.spec import Spec
from optiyield.testbench import Testbench

#: What to install when scikit-rf is missing.
INSTALL_HINT = "pip install 'optiyield[rf]'"
#: Name of the port-2 current source added for run B.
PORT2_SOURCE = "i_optiyield_port2"


class TouchstoneError(ValueError):
    """The testbench has no RF ports to export, or their simulation failed (the message says which)."""


@dataclass(frozen=True)
class Ports:
    """Port 1: the ac source, its node (after the source resistor) and reference resistance z0 (ohm);
    port 2: its node (or node pair) and load resistance zl (ohm), None for a one-port."""

    source: str
    input: str | tuple[str, str]
    z0: float
    output: str | tuple[str, str] | None = None
    zl: float | None = None

    @property
    def count(self) -> int:
        """1 or 2."""
        return 1 if self.output is None else 2


def find_ports(testbench: Testbench) -> Ports:
    """The ports the testbench's RF measures bind (S21/transducer-gain measures name port 2; the S11 measure
    of the same source names port 1). Raises :class:`TouchstoneError` when it has none."""
    rf_measures = [d for d in testbench.measures.values() if d.fn is not None and d.source is not None
                   and MEASURES.get(d.fn).analysis == "ac" and d.z0]
    forward = [d for d in rf_measures if d.out is not None and d.zl]
    sources = [d.source for d in forward] or [d.source for d in rf_measures if d.in_ is not None]
    if not sources:
        raise TouchstoneError(f"testbench {testbench.name!r} has no RF port measures (s11_*, s21_*, gt_* with "
                              "`source` and `z0`): nothing to export as S-parameters")
    source = sources[0]
    inputs = [d for d in rf_measures if d.source == source and d.in_ is not None]
    if not inputs:
        raise TouchstoneError(f"testbench {testbench.name!r}: no S11 measure names the input node of port 1 "
                              f"(source {source}); add one, e.g. {{fn: s11_min_db, in: NODE, source: {source}, "
                              "z0: 50}")
    first = inputs[0]
    out = next((d for d in forward if d.source == source), None)
    return Ports(source=source, input=first.in_, z0=float(first.z0),
                 output=None if out is None else out.out, zl=None if out is None else float(out.zl))


def _ac_only(netlist: Netlist, extra: tuple[str, ...] = ()) -> Netlist:
    analyses = tuple(a for a in netlist.analyses if a.split()[0].lower() in (".op", ".ac"))
    if not any(a.split()[0].lower() == ".ac" for a in analyses):
        raise TouchstoneError(f"{netlist.path.name} has no .ac analysis to take S-parameters from")
    return dataclasses.replace(netlist, body=netlist.body + extra, analyses=analyses, measures=())


def _nodes(waves: Waveforms, nodes: str | tuple[str, str]) -> np.ndarray:
    if isinstance(nodes, tuple):
        return waves.node("ac", nodes[0])[0] - waves.node("ac", nodes[1])[0]
    return waves.node("ac", nodes)[0]


def s_parameters(spec: Spec, design: Mapping[str, float] | None = None, *, at: float | None = None,
                 probe: Any = None) -> tuple[np.ndarray, np.ndarray, Ports]:
    """S-parameters of ``spec``'s testbench at ``design`` (default: the start point), statistical parameters
    at nominal: (frequencies in Hz (n,), S (n, P, P) complex, the ports). A sweep testbench needs ``at``, the
    sweep value to export. ``probe``: an engine's probe (default a private one-slot engine)."""
    tb = spec.testbench
    ports = find_ports(tb)
    names, nominal = list(spec.parameters), spec.nominal(dict(design or {}))
    row = [nominal[n] for n in names]
    if tb.sweep is not None:
        if at is None:
            raise TouchstoneError(f"testbench {tb.name!r} sweeps {tb.sweep.param}: choose the value to export "
                                  f"(one of {', '.join(f'{v:g}' for v in tb.sweep.values)})")
        names.append(tb.sweep.param)
        row.append(float(at))
    extra: tuple[str, ...] = ()
    if ports.output is not None:
        plus, minus = ports.output if isinstance(ports.output, tuple) else (ports.output, "0")
        extra = (f"{PORT2_SOURCE} {minus} {plus} dc 0 ac 1",)  # 1 A (ac) into port 2, nothing at dc
    outcomes = []
    with probing(probe) as run:
        for added in ((), extra) if extra else ((),):
            job = SimJob(netlist=_ac_only(tb.netlist, added), names=tuple(names), copies=False, timeout=tb.timeout,
                         options=tb.options, expected=("ac",), compat=tb.compat)
            outcome = run(job, np.asarray(row, dtype=float))
            if not outcome.ok or outcome.waveforms is None:
                raise TouchstoneError(f"the S-parameter run of {tb.name} failed: {outcome.failure}")
            outcomes.append(outcome.waveforms)
    a = outcomes[0]
    freq = np.asarray(a.axis("ac"), dtype=float)
    src = tb.netlist.sources[ports.source.lower()]
    v_s = a.node("ac", src.plus)[0] - a.node("ac", src.minus)[0]
    s11 = rf.s11_from_current(_nodes(a, ports.input), -a.current("ac", src.name)[0], ports.z0)
    if ports.output is None:
        return freq, s11.reshape(-1, 1, 1), ports
    zl, z0 = float(ports.zl or 0.0), ports.z0
    s21 = rf.s21(_nodes(a, ports.output), v_s, z0, zl)
    b = outcomes[1]
    dv_out = _nodes(b, ports.output) - _nodes(a, ports.output)
    dv_in = _nodes(b, ports.input) - _nodes(a, ports.input)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_out = dv_out / (1.0 - dv_out / zl)
        s22 = rf.reflection_coefficient(z_out, zl)
        s12 = 2.0 * math.sqrt(z0 * zl) / z0 * dv_in / zl
    s = np.stack([np.stack([s11, s12], axis=-1), np.stack([s21, s22], axis=-1)], axis=-2)
    return freq, s, ports


def network(freq: np.ndarray, s: np.ndarray, ports: Ports, name: str) -> Any:
    """A scikit-rf ``Network`` (power waves; the ports' reference resistances)."""
    try:
        import skrf
    except ImportError:
        raise TouchstoneError(f"Touchstone export needs scikit-rf: {INSTALL_HINT}") from None
    z0 = [ports.z0] if ports.count == 1 else [ports.z0, float(ports.zl or 0.0)]
    return skrf.Network(frequency=skrf.Frequency.from_f(freq, unit="hz"), s=s, z0=z0, name=name, s_def="power")


def write_touchstone(spec: Spec, path: str | Path, design: Mapping[str, float] | None = None, *,
                     at: float | None = None, probe: Any = None) -> Path:
    """Simulate the S-parameters of ``spec`` at ``design`` and write them to a Touchstone file (``.s1p`` or
    ``.s2p`` added when ``path`` has no such suffix). Returns the written path."""
    freq, s, ports = s_parameters(spec, design, at=at, probe=probe)
    path = Path(path)
    suffix = f".s{ports.count}p"
    if path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    net = network(freq, s, ports, spec.name)
    equal = ports.count == 1 or ports.z0 == ports.zl
    path.parent.mkdir(parents=True, exist_ok=True)
    text = net.write_touchstone(return_string=True, form="ri", version="1.0" if equal else "2.0",
                                skrf_comment=False, format_spec_A="{:.12e}", format_spec_B="{:.12e}",
                                format_spec_freq="{:.12e}")
    where = (f"port 1: source {ports.source} at {ports.input}, {ports.z0:g} ohm"
             + ("" if ports.count == 1 else f"; port 2: {ports.output}, {ports.zl:g} ohm"))
    header = (f"! optiyield: S-parameters of {spec.name} (testbench {spec.testbench.name}) from ngspice .ac runs\n"
              f"! {where}\n! design: " + ", ".join(f"{k}={v:.9g}" for k, v in spec.nominal(dict(design or {})).items()
                                                     if k in spec.file.design) + "\n")
    path.write_text(header + text)
    return path
