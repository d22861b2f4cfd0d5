"""Render parameter vectors into ngspice decks.

*Copies* mode (the fast path, DESIGN §4): the user's circuit becomes ``.subckt oy_tb params: …`` and
K instances ``X0 … XK-1`` carry one sample each, so ONE ngspice run solves K samples. Node ``vout``
of sample k is then ``v(xk.vout)``, the branch current of source ``VDD`` is ``i(v.xk.vdd)``. Definitions
(models, subcircuits, ``.func``, includes) stay on top, once, unless they refer to a per-sample name: those
go inside ``oy_tb`` with each copy (:mod:`optiyield.netlist.placement`, docs/engine.md).

*Single* mode renders one sample as the user's own deck with its ``.param`` defaults replaced, for
testbenches that cannot be replicated (single-output analyses such as ``.noise``, ``.sp`` ports).

Decks with ``.meas`` lines get a ``.control`` block (ngspice refuses ``.meas`` with ``-r`` in batch
mode, and drops them when ``.op`` runs last): ``run``, one ``meas`` command per measurement and copy,
and a ``write`` of every plot to the raw file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import optiyield.sim.ngspice.warmstart as warmstart
from optiyield.netlist import Netlist, NetlistError

SUBCKT = "oy_tb"
GENTLE_OPTIONS = "method=gear gmin=1e-10 itl1=500 itl4=100 gminsteps=20 srcsteps=20"
_GROUND = {"0", "gnd"}
_VFUNC = re.compile(r"\b(v|vdb|vm|vp|vr|vi|vph)\(\s*([^),\s]+)\s*(?:,\s*([^)\s]+)\s*)?\)", re.IGNORECASE)
_IFUNC = re.compile(r"\bi\(\s*([^)\s]+)\s*\)", re.IGNORECASE)
_SAVES_PER_LINE = 50  # vectors per `.save` line (ngspice joins every .save line into one list)
_PLOT_OF_KIND = {"op": "op1", "ac": "ac1", "dc": "dc1", "tran": "tran1", "noise": "noise1", "sp": "sp1"}


def meas_replicable(line: str) -> bool:
    """True when a ``.meas`` line only refers to vectors by ``v()/vdb()/…/i()``, so it can be rewritten
    for each copy; parameter expressions and ``@device[...]`` references are not rewritten."""
    lowered = line.lower()
    return "par(" not in lowered and "param=" not in lowered and "@" not in lowered


@dataclass(frozen=True)
class Layout:
    """How the vectors of sample k are named in the raw file of a rendered deck."""

    copies: bool

    def node(self, k: int, node: str) -> str | None:
        """Raw-file vector of a node voltage (None for ground)."""
        node = node.lower()
        if node in _GROUND:
            return None
        return f"v(x{k}.{node})" if self.copies else f"v({node})"

    def source_current(self, k: int, source: str) -> str:
        """Raw-file vector of a voltage source's branch current."""
        source = source.lower()
        return f"i(v.x{k}.{source})" if self.copies else f"i({source})"

    def device(self, k: int, device: str, quantity: str) -> str:
        """Raw-file vector of an instance quantity: ``M1`` → ``@m1[vds]`` (single) or ``@m.x3.m1[vds]``
        (copy 3); a device inside a subcircuit, ``X1.M3``, → ``@m.x1.m3[vds]`` / ``@m.x3.x1.m3[vds]``."""
        name = device.lower()
        if self.copies:
            name = f"x{k}.{name}"
        if "." in name:
            name = f"{name.rsplit('.', 1)[1][0]}.{name}"
        return f"@{name}[{quantity.lower()}]"

    def meas_name(self, k: int, name: str) -> str:
        """Name under which ``.meas`` result ``name`` of sample k is printed."""
        return f"{name.lower()}_oy{k}" if self.copies else name.lower()


def _format(value: float) -> str:
    return f"{value:.12g}"


def _strip_param_lines(body: Sequence[str], exposed: set[str]) -> list[str]:
    """Remove assignments of exposed parameters from ``.param`` lines (they become subckt params)."""
    out = []
    for line in body:
        if line.lower().startswith(".param"):
            kept = [
                m.group(0)
                for m in re.finditer(r"([A-Za-z_]\w*)\s*=\s*({[^}]*}|'[^']*'|\S+)", line[6:])
                if m.group(1).lower() not in exposed
            ]
            if kept:
                out.append(".param " + " ".join(kept))
        else:
            out.append(line)
    return out


def _rewrite_meas(line: str, k: int) -> str:
    """``.meas ac gmax max vdb(vout)`` → ``meas ac gmax_oy3 max vdb(x3.vout)`` for copy 3."""
    parts = line.split(maxsplit=3)
    kind, name, rest = parts[1], parts[2], parts[3]

    def node(n: str) -> str:
        return n if n.lower() in _GROUND else f"x{k}.{n}"

    def vrepl(m: re.Match[str]) -> str:
        nodes = node(m[2]) + (f",{node(m[3])}" if m[3] else "")
        return f"{m[1]}({nodes})"

    rest = _VFUNC.sub(vrepl, rest)
    rest = _IFUNC.sub(lambda m: f"i(v.x{k}.{m[1]})", rest)
    return f"meas {kind} {name}_oy{k} {rest}"


