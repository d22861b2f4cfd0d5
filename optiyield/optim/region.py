"""Transistor region check: are the testbench's ``transistors`` in saturation at a design point?

One ngspice run of the testbench, operating point only, in single-sample mode, with the BSIM
instance quantities Vgs, Vds, Vth and Vdsat of every listed device saved (``.save all @m1[vgs] …``).
ngspice writes them to the op plot as ``v(@m1[vgs])``; a device inside a subcircuit, ``X1.M3``, is
``@m.x1.m3[…]`` there.

Polarity (checked on ngspice 39, BSIM4 level 54): ngspice reports the quantities of a PMOS in the
NMOS-equivalent sense, i.e. multiplied by the device type. A conducting PMOS shows *positive* Vgs,
Vds, Vth and Vdsat (e.g. Vsg = 0.8 V appears as ``vgs = 0.8``), and a PMOS whose gate is above its
source shows a negative Vgs. The check therefore compares the signed values, which is correct for
both polarities (plain absolute values would call such a PMOS "on"):

* cutoff when Vgs ≤ Vth,
* triode when Vds < Vdsat,
* saturation otherwise (Vgs > Vth and Vds ≥ Vdsat).

A device conducting in reverse (Vds < 0, drain and source swapped by the bias) is judged with the
roles swapped: Vgs − Vds against Vth and −Vds against Vdsat. Gate and body resistance networks
(``rgatemod``/``rbodymod``) add internal nodes but do not change these per-device quantities.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiyield.sim.engine import Probe, probing
from optiyield.sim.job import SimJob
from optiyield.spec import Spec
from optiyield.testbench import Testbench

#: The BSIM instance quantities read per device (all in V).
QUANTITIES = ("vgs", "vds", "vth", "vdsat")

_UNRECOGNIZED = re.compile(r"unrecognized variable\s*-\s*(\S+)", re.IGNORECASE)


class RegionCheckError(RuntimeError):
    """The region check could not be done: ngspice failed, or a listed device does not exist."""


@dataclass(frozen=True)
class DeviceRegion:
    """Operating point of one transistor: ``name`` as listed in the testbench, and Vgs, Vds, Vth,
    Vdsat in volts as ngspice reports them (NMOS-equivalent sign, so positive for a conducting PMOS
    too; see the module docstring)."""

    name: str
    vgs: float
    vds: float
    vth: float
    vdsat: float

    @property
    def reverse(self) -> bool:
        """True when the device conducts with drain and source swapped (Vds < 0)."""
        return self.vds < 0

    @property
    def _effective(self) -> tuple[float, float]:
        """(Vgs, Vds) seen from the terminal that acts as source, V."""
        return (self.vgs - self.vds, -self.vds) if self.reverse else (self.vgs, self.vds)

    @property
    def region(self) -> str:
        """``cutoff``, ``triode`` or ``saturation``."""
        vgs, vds = self._effective
        if not vgs > self.vth:
            return "cutoff"
        if vds < self.vdsat:
            return "triode"
        return "saturation"

    @property
    def saturated(self) -> bool:
        """True in saturation (|Vgs| > |Vth| and |Vds| ≥ |Vdsat| in the device's own polarity)."""
        return self.region == "saturation"

    def describe(self) -> str:
        """One line such as ``M2: triode (Vds 0.12 V < Vdsat 0.21 V)``."""
        vgs, vds = self._effective
        g, d = ("Vgd", "Vsd") if self.reverse else ("Vgs", "Vds")
        region = self.region
        if region == "cutoff":
            why = f"{g} {vgs:.3g} V ≤ Vth {self.vth:.3g} V"
        elif region == "triode":
            why = f"{d} {vds:.3g} V < Vdsat {self.vdsat:.3g} V"
        else:
            why = f"{g} {vgs:.3g} V > Vth {self.vth:.3g} V, {d} {vds:.3g} V ≥ Vdsat {self.vdsat:.3g} V"
        return f"{self.name}: {region} ({why}{', reverse-biased' if self.reverse else ''})"


def device_vector(device: str, quantity: str) -> str:
    """ngspice vector name of an instance quantity: ``M1`` → ``@m1[vth]``, ``X1.M3`` → ``@m.x1.m3[vth]``."""
    name = device.lower()
    if "." in name:
        name = f"{name.rsplit('.', 1)[1][0]}.{name}"
    return f"@{name}[{quantity}]"


def operating_point_job(testbench: Testbench, names: Sequence[str], saves: Sequence[str]) -> SimJob:
    """A single-sample job of ``testbench`` that runs only ``.op`` (no other analyses, no ``.meas``) and
    saves the vectors ``saves`` (e.g. ``@m1[vdsat]``)."""
    netlist = dataclasses.replace(testbench.netlist, analyses=(".op",), measures=())
    return SimJob(netlist=netlist, names=tuple(names), copies=False, timeout=testbench.timeout,
                  options=testbench.options, expected=("op",), saves=tuple(saves), compat=testbench.compat)


def device_regions(testbench: Testbench, names: Sequence[str], values: Sequence[float] | np.ndarray,
                   probe: Probe | None = None, transistors: Sequence[str] | None = None) -> list[DeviceRegion]:
    """Simulate the operating point of ``testbench`` with parameters ``names`` = ``values`` (SI) and
    return the region of each transistor (default: ``testbench.transistors``), in that order.

    Only ``.op`` is run (the testbench's other analyses and ``.meas`` lines are left out), through
    ``probe`` (default: a private engine, not counted anywhere). Raises :class:`RegionCheckError` when the
    simulation fails or a device is unknown.
    """
    devices = tuple(testbench.transistors if transistors is None else transistors)
    if not devices:
        return []
    saves = [device_vector(d, q) for d in devices for q in QUANTITIES]
    with probing(probe) as run:
        outcome = run(operating_point_job(testbench, names, saves), np.asarray(values, dtype=float))
    if not outcome.ok or outcome.waveforms is None:
        raise RegionCheckError(f"operating point for the region check failed: {outcome.failure}")
    unknown = {m.lower() for m in _UNRECOGNIZED.findall(outcome.stdout)}
    missing = [d for d in devices if any(device_vector(d, q) in unknown for q in QUANTITIES)]
    if missing:
        raise RegionCheckError(f"ngspice does not know {', '.join(missing)} (or it has no Vgs/Vds/Vth/Vdsat): "
                               "`transistors` must name MOSFET instances of the netlist, e.g. M1 or X1.M3")
    waveforms = outcome.waveforms
    available = set(waveforms.names("op"))
    regions = []
    for device in devices:
        found: dict[str, float] = {}
        for quantity in QUANTITIES:
            vector = device_vector(device, quantity)
            key = next((k for k in (f"v({vector})", vector) if k in available), None)
            if key is None:
                raise RegionCheckError(f"{device}: {vector} is not in the operating-point results")
            found[quantity] = float(np.real(waveforms.vector("op", key)[0]))
        regions.append(DeviceRegion(device, **found))
    return regions


def region_check(spec: Spec, design: Mapping[str, float] | None = None,
                 probe: Probe | None = None, transistors: Sequence[str] | None = None) -> list[DeviceRegion]:
    """Regions of the spec's testbench ``transistors`` (or of ``transistors``) at a design point (name → SI
    value; None: the start point), statistical parameters at nominal. An empty list when none are listed."""
    devices = tuple(spec.testbench.transistors if transistors is None else transistors)
    if not devices:
        return []
    nominal = spec.nominal(dict(design or {}))
    names = spec.parameters
    return device_regions(spec.testbench, names, [nominal[n] for n in names], probe, devices)


def format_region_report(regions: Sequence[DeviceRegion],
                         constraints: Sequence[Mapping[str, Any]] = ()) -> str:
    """A readable report: a headline naming the devices NOT in saturation (or, for the spec's ``regions:``
    constraints, ``constraints`` with ``device``, ``met`` and ``describe``, NOT in their region with the
    margin), then one line per device."""
    if not regions and not constraints:
        return "region check: no transistors listed, skipped"
    bad = [r.name for r in regions if not r.saturated] + [c["device"] for c in constraints if not c["met"]]
    count = len(regions) + len(constraints)
    plural = "s" if count != 1 else ""
    where = "in saturation" if not constraints else ("in saturation or their `regions:` region"
                                                       if regions else "in their `regions:` region with the margin")
    if bad:
        head = f"region check: {len(bad)} of {count} device{plural} NOT {where}: {', '.join(bad)}"
    else:
        head = f"region check: all {count} device{plural} {where}"
    lines = [head]
    lines += [f"  !! {c['describe']}" for c in constraints if not c["met"]]
    lines += [f"  !! {r.describe()}" for r in regions if not r.saturated]
    lines += [f"  ok {c['describe']}" for c in constraints if c["met"]]
    lines += [f"  ok {r.describe()}" for r in regions if r.saturated]
    return "\n".join(lines)
