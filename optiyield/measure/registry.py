"""The one measure registry: library measures a testbench names (``{fn: NAME, …}``) and the functions
measure expressions may call (``expr: "db20(a) - b"``).

:data:`MEASURES` maps a name to a :class:`MeasureFunction`: which analysis it reads, its
:class:`~optiyield.measure.bindings.Binding` (how its arguments bind to the simulation and which fields
it needs), its options, unit and a one-line description. :data:`EXPRESSIONS` maps a name to an
:class:`ExpressionFunction`. The numpy functions themselves live in :mod:`~optiyield.measure.ac`,
:mod:`~optiyield.measure.dc`, :mod:`~optiyield.measure.rf`, :mod:`~optiyield.measure.tran`, … A new
measure is its numpy function plus one line here (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optiyield import measure
from optiyield.measure import device, hann, phase_noise, rf, tran, vga
from optiyield.measure.bindings import (
    Binding,
    Device,
    Drive,
    Node,
    Noise,
    Port,
    PortNoise,
    SourceCurrent,
    Supply,
    Transfer,
    Wave,
)
from optiyield.measure.noise import noise_density_at
from optiyield.measure.sweep import compression_point, reduce_sweep
from optiyield.registry import Registry

TRANSFER, SUPPLY, NODE, SOURCE = Transfer(), Supply(), Node(), SourceCurrent()
PORT, PORT_NOISE, WAVE, DRIVE = Port(), PortNoise(), Wave(), Drive()
#: Device quantities by device kind (first letter of the instance name): the operating-point measures.
MOSFET_SAT = Device((("m", ("vds", "vdsat")),))
MOSFET_VOV = Device((("m", ("vgs", "vds", "vth")),))
GM_ID = Device((("m", ("gm", "id")), ("q", ("gm", "ic"))))
BJT_VCB = Device((("q", ("vbc",)),))


@dataclass(frozen=True)
class MeasureFunction:
    """A library measurement: the analysis it reads, its binding, the numpy function, its options (the
    definition fields it may take besides the binding's own), a description, its unit, and the fields it
    needs besides its binding's (``requires``)."""

    analysis: str
    binding: Binding
    function: Callable[..., np.ndarray]
    options: tuple[str, ...] = ()
    description: str = ""
    unit: str = ""
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpressionFunction:
    """A function measure expressions may call; ``reduces_sweep`` when its result is one value per sample
    (it takes the sweep axis away)."""

    function: Callable[..., NDArray]
    reduces_sweep: bool = False


MEASURES: Registry[MeasureFunction] = Registry("measure function")
EXPRESSIONS: Registry[ExpressionFunction] = Registry("expression function")

_MEASURES: dict[str, MeasureFunction] = {
    "dc_power": MeasureFunction("op", SUPPLY, measure.total_dc_power,
                                description="dc power in W delivered by one or more voltage sources", unit="W"),
    "dc_voltage": MeasureFunction("op", NODE, lambda v: v,
                                  description="operating-point voltage of a node, V", unit="V"),
    "dc_current": MeasureFunction("op", SOURCE, lambda i: -i,
                                  description="operating-point current delivered by a voltage source, A", unit="A"),
    "lf_gain_db": MeasureFunction("ac", TRANSFER, measure.lf_gain_db,
                                  description="gain at the lowest simulated frequency, dB", unit="dB"),
    "gain_db_at": MeasureFunction("ac", TRANSFER, measure.gain_db_at, ("f",),
                                  description="gain at frequency f, dB", unit="dB"),
    "peak_gain_db": MeasureFunction("ac", TRANSFER, measure.peak_gain_db, description="peak gain, dB", unit="dB"),
    "peak_frequency": MeasureFunction("ac", TRANSFER, measure.peak_frequency,
                                      description="frequency of peak gain, Hz", unit="Hz"),
    "bandwidth_3db": MeasureFunction("ac", TRANSFER, measure.bandwidth_3db, ("ref",),
                                     description="-3 dB bandwidth, Hz", unit="Hz"),
    "unity_gain_frequency": MeasureFunction("ac", TRANSFER, measure.unity_gain_frequency,
                                            description="unity-gain frequency, Hz", unit="Hz"),
    "phase_margin": MeasureFunction("ac", TRANSFER, measure.phase_margin,
                                    description="phase margin, degrees", unit="°"),
    "output_noise_at": MeasureFunction("noise", Noise("onoise_spectrum"), noise_density_at, ("f",),
                                       description="output noise density at frequency f, V/sqrt(Hz)", unit="V/√Hz"),
    "input_noise_at": MeasureFunction("noise", Noise("inoise_spectrum"), noise_density_at, ("f",),
                                      description="input-referred noise density at frequency f", unit="V/√Hz"),
    # RF two-ports from .ac / .noise (optiyield/measure/rf.py). `source` is the ac source behind the
    # port-1 resistor z0 (ohm), `in`/`out` the port nodes, `zl` (ohm) the port-2 load resistor of the
    # netlist. The functions receive S11 (with `in`) or S21 (with `out`), complex (K, n); G_T = |S21|^2.
    "s11_min_db": MeasureFunction("ac", PORT, lambda f, s: rf.min_db(s), requires=("in_", "source", "z0"),
                                  description="minimum |S11| over the ac sweep, dB", unit="dB"),
    "s11_db_at": MeasureFunction("ac", PORT, rf.value_db_at, ("f",), requires=("in_", "source", "z0", "f"),
                                 description="|S11| at frequency f, dB", unit="dB"),
    "s21_db_at": MeasureFunction("ac", PORT, rf.value_db_at, ("f",), requires=("out", "source", "z0", "zl", "f"),
                                 description="|S21| at frequency f (power waves; port 2 loaded by zl), dB", unit="dB"),
    "s11_phase_at": MeasureFunction("ac", PORT, rf.phase_deg_at, ("f",), requires=("in_", "source", "z0", "f"),
                                    description="phase of S11 at frequency f, degrees", unit="°"),
    "s21_phase_at": MeasureFunction("ac", PORT, rf.phase_deg_at, ("f",),
                                    requires=("out", "source", "z0", "zl", "f"),
                                    description="phase of S21 at frequency f (power waves), degrees", unit="°"),
    "gt_max_db": MeasureFunction("ac", PORT, lambda f, s: rf.max_db(s), requires=("out", "source", "z0", "zl"),
                                 description="maximum transducer gain |S21|^2 over the ac sweep, dB", unit="dB"),
    "gt_db_at": MeasureFunction("ac", PORT, rf.value_db_at, ("f",), requires=("out", "source", "z0", "zl", "f"),
                                description="transducer gain |S21|^2 at frequency f, dB", unit="dB"),
    "gt_bandwidth": MeasureFunction("ac", PORT, lambda f, s: rf.gain_bandwidth(f, rf.to_db(s)),
                                    requires=("out", "source", "z0", "zl"),
                                    description="width of the band within 3 dB of the maximum transducer gain, Hz",
                                    unit="Hz"),
    "nf_min_db": MeasureFunction("noise", PORT_NOISE, rf.noise_figure_min_db, ("t0",), requires=("z0",),
                                 description="minimum noise figure over the .noise sweep (IEEE, source at t0 = 290 K)"
                                 ", dB", unit="dB"),
    "nf_db_at": MeasureFunction("noise", PORT_NOISE, rf.noise_figure_at_db, ("f", "t0"), requires=("z0", "f"),
                                description="noise figure at frequency f (IEEE, source at t0 = 290 K), dB", unit="dB"),
    # Transient (optiyield/measure/tran.py). `out` is a node or a pair [plus, minus] ("wave" binding);
    # the window is the last `periods` whole periods of `f0` before `stop` (default: end of the run),
    # or [start, stop]. "drive": the voltage source `source` behind its series resistor, feeding node `in`.
    "harmonic_amplitude": MeasureFunction("tran", WAVE, tran.harmonic_amplitude,
                                          ("f0", "periods", "harmonic", "stop"), requires=("f0",), unit="V",
                                          description="peak amplitude of harmonic h of f0 over whole periods, V"),
    "harmonic_power": MeasureFunction("tran", WAVE, tran.harmonic_power, ("f0", "periods", "harmonic", "stop"),
                                      requires=("f0", "r"), unit="W",
                                      description="power of harmonic h of v(out) into a resistance r, |V|^2/2r, W"),
    "harmonic_power_dbm": MeasureFunction("tran", WAVE, tran.harmonic_power,
                                          ("f0", "periods", "harmonic", "stop"), requires=("f0", "r"), unit="dBm",
                                          description="power of harmonic h of v(out) into a resistance r, dBm"),
    "delivered_power": MeasureFunction("tran", DRIVE, tran.delivered_power, ("f0", "periods", "harmonic", "stop"),
                                       requires=("f0", "in_", "source"), unit="W",
                                       description="power at harmonic h delivered by a drive source into node "
                                       "`in`, W"),
    "delivered_power_dbm": MeasureFunction("tran", DRIVE, tran.delivered_power,
                                           ("f0", "periods", "harmonic", "stop"), requires=("f0", "in_", "source"),
                                           unit="dBm", description="power at harmonic h delivered by a drive "
                                           "source into node `in`, dBm"),
    "average_power": MeasureFunction("tran", SUPPLY, tran.average, ("f0", "periods", "start", "stop"), unit="W",
                                     description="time-average power delivered by voltage sources over the "
                                     "window, W"),
    "swing": MeasureFunction("tran", WAVE, tran.swing, ("f0", "periods", "start", "stop"), unit="V",
                             description="half the peak-to-peak excursion of v(out) over the window, V"),
    "oscillation_frequency": MeasureFunction("tran", WAVE, tran.oscillation_frequency, ("start", "stop"),
                                             unit="Hz", description="frequency from the rising mean crossings "
                                             "of v(out) over [start, stop], Hz"),
    # Oscillator-driven transients (optiyield/measure/hann.py): the fundamental is each sample's own
    # frequency (mean crossings of v(out) / of the `in` voltage), Hann-weighted over [start, stop].
    "osc_harmonic_power_dbm": MeasureFunction("tran", WAVE, hann.osc_harmonic_power, ("harmonic", "start", "stop"),
                                              requires=("r", "start"), unit="dBm",
                                              description="power of harmonic h of v(out) at its own frequency "
                                              "into a resistance r, dBm"),
    "osc_delivered_power": MeasureFunction("tran", DRIVE, hann.osc_delivered_power, ("harmonic", "start", "stop"),
                                           requires=("in_", "source", "start"), unit="W",
                                           description="power at harmonic h of the `in` voltage's own frequency "
                                           "flowing from the probe source `source` into node `in`, W"),
    "hann_average_power": MeasureFunction("tran", SUPPLY, hann.hann_average, ("start", "stop"),
                                          requires=("start",), unit="W",
                                          description="Hann-weighted average power of voltage sources over "
                                          "[start, stop], W"),
    "fit_amplitude": MeasureFunction("tran", WAVE, hann.fit_amplitude, ("f0", "periods", "stop"),
                                     requires=("f0", "periods"), unit="V",
                                     description="peak amplitude of the f0 component of v(out), least-squares "
                                     "fit over the last 1/periods of its period (e.g. a mixer's IF), V"),
    # Oscillators (optiyield/measure/phase_noise.py): the frequency is the waveform's own (mean crossings).
    "oscillator_power_dbm": MeasureFunction("tran", WAVE, phase_noise.oscillator_power, ("start", "stop"),
                                            requires=("r",), unit="dBm",
                                            description="power of the fundamental of an oscillating v(out) into "
                                            "a resistance r, |V1|^2/2r, at its own frequency, dBm"),
    "phase_noise_dbc": MeasureFunction("tran", DRIVE, phase_noise.phase_noise_dbc, ("start", "stop"),
                                       requires=("in_", "source"), unit="dBc/Hz",
                                       description="phase noise at 1 MHz offset of a cross-coupled LC "
                                       "oscillator (ISF, Hajimiri-Lee): `in` the differential output pair, "
                                       "`source` a 0 V sense source feeding the p side's L || R branch, dBc/Hz"),
    "lc_tail_current": MeasureFunction("tran", DRIVE, phase_noise.lc_tail_current, ("start", "stop"),
                                       requires=("in_", "source"), unit="A",
                                       description="average tail current of a cross-coupled LC oscillator: "
                                       "twice the dc of the p-side L || R branch current through the 0 V sense "
                                       "`source`, over the whole periods of the differential `in`, A"),
    # Operating point of one device (optiyield/measure/device.py): ngspice's instance quantities, saved per
    # copy with `.save @m.xk.m1[vds]` only when such a measure is asked for (docs/testbench.md for the cost).
    "device_op": MeasureFunction("op", Device(), device.quantity, requires=("quantity",),
                                 description="an instance quantity of a device at the operating point (BSIM4: vgs, "
                                 "vds, vth, vdsat, id, gm, gds, cgg, …; BJT: vbe, vbc, ic, gm, …; diode: vd, id)"),
    "sat_margin": MeasureFunction("op", MOSFET_SAT, device.sat_margin, unit="V",
                                  description="saturation margin |Vds| - Vdsat of a MOSFET (negative in triode), V"),
    "overdrive": MeasureFunction("op", MOSFET_VOV, device.overdrive, unit="V",
                                 description="gate overdrive Vgs - Vth of a MOSFET (negative in cutoff), V"),
    "gm_over_id": MeasureFunction("op", GM_ID, device.gm_over_id, unit="1/V",
                                  description="transconductance efficiency gm/|Id| (MOSFET) or gm/|Ic| (BJT), 1/V"),
    "bjt_vcb": MeasureFunction("op", BJT_VCB, device.bjt_vcb, unit="V",
                               description="collector-base reverse bias -Vbc of a BJT (negative in saturation), V"),
}
for _name, _entry in _MEASURES.items():
    MEASURES.register(_name, _entry)


def _db10(x: NDArray) -> NDArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(np.abs(x))


def _db20(x: NDArray) -> NDArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 20.0 * np.log10(np.abs(x))


_EXPRESSIONS: dict[str, Callable[..., NDArray]] = {
    "db10": _db10,
    "db20": _db20,
    "dbm": tran.to_dbm,
    "dbm_to_w": tran.from_dbm,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "exp": np.exp,
    "maximum": np.fmax,
    "minimum": np.fmin,
    # RF two-port stability from S-parameters in dB and degrees (optiyield/measure/rf.py)
    "rollett_k": rf.rollett_k,
    "stability_delta": rf.stability_delta,
}
_REDUCERS: dict[str, Callable[..., NDArray]] = {
    "sweep_max": lambda x: reduce_sweep(x, "max"),
    "sweep_min": lambda x: reduce_sweep(x, "min"),
    "sweep_mean": lambda x: reduce_sweep(x, "mean"),
    "compression_point_out": lambda pin, pout, db=1.0: compression_point(pin, pout, db, output=True),
    "compression_point_in": lambda pin, pout, db=1.0: compression_point(pin, pout, db, output=False),
    # VGA figures over the gain states of a sweep (optiyield/measure/vga.py)
    "state_max": vga.state_max,
    "state_min": vga.state_min,
    "sweep_at": vga.sweep_at,
    "gain_step": vga.gain_step,
    "rms_gain_error": vga.rms_gain_error,
    "rms_phase_error": vga.rms_phase_error,
    "phase_variation": vga.phase_variation,
    "p1db_in": vga.p1db_in,
    "iip3_from_compression": vga.iip3_from_compression,
}
for _name, _function in _EXPRESSIONS.items():
    EXPRESSIONS.register(_name, ExpressionFunction(_function))
for _name, _function in _REDUCERS.items():
    EXPRESSIONS.register(_name, ExpressionFunction(_function, reduces_sweep=True))