def render(
    netlist: Netlist,
    names: Sequence[str],
    values: np.ndarray,
    raw_path: str,
    copies: bool,
    options: str = "",
    gentle: bool = False,
    saves: Sequence[str] = (),
    sweep: tuple[str, Sequence[float]] | None = None,
    devices: Sequence[tuple[str, str]] = (),
    vectors: Sequence[tuple[str, str]] = (),
    start: tuple[warmstart.Plan, Sequence[dict[str, float]]] | None = None,
) -> tuple[str, Layout]:
    """Render samples into one deck.

    ``names`` are the exposed parameters (design and statistical), ``values`` an array (K, len(names))
    in SI units. In single mode K must be 1. ``options`` is appended to ``.options``; ``gentle`` adds
    the convergence aids used when retrying a failed sample. ``saves`` names extra vectors to write to the
    raw file besides the default ones (``.save all …``), e.g. ``@m1[vdsat]``; names are those of the
    rendered deck. ``devices`` names device quantities (device, quantity), e.g. ``("M1", "vdsat")``, to save
    for every copy (``@m.x3.m1[vdsat]`` for copy 3; ngspice then writes them in every analysis). ``sweep`` =
    (param, sweep values) renders J copies per sample (copies mode only): copy ``k*J + j`` is sample k at
    sweep value j. ``vectors`` (("v", node) / ("i", source) pairs): write only
    these vectors of every copy, ``saves`` and ``devices``, instead of everything. ``start`` = (plan, one state per
    copy) starts every copy from that state with the plan's short ``.tran … uic`` (copies mode;
    :mod:`optiyield.sim.ngspice.warmstart`). Returns the deck text and its :class:`Layout`.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if sweep is not None:
        if not copies:
            raise ValueError("a sweep needs copies mode")
        points = np.asarray(sweep[1], dtype=float)
        values = np.column_stack([np.repeat(values, points.size, axis=0), np.tile(points, values.shape[0])])
        names = (*names, sweep[0])
    count = values.shape[0]
    if not copies and count != 1:
        raise ValueError("single mode renders exactly one sample")
    exposed = {n.lower() for n in names}
    layout = Layout(copies=copies)
    opts = " ".join(part for part in (options, GENTLE_OPTIONS if gentle else "") if part)
    lines = [f"{netlist.title} [optiyield: {count} sample{'s' if count != 1 else ''}]"]
    if copies:
        placement = netlist.placement(tuple(names))
        if placement.per_sample:
            raise NetlistError(f"{netlist.path}: `{placement.per_sample[0]}` refers to a parameter that varies per "
                               "sample; ngspice runs one such line per deck, so this netlist cannot run as copies "
                               "(replicate: false runs one sample per deck)")
        lines += placement.outside
        lines += placement.params
    else:
        lines += netlist.hoisted
    if opts:
        lines.append(f".options {opts}")
    if start is not None and (not copies or len(start[1]) != count):
        raise ValueError("a warm start needs copies mode and one state per copy")
    if copies:
        defaults = [f"{n}={netlist.params.get(n.lower(), '0')}" for n in names]
        defaults += warmstart.defaults(start[0]) if start else []
        lines.append(f".subckt {SUBCKT}" + (f" params: {' '.join(defaults)}" if defaults else ""))
        lines += placement.inside
        body = _strip_param_lines(netlist.body, exposed)
        lines += [warmstart.element_line(start[0], line) for line in body] if start else body
        lines.append(f".ends {SUBCKT}")
        for k in range(count):
            assigns = [f"{n}={_format(v)}" for n, v in zip(names, values[k], strict=True)]
            assigns += warmstart.assignments(start[0], start[1][k]) if start else []
            lines.append(f"X{k} {SUBCKT} {' '.join(assigns)}".rstrip())
    else:
        lines += _strip_param_lines(netlist.body, exposed)
        if names:
            lines.append(".param " + " ".join(f"{n}={_format(v)}" for n, v in zip(names, values[0], strict=True)))
    device_saves = [layout.device(k, d, q) for k in range(count) for d, q in devices]
    if vectors:
        names = [*save_names(layout, count, vectors), *saves, *device_saves]
        lines += [".save " + " ".join(names[i:i + _SAVES_PER_LINE]) for i in range(0, len(names), _SAVES_PER_LINE)]
    elif saves or device_saves:
        names = [*saves, *device_saves]
        lines.append(".save all")
        lines += [".save " + " ".join(names[i:i + _SAVES_PER_LINE]) for i in range(0, len(names), _SAVES_PER_LINE)]
    if start:
        lines += warmstart.ic_lines(list(start[1]))
        lines += [start[0].tran if a.lower().startswith(".tran") else a for a in netlist.analyses]
    else:
        lines += netlist.analyses
    if netlist.measures:
        lines += _control_block(netlist, count, copies, raw_path)
    lines.append(".end")
    return "\n".join(lines) + "\n", layout


def save_names(layout: Layout, count: int, vectors: Sequence[tuple[str, str]]) -> list[str]:
    """Raw-file names of ``vectors`` (("v", node) / ("i", source)) for every one of ``count`` copies."""
    names = [layout.node(k, name) if kind == "v" else layout.source_current(k, name)
             for k in range(count) for kind, name in vectors]
    return list(dict.fromkeys(n for n in names if n is not None))


def _control_block(netlist: Netlist, count: int, copies: bool, raw_path: str) -> list[str]:
    block = [".control", "set appendwrite", "run"]
    for line in netlist.measures:
        kind = line.split()[1].lower()
        block.append(f"setplot {_PLOT_OF_KIND.get(kind, kind + '1')}")
        if copies:
            block += [_rewrite_meas(line, k) for k in range(count)]
        else:
            block.append(line[1:] if line.startswith(".") else line)
    for kind in dict.fromkeys(netlist.analysis_kinds):
        plot = _PLOT_OF_KIND.get(kind)
        if plot:
            block += [f"setplot {plot}", f"write {raw_path}"]
    block += ["quit", ".endc"]
    return block
