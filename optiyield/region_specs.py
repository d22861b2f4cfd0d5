"""Region constraints, the spec shorthand ``regions: {M1: saturation, M2: {region: saturation, margin: 80m}}``.

Each entry expands to operating-point measures (:mod:`optiyield.measure.device`) that the spec adds to its
testbench, and to specs on them, so that every optimizer, the yield and the report treat them like any other
spec. For a MOSFET ``M1`` (names: the device in lower case, dots as underscores, ``X1.M3`` → ``x1_m3``):

==========  =====================================================  ===========================
region      specs                                                  measures
==========  =====================================================  ===========================
saturation  ``m1_sat ≥ margin``, ``m1_vov ≥ overdrive``             ``sat_margin``, ``overdrive``
triode      ``m1_sat ≤ −margin``, ``m1_vov ≥ overdrive``            ``sat_margin``, ``overdrive``
cutoff      ``m1_vov ≤ −margin``                                   ``overdrive``
active      ``q1_vcb ≥ margin`` (a BJT: collector-base reverse bias) ``bjt_vcb``
==========  =====================================================  ===========================

``m1_sat`` is |Vds| − Vdsat and ``m1_vov`` is Vgs − Vth (V), so "saturation" is the region check's saturation
(:mod:`optiyield.optim.region`) with a margin. Defaults: ``margin`` 50 mV, ``overdrive`` 0 V (``null`` leaves
the overdrive spec out, and saves two vectors per device and copy), error ``scale`` 0.1 V (a 100 mV miss is
one unit of spec error, docs/optimization.md), ``weight`` 1. In a sweep testbench the measure is the worst
point of the sweep (``reduce: min`` for a lower bound, ``max`` for an upper one), since every sweep point
(every gain state, every input power) must hold the region.

A testbench measure of the same name is used when it is the same definition; a different one is an error,
as is a spec of the same name in ``specs:``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optiyield import safety
from optiyield.measure.bindings import device_kind
from optiyield.testbench import MeasureDef, Testbench, unknown_device
from optiyield.units import eng_field

#: Regions a device may be constrained to, by device kind (first letter of the instance name).
REGIONS = {"m": ("saturation", "triode", "cutoff"), "q": ("active",)}
DEFAULT_MARGIN = 0.05  # V
DEFAULT_SCALE = 0.1  # V




class RegionRequest(BaseModel):
    """One device's wanted region: ``saturation``, ``triode``, ``cutoff`` (MOSFET) or ``active`` (BJT), the
    margin (V) by which it must be inside it, the least gate overdrive Vgs − Vth (V; MOSFET saturation and
    triode; None: not constrained), and the spec error scale (V) and weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Literal["saturation", "triode", "cutoff", "active"]
    margin: float = Field(DEFAULT_MARGIN, ge=0)
    overdrive: float | None = 0.0
    scale: float = Field(DEFAULT_SCALE, gt=0)
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"region": value} if isinstance(value, str) else value

    @field_validator("margin", "overdrive", "scale", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        return eng_field(value)


def check_regions(value: dict[str, RegionRequest]) -> dict[str, RegionRequest]:
    """Device names are instance names (they are written into ``.save`` lines), and each region suits its
    device kind (ValueError naming the device otherwise)."""
    for name, request in value.items():
        safety.device_name(name)
        allowed = REGIONS.get(device_kind(name), ())
        if request.region not in allowed:
            kinds = "; ".join(f"{k.upper()}…: {', '.join(v)}" for k, v in REGIONS.items())
            raise ValueError(f"{name}: {request.region!r} is not a region of this device kind ({kinds})")
    return value


@dataclass(frozen=True)
class RegionSpec:
    """One expanded region constraint: the device, its request, and the specs it became (name → (min, max))."""

    device: str
    request: RegionRequest
    bounds: dict[str, tuple[float | None, float | None]]

    @property
    def measures(self) -> tuple[str, ...]:
        """The measure (and spec) names of this device's constraint."""
        return tuple(self.bounds)

    def met(self, values: dict[str, float]) -> bool:
        """True when every bound holds for one set of measure values (name → value)."""
        for name, (low, high) in self.bounds.items():
            value = values.get(name, float("nan"))
            if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
                return False
        return True

    def describe(self, values: dict[str, float]) -> str:
        """One line such as ``M1 saturation (margin 50 mV): m1_sat 0.0213 V < 0.05 ✗, m1_vov 0.182 V ✓``."""
        parts = []
        for name, (low, high) in self.bounds.items():
            value = values.get(name, float("nan"))
            ok = RegionSpec(self.device, self.request, {name: (low, high)}).met(values)
            limit = f"≥ {low:g}" if low is not None else f"≤ {high:g}"
            parts.append(f"{name} {value:.4g} V (want {limit}) {'✓' if ok else '✗'}")
        return f"{self.device} {self.request.region} (margin {self.request.margin * 1e3:g} mV): " + ", ".join(parts)


def measure_base(device: str) -> str:
    """Prefix of a device's region measures: ``M1`` → ``m1``, ``X1.M3`` → ``x1_m3``."""
    return device.lower().replace(".", "_").replace("#", "_")


def expand(regions: dict[str, RegionRequest], testbench: Testbench) -> tuple[Testbench, dict[str, dict[str, Any]],
                                                                              list[RegionSpec]]:
    """The testbench with the region measures added, the specs (name → ``{min|max, scale, weight}``) and one
    :class:`RegionSpec` per device. Raises ValueError (a message naming the device) when a measure of the same
    name exists with another definition."""
    measures = dict(testbench.measures)
    specs: dict[str, dict[str, Any]] = {}
    expanded = []
    for device, request in regions.items():
        problem = unknown_device(testbench.netlist, device)
        if problem:
            raise ValueError(f"{device}: {problem}")
        base = measure_base(device)
        bounds: dict[str, tuple[float | None, float | None]] = {}
        m = request.margin
        if request.region in ("saturation", "triode"):
            bounds[f"{base}_sat"] = (m, None) if request.region == "saturation" else (None, -m)
            if request.overdrive is not None:
                bounds[f"{base}_vov"] = (request.overdrive, None)
        elif request.region == "cutoff":
            bounds[f"{base}_vov"] = (None, -m)
        else:
            bounds[f"{base}_vcb"] = (m, None)
        for name, (low, high) in bounds.items():
            fn = {"sat": "sat_margin", "vov": "overdrive", "vcb": "bjt_vcb"}[name.rsplit("_", 1)[1]]
            fields: dict[str, Any] = {"fn": fn, "device": device}
            if testbench.sweep is not None:
                fields["reduce"] = "min" if low is not None else "max"
            definition = MeasureDef.model_validate(fields)
            existing = measures.get(name)
            if existing is not None and existing != definition:
                raise ValueError(f"{device}: the testbench already has a measure {name!r} that is not "
                                 f"{_show(fields)}; rename it or drop the region")
            measures[name] = definition
            spec: dict[str, Any] = {"scale": request.scale, "weight": request.weight}
            spec.update({"min": low} if low is not None else {"max": high})
            specs[name] = spec
        expanded.append(RegionSpec(device, request, bounds))
    return dataclasses.replace(testbench, measures=measures), specs, expanded


def _show(fields: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"
