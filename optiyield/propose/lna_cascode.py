"""Analytical first cut of the cascode LNA (``circuits/lna_cascode``): the Hongik automatic sizing.

J. Y. Choi, "An Analytical Approach for Fast Automatic Sizing of Narrow-Band RF CMOS LNAs", Circuits
and Systems 3(2), 136-145, 2012 (DESIGN.md §5) sizes an inductively degenerated cascode LNA without any
optimization loop. This module follows its steps on our 45 nm card, with ngspice for the device facts:

1. **Width**: the power-constrained noise optimum W_opt = 1/(3 ω L C_ox R_s), at most 1000 µm, rounded
   to whole fingers of width WF: ``m`` groups of ``nf`` ≤ ``nf_max`` fingers, and the residue.
2. **Bias**: the mirror device gets ``nfb`` fingers for about 100 µA; R_DB is found by bisection on an
   ngspice ``.op`` of the testbench itself, so that M1 carries the specified I_DD.
3. **Small signal**: gm, gds, gmbs and the intrinsic capacitances of M1/M2 come from the same ``.op``
   (``@m1[gm]``, ``@m1[cgs]``, …, ``@m1[capbd]``). ngspice's BSIM4 keeps the overlap and fringe
   capacitances (cgso/cgdo, cgsl/cgdl, cf) out of those instance values (b4v5ask.c; b4v5acld.c adds them
   in the ac load only): at the 2.4 GHz first cut ``@m1[cgs]`` is −59 fF (∂Qg/∂Vs, intrinsic) while the
   total Cgs is 307 fF and Cgd 206 fF. So the total admittances are taken from a one-point ``.ac`` of each biased
   device at f0: three copies per device, each excited at one terminal, give its 3×3 admittance matrix
   (gate, drain, source; bulk grounded). Cgs, Cgd, Cds, Rg in :class:`DeviceAdmittance` are read off it.
4. **Input match**: a nodal model of the whole amplifier at f0 built from those matrices and the ideal
   passives (:class:`SmallSignalModel`); bisection on Ls (0.1-5 nH) for Re(Z_gate) = R_si; then Lg and
   Ci cancel Im(Z_gate): Lg1 = -Im(Z_gate)/ω, 1/(ω Ci) = ω Lg1/10, Lg = 1.1 Lg1. When Z_gate is already
   inductive, Lg is a 1 nH bond wire and Ci resonates the rest.
5. **Output match and gain**: for a load R1 (in parallel with the device output), L1 and the series Co
   form the L-match to R_so (conjugate at f0); G_max and G_min are |S21| with R1 = 10 kΩ and 40 Ω; R1
   is found by bisection for the target |S21|. A target above G_max gives a warning and the G_max design
   (the paper stops there); below G_min, the G_min design.

Steps 4-5 are repeated until no passive moves by more than 1e-7 (relative; 14 passes at 2.4 GHz), because
the input and output matches see each other through Cgd and the weak cascode (gm·ro ≈ 14 at L = 45 nm).
Everything except the device facts is arithmetic on 7×7 complex matrices, so a first cut costs about
15 ngspice runs (the R_DB bisection) plus one .ac run, 0.3 s.

The sizer is a proposer (:mod:`optiyield.propose`): ``LnaCascodeSizer().propose(spec, count, seed)``
returns the first cut in the spec's design-variable order, plus ``count - 1`` small random variations.
The design frequency f0, port resistances Rsi/Rso, finger width WF and bias feed RB are read from the
testbench netlist (its ``.param`` defaults, or the spec's nominal values when they are parameters; VDD
enters through the .op); I_DD (or a power budget with VDD) and the target gain are the sizer's own
inputs (default 5 mA; the spec's ``s21_db`` lower limit + 3 dB).
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from optiyield.measure import rf
from optiyield.netlist import Netlist
from optiyield.sim.engine import Probe, probing
from optiyield.sim.job import SimJob
from optiyield.sim.protocol import Waveforms
from optiyield.spec import Spec
from optiyield.testbench import simulation_temperature

EPS0 = 8.854187817e-12  # F/m, vacuum permittivity
#: (min, max) search ranges of the bisections: Ls (H), R1 (Ω, the paper's Gmin/Gmax loads), R_DB (Ω).
LS_RANGE = (0.1e-9, 5e-9)
R1_RANGE = (40.0, 10e3)
RDB_RANGE = (100.0, 1e6)
BOND_WIRE = 1e-9  # H, the gate inductance used when Z_gate is already inductive
#: Terminal order of a device admittance matrix.
TERMINALS = ("g", "d", "s")
#: BSIM4 instance quantities read from the operating point (A, S, F as ngspice reports them, × m).
OP_QUANTITIES = ("id", "gm", "gds", "gmbs", "vgs", "vds", "vth", "vdsat", "cgg", "cgs", "cgd", "cdd", "capbd",
                 "capbs")


class SizingError(RuntimeError):
    """The sizer cannot produce a design (ngspice failed, or the testbench lacks a needed element)."""


class SizingWarning(UserWarning):
    """A sizing step hit a limit (target gain beyond G_max, Ls or R_DB outside its search range, …)."""


# --------------------------------------------------------------------------------------------------
# bisection


@dataclass(frozen=True)
class Bisection:
    """Result of :func:`bisect`: the root estimate ``x``, ``f(x)``, iterations used, whether the
    tolerance was reached, and whether [lo, hi] bracketed a sign change (if not, ``x`` is the end whose
    |f| is smaller and ``converged`` is False)."""

    x: float
    value: float
    iterations: int
    converged: bool
    bracketed: bool


def bisect(f: Callable[[float], float], lo: float, hi: float, *, xtol: float = 1e-6, ftol: float = 0.0,
           max_iter: int = 100, log: bool = False) -> Bisection:
    """Root of a monotonic ``f`` on [lo, hi] by bisection (in log x when ``log``, for scale-free ranges
    such as resistances and inductances).

    Stops when the bracket is narrower than ``xtol`` relative to x (in log mode, or relative to hi-lo
    otherwise) or when |f| ≤ ``ftol``. Without a sign change on [lo, hi] the better end is returned.
    """
    to_u = math.log if log else (lambda v: v)
    from_u = math.exp if log else (lambda v: v)
    a, b = to_u(lo), to_u(hi)
    fa, fb = f(lo), f(hi)
    evaluations = 2
    if fa == 0 or fb == 0:
        x = lo if fa == 0 else hi
        return Bisection(x, 0.0, evaluations, True, True)
    if (fa > 0) == (fb > 0):
        x, v = (lo, fa) if abs(fa) <= abs(fb) else (hi, fb)
        return Bisection(x, v, evaluations, False, False)
    width = xtol if log else xtol * (hi - lo)
    mid, fm = from_u(0.5 * (a + b)), math.nan
    for _ in range(max_iter):
        mid = from_u(0.5 * (a + b))
        fm = f(mid)
        evaluations += 1
        if fm == 0 or abs(fm) <= ftol or abs(b - a) < width:
            return Bisection(mid, fm, evaluations, True, True)
        if (fm > 0) == (fa > 0):
            a, fa = to_u(mid), fm
        else:
            b = to_u(mid)
    return Bisection(mid, fm, evaluations, False, True)


def first_crossing(f: Callable[[float], float], lo: float, hi: float, points: int = 25,
                   xtol: float = 1e-6) -> tuple[float, Bisection]:
    """Root of ``f`` in the first interval of a ``points``-point log grid on [lo, hi] where it changes
    sign, refined by :func:`bisect` (log scale); for functions that are monotonic only near the root
    sought. Without a sign change, the grid point with the smallest |f| (``bracketed`` False)."""
    grid = np.geomspace(lo, hi, points)
    values = [f(float(x)) for x in grid]
    for k in range(points - 1):
        if values[k] == 0 or (values[k] > 0) != (values[k + 1] > 0):
            result = bisect(f, float(grid[k]), float(grid[k + 1]), xtol=xtol, log=True)
            return result.x, dataclasses.replace(result, iterations=result.iterations + points)
    best = int(np.argmin(np.abs(values)))
    return float(grid[best]), Bisection(float(grid[best]), values[best], points, False, False)


# --------------------------------------------------------------------------------------------------
# process figures and the width


@dataclass(frozen=True)
class Process:
    """Process figures the sizer needs: channel length L (m), finger width WF (m), most fingers per
    device group ``nf_max``, gate-oxide capacitance ``cox`` (F/m²; default from the card's toxe = 1.8 nm,
    epsrox = 3.9) and the width cap ``w_max`` (m)."""

    length: float = 45e-9
    finger_width: float = 2e-6
    nf_max: int = 64
    cox: float = 3.9 * EPS0 / 1.8e-9
    w_max: float = 1000e-6


@dataclass(frozen=True)
class Fingers:
    """A width as whole fingers: ``m`` groups of ``nf`` fingers of ``finger_width`` (m); ``width`` =
    nf·m·WF (m) and ``residue`` = requested − width (m)."""

    nf: int
    m: int
    finger_width: float
    residue: float

    @property
    def width(self) -> float:
        """Total width, m."""
        return self.nf * self.m * self.finger_width

    @property
    def count(self) -> int:
        """Total number of fingers."""
        return self.nf * self.m


def noise_optimum_width(f0: float, rs: float, process: Process) -> float:
    """Power-constrained noise-optimum width W_opt = 1/(3 ω L C_ox R_s) in m (not capped)."""
    return 1.0 / (3.0 * 2 * math.pi * f0 * process.length * process.cox * rs)


def finger_layout(width: float, process: Process) -> Fingers:
    """Round a width (m) to whole fingers: total N = round(W/WF) ≥ 1, m = ceil(N/nf_max), nf = round(N/m)."""
    total = max(1, round(width / process.finger_width))
    m = max(1, math.ceil(total / process.nf_max))
    nf = max(1, min(process.nf_max, round(total / m)))
    return Fingers(nf=nf, m=m, finger_width=process.finger_width, residue=width - nf * m * process.finger_width)


# --------------------------------------------------------------------------------------------------
# device facts from ngspice


@dataclass(frozen=True)
class DeviceAdmittance:
    """Small-signal admittance matrix ``y`` (3×3 complex, S) of a biased transistor at ``f`` (Hz),
    terminals (gate, drain, source) with the bulk at ac ground: ``y[i, k]`` is the current into terminal
    i per volt on terminal k. The lumped equivalent-circuit values are read off it."""

    name: str
    f: float
    y: np.ndarray

    @property
    def omega(self) -> float:
        """Angular frequency, rad/s."""
        return 2 * math.pi * self.f

    @property
    def gm(self) -> float:
        """Transconductance Re(y_dg): drain current per volt on the gate, other terminals held, S."""
        return float(np.real(self.y[1, 0]))

    @property
    def gds(self) -> float:
        """Output conductance Re(y_dd), S."""
        return float(np.real(self.y[1, 1]))

    @property
    def cgs(self) -> float:
        """Total gate-source capacitance −Im(y_gs)/ω (intrinsic + overlap + fringe), F."""
        return float(-np.imag(self.y[0, 2]) / self.omega)

    @property
    def cgd(self) -> float:
        """Total gate-drain capacitance −Im(y_gd)/ω, F."""
        return float(-np.imag(self.y[0, 1]) / self.omega)

    @property
    def cgg(self) -> float:
        """Total gate capacitance Im(y_gg)/ω, F."""
        return float(np.imag(self.y[0, 0]) / self.omega)

    @property
    def cdd(self) -> float:
        """Total drain capacitance Im(y_dd)/ω (Cgd + Cds + drain junction), F."""
        return float(np.imag(self.y[1, 1]) / self.omega)

    @property
    def rg(self) -> float:
        """Series gate resistance seen at f: Re(1/y_gg), Ω (gate electrode + channel, rgatemod = 1)."""
        return float(np.real(1.0 / self.y[0, 0]))


@dataclass(frozen=True)
class OperatingPoint:
    """The testbench's dc solution at a design point: node voltages (V, lower-case names), the supply
    current (A, delivered by VDD) and BSIM4 instance quantities per device (``devices['m1']['gm']``)."""

    voltages: dict[str, float]
    supply_current: float
    devices: dict[str, dict[str, float]]

    def voltage(self, node: str) -> float:
        """Voltage of a node (0 for ground), V."""
        node = node.lower()
        return 0.0 if node in ("0", "gnd") else self.voltages[node]


def _instance_line(netlist: Netlist, device: str, min_tokens: int = 6) -> list[str]:
    for line in netlist.body:
        tokens = line.split()
        if tokens and tokens[0].lower() == device.lower():
            if len(tokens) < min_tokens:
                raise SizingError(f"cannot read the instance line of {device}: {line}")
            return tokens
    raise SizingError(f"no device {device} in {netlist.path.name}")


def _run(probe: Probe, netlist: Netlist, names: Sequence[str], values: Sequence[float], timeout: float,
         expected: tuple[str, ...], saves: Sequence[str] = ()) -> Waveforms:
    job = SimJob(netlist=netlist, names=tuple(names), copies=False, timeout=timeout, expected=expected,
                 saves=tuple(saves))
    outcome = probe(job, np.asarray(values, dtype=float))
    if not outcome.ok or outcome.waveforms is None:
        raise SizingError(f"ngspice failed: {outcome.failure}")
    return outcome.waveforms


def operating_point(netlist: Netlist, names: Sequence[str], values: Sequence[float], devices: Sequence[str],
                    probe: Probe, supply: str = "VDD", timeout: float = 20.0) -> OperatingPoint:
    """Solve the dc operating point of ``netlist`` with parameters ``names`` = ``values`` (SI) by one
    ngspice ``.op`` and read :data:`OP_QUANTITIES` of each device (``@m1[gm]`` …)."""
    netlist = dataclasses.replace(netlist, analyses=(".op",), measures=())
    saves = [f"@{d.lower()}[{q}]" for d in devices for q in OP_QUANTITIES]
    waves = _run(probe, netlist, names, values, timeout, ("op",), saves)
    available = waves.names("op")

    def value(name: str) -> float:
        return float(np.real(waves.vector("op", name)[0]))

    voltages = {k[2:-1]: value(k) for k in available if k.startswith("v(") and "@" not in k}
    found: dict[str, dict[str, float]] = {}
    for device in devices:
        found[device.lower()] = {}
        for quantity in OP_QUANTITIES:
            vector = f"@{device.lower()}[{quantity}]"
            key = next((k for k in (f"v({vector})", f"i({vector})", vector) if k in available), None)
            if key is None:
                raise SizingError(f"{vector} is not in the operating-point results")
            found[device.lower()][quantity] = value(key)
    current = -value(f"i({supply.lower()})")
    return OperatingPoint(voltages=voltages, supply_current=current, devices=found)


def device_admittances(netlist: Netlist, names: Sequence[str], values: Sequence[float], devices: Sequence[str],
                       op: OperatingPoint, f: float, probe: Probe,
                       timeout: float = 20.0) -> dict[str, DeviceAdmittance]:
    """Admittance matrices (gate, drain, source) at ``f`` of ``devices`` biased as in ``op``.

    One ngspice run: for each device, three copies of its instance line from the netlist (same model,
    geometry and parameters) with every terminal held at its operating-point voltage by a source; copy k
    has ``ac 1`` on terminal k, so the source currents of copy k are column k of the matrix."""
    params = [line for line in netlist.body if line.lower().startswith(".param")]
    lines: list[str] = []
    for device in devices:
        tokens = _instance_line(netlist, device)
        nodes = dict(zip(("d", "g", "s", "b"), tokens[1:5], strict=True))
        bulk = nodes["b"].lower()
        for k in TERMINALS:
            tag = f"{device}_{k}".lower()
            for t in TERMINALS:
                ac = " ac 1" if t == k else ""
                lines.append(f"vx_{tag}_{t} x_{tag}_{t} 0 dc {op.voltage(nodes[t]):.12g}{ac}")
            if bulk in ("0", "gnd"):
                b = "0"
            else:
                b = f"x_{tag}_b"
                lines.append(f"vx_{tag}_b {b} 0 dc {op.voltage(bulk):.12g}")
            lines.append(f"m_{tag} x_{tag}_d x_{tag}_g x_{tag}_s {b} " + " ".join(tokens[5:]))
    deck = dataclasses.replace(netlist, body=tuple(params + lines), analyses=(f".ac lin 1 {f:.12g} {f:.12g}",),
                               measures=(), sources={})
    waves = _run(probe, deck, names, values, timeout, ("ac",))
    out = {}
    for device in devices:
        y = np.zeros((3, 3), dtype=complex)
        for col, k in enumerate(TERMINALS):
            for row, t in enumerate(TERMINALS):
                y[row, col] = -waves.vector("ac", f"i(vx_{device.lower()}_{k}_{t})")[0]  # into the device terminal
        out[device.lower()] = DeviceAdmittance(device, f, y)
    return out


# --------------------------------------------------------------------------------------------------
# the small-signal model of the amplifier at f0


@dataclass(frozen=True)
class Passives:
    """The passive design values: Ls, Lg, L1 (H), Ci, Co (F), R1 (Ω)."""

    ls: float
    lg: float
    ci: float
    l1: float
    r1: float
    co: float


IN, N1, G, S, D1, D2, OUT = range(7)


class SmallSignalModel:
    """Nodal model of ``circuits/lna_cascode`` at one frequency: the device admittance matrices of M1
    (gate g, drain d1, source s) and M2 (gate at ac ground, drain d2, source d1), ideal passives, the
    bias feed RB from n1 to ac ground, source R_si and load R_so (Ω). Nodes: in, n1, g, s, d1, d2, out."""

    def __init__(self, f: float, rsi: float, rso: float, rb: float, m1: DeviceAdmittance,
                 m2: DeviceAdmittance) -> None:
        self.f, self.rsi, self.rso, self.rb, self.m1, self.m2 = f, rsi, rso, rb, m1, m2
        self.omega = 2 * math.pi * f

    def _matrix(self, p: Passives, skip: tuple[str, ...] = ()) -> np.ndarray:
        w = self.omega
        y = np.zeros((7, 7), dtype=complex)

        def branch(a: int, b: int | None, value: complex) -> None:
            y[a, a] += value
            if b is not None:
                y[b, b] += value
                y[a, b] -= value
                y[b, a] -= value

        elements = {"rsi": (IN, None, 1 / self.rsi), "ci": (IN, N1, 1j * w * p.ci), "rb": (N1, None, 1 / self.rb),
                    "lg": (N1, G, 1 / (1j * w * p.lg)), "ls": (S, None, 1 / (1j * w * p.ls)),
                    "l1": (D2, None, 1 / (1j * w * p.l1)), "r1": (D2, None, 1 / p.r1),
                    "co": (D2, OUT, 1j * w * p.co), "rso": (OUT, None, 1 / self.rso)}
        for name, (a, b, value) in elements.items():
            if name not in skip:
                branch(a, b, value)
        for row, i in enumerate((G, D1, S)):
            for col, k in enumerate((G, D1, S)):
                y[i, k] += self.m1.y[row, col]
        for row, i in enumerate((D2, D1)):  # M2: drain d2, source d1; its gate is at ac ground
            for col, k in enumerate((D2, D1)):
                y[i, k] += self.m2.y[row + 1, col + 1]
        return y

    def _impedance(self, p: Passives, node: int, skip: tuple[str, ...]) -> complex:
        current = np.zeros(7, dtype=complex)
        current[node] = 1.0
        return complex(np.linalg.solve(self._matrix(p, skip), current)[node])

    def z_gate(self, p: Passives) -> complex:
        """Impedance into the gate of M1 (Ls, cascode and load in place; Lg, Ci and the source removed), Ω."""
        return self._impedance(p, G, ("lg",))

    def y_out_device(self, p: Passives) -> complex:
        """Admittance into the drain of M2 with the input network and source in place, without L1, R1
        and Co, S."""
        return 1.0 / self._impedance(p, D2, ("l1", "r1", "co"))

    def z_in(self, p: Passives) -> complex:
        """Input impedance at port 1 (node ``in``), Ω."""
        return self._impedance(p, IN, ("rsi",))

    def z_out(self, p: Passives) -> complex:
        """Output impedance at port 2 (node ``out``, source R_si at the input), Ω."""
        return self._impedance(p, OUT, ("rso",))

    def s21(self, p: Passives) -> complex:
        """S21 with power waves: 2 V(out)/V_s √(R_si/R_so) for a source of V_s behind R_si."""
        current = np.zeros(7, dtype=complex)
        current[IN] = 1.0 / self.rsi  # Norton equivalent of 1 V behind R_si
        v = np.linalg.solve(self._matrix(p), current)
        return complex(2 * v[OUT] * math.sqrt(self.rsi / self.rso))

    def s11(self, p: Passives) -> complex:
        """S11 = (Z_in − R_si)/(Z_in + R_si)."""
        return complex(rf.reflection_coefficient(self.z_in(p), self.rsi))

    def s22(self, p: Passives) -> complex:
        """S22 = (Z_out − R_so)/(Z_out + R_so)."""
        return complex(rf.reflection_coefficient(self.z_out(p), self.rso))

    # ---- the sizing steps on this model

    def degeneration(self, p: Passives) -> tuple[float, Bisection]:
        """Ls (H) such that Re(Z_gate) = R_si, by bisection (log scale) on the first rising crossing in
        :data:`LS_RANGE`. Re(Z_gate) ≈ ω_T Ls only for small Ls: Ls resonates with the capacitance at the
        source node, after which Re(Z_gate) falls again, so the range is scanned on a 25-point log grid
        first and the bisection runs inside the first interval where Re(Z_gate) − R_si changes sign."""
        return first_crossing(lambda ls: self.z_gate(dataclasses.replace(p, ls=ls)).real - self.rsi, *LS_RANGE)

    def gate_network(self, p: Passives) -> tuple[float, float, bool]:
        """(Lg in H, Ci in F, bond-wire fallback used) cancelling Im(Z_gate): Lg1 = −X/ω, 1/(ω Ci) = ω Lg1/10,
        Lg = 1.1 Lg1; when Z_gate is inductive (X ≥ 0), Lg = 1 nH and Ci resonates X + ω·1 nH."""
        x, w = self.z_gate(p).imag, self.omega
        if x < 0:
            lg1 = -x / w
            return 1.1 * lg1, 10.0 / (w * w * lg1), False
        return BOND_WIRE, 1.0 / (w * (x + w * BOND_WIRE)), True

    def output_match(self, p: Passives, r1: float) -> tuple[float, float, bool]:
        """(L1 in H, Co in F, matched) for load resistor ``r1``: the parallel R_p = 1/(G_dev + 1/R1) at the
        drain of M2 is matched to R_so by series Co (X = R_so √(R_p/R_so − 1)) and L1 tunes out the rest
        of the susceptance. With R_p ≤ R_so no such match exists: Co is then a near-short (X = R_so/20)
        and L1 resonates the drain capacitance (``matched`` False)."""
        w = self.omega
        y_dev = self.y_out_device(p)
        rp = 1.0 / (y_dev.real + 1.0 / r1)
        matched = rp > self.rso * 1.0001
        x = self.rso * math.sqrt(rp / self.rso - 1.0) if matched else self.rso / 20
        b_load = x / (self.rso ** 2 + x * x)
        susceptance = y_dev.imag + b_load
        if susceptance <= 0:
            raise SizingError(f"the drain of M2 looks inductive at {self.f:.4g} Hz; no L1 can tune it")
        return 1.0 / (w * susceptance), 1.0 / (w * x), matched

    def gain_db(self, p: Passives, r1: float) -> float:
        """|S21| in dB with load ``r1`` and the output matched for it (:meth:`output_match`)."""
        l1, co, _ = self.output_match(p, r1)
        return float(20 * np.log10(abs(self.s21(dataclasses.replace(p, r1=r1, l1=l1, co=co)))))


# --------------------------------------------------------------------------------------------------
# the sizer


@dataclass(frozen=True)
class Sizing:
    """A first cut: ``design`` (netlist parameter → SI value), the figures the model predicts at f0
    (``predicted``: s21_db, s11_db, s22_db, g_max_db, g_min_db), the device facts (op quantities and
    admittance matrices of M1/M2), the finger layout of W, the bisections' iteration counts, the
    ngspice runs used and any warnings."""

    design: dict[str, float]
    predicted: dict[str, float]
    fingers: Fingers
    op: OperatingPoint
    devices: dict[str, DeviceAdmittance]
    iterations: dict[str, int]
    runs: int
    notes: list[str] = field(default_factory=list)


class LnaCascodeSizer:
    """The Hongik analytical sizer as a proposer for specs on ``circuits/lna_cascode`` (or any netlist
    with the same element and parameter names: W, nfb, R_DB, Ls, Lg, Ci, L1, R1, Co, f0, Rsi, Rso, VDD, RB
    and devices M1, M2).

    ``idd``: drain current of M1 in A, or ``power``: a dc power budget in W, with I_DD = power/VDD minus
    the bias branch current; ``gain_db``: target |S21| in dB (default: the spec's ``s21_db``
    lower limit + ``margin_db``, else 21 dB); ``bias_current``: the mirror branch current the bias
    fingers are chosen for (A); ``spread``: relative standard deviation of the random variations added
    when more than one candidate is asked for. Width and bias fingers are sized only when they are spec
    design variables; otherwise their netlist values are kept.
    """

    def __init__(self, idd: float = 5e-3, gain_db: float | None = None, process: Process | None = None,
                 bias_current: float = 100e-6, margin_db: float = 3.0, spread: float = 0.05,
                 passes: int = 30, power: float | None = None, probe: Probe | None = None) -> None:
        self.idd, self.power, self.gain_db, self.process = idd, power, gain_db, process or Process()
        self.bias_current, self.margin_db, self.spread = bias_current, margin_db, spread
        self.passes = max(1, passes)
        self.probe = probe
        self.name = "lna_cascode sizer"
        self.last: Sizing | None = None

    # ---- helpers

    def target_gain(self, spec: Spec) -> float:
        """Target |S21| in dB: the constructor's, else the spec's s21_db minimum + margin, else 21 dB."""
        if self.gain_db is not None:
            return self.gain_db
        bound = spec.file.specs.get("s21_db")
        if bound is not None and bound.min is not None:
            return bound.min + self.margin_db
        return 21.0

    @staticmethod
    def _fixed(spec: Spec, name: str) -> float:
        nominal = spec.nominal()
        value = nominal.get(name, spec.testbench.nominal(name))
        if value is None:
            raise SizingError(f"the sizer needs a numeric `.param {name}` in {spec.testbench.netlist.path.name}")
        return float(value)

    # ---- the steps

    def size(self, spec: Spec) -> Sizing:
        """Run the sizing steps (module docstring) for ``spec`` and return the first cut."""
        with probing(self.probe) as probe:
            return self._size(spec, probe)

    def _size(self, spec: Spec, probe: Probe) -> Sizing:
        netlist, timeout = spec.testbench.netlist, spec.testbench.timeout
        free = set(spec.file.design)
        f0, rsi, rso = (self._fixed(spec, n) for n in ("f0", "Rsi", "Rso"))
        rb = self._fixed(spec, "RB")
        idd = self.idd if self.power is None else self.power / self._fixed(spec, "VDD") - self.bias_current
        if idd <= 0:
            raise SizingError(f"a power budget of {self.power:g} W leaves no current for M1")
        notes: list[str] = []
        runs = 0

        def note(message: str) -> None:
            notes.append(message)
            warnings.warn(message, SizingWarning, stacklevel=3)

        design: dict[str, float] = {}
        # 1. width: noise optimum under the power constraint, capped, whole fingers
        process = dataclasses.replace(self.process, finger_width=self._fixed(spec, "WF"))
        if "W" in free:
            w_opt = noise_optimum_width(f0, rsi, process)
            if w_opt > process.w_max:
                note(f"W_opt = {w_opt * 1e6:.0f} um at {f0 / 1e9:.3g} GHz is capped at {process.w_max * 1e6:.0f} um")
                w_opt = process.w_max
            fingers = finger_layout(w_opt, process)
            design["W"] = fingers.width
        else:
            fingers = finger_layout(self._fixed(spec, "W"), process)
        # 2. bias: mirror fingers for ~bias_current, R_DB by bisection on the .op for I_DD
        if "nfb" in free:
            design["nfb"] = float(max(1, round(fingers.count * self.bias_current / idd)))
        names = tuple(dict.fromkeys((*spec.parameters, *design)))

        def values(point: Mapping[str, float]) -> list[float]:
            nominal = spec.nominal({k: v for k, v in point.items() if k in spec.file.design})
            return [point.get(n, nominal.get(n, self._fixed(spec, n))) for n in names]

        def op_at(r_db: float) -> OperatingPoint:
            nonlocal runs
            runs += 1
            return operating_point(netlist, names, values({**design, "R_DB": r_db}), ("M1", "M2"), probe,
                                   timeout=timeout)

        rdb = bisect(lambda r: op_at(r).devices["m1"]["id"] / idd - 1.0, *RDB_RANGE, xtol=1e-4, ftol=2e-4,
                     log=True)
        if not rdb.bracketed:
            note(f"I_DD = {idd * 1e3:.3g} mA is not reachable with R_DB in {RDB_RANGE} ohm; "
                 f"R_DB = {rdb.x:.4g} ohm")
        design["R_DB"] = rdb.x
        op = op_at(rdb.x)
        # 3. device admittances at f0 (total capacitances, gate resistance)
        devices = device_admittances(netlist, names, values(design), ("M1", "M2"), op, f0, probe, timeout)
        runs += 1
        model = SmallSignalModel(f0, rsi, rso, rb, devices["m1"], devices["m2"])
        # 4-5. input match, output match and gain, repeated (the two ports see each other through Cgd)
        target = self.target_gain(spec)
        w = 2 * math.pi * f0
        cd = max(devices["m2"].cdd, 1e-15)
        p = Passives(ls=1e-9, lg=1.0 / (w * w * devices["m1"].cgs), ci=1e-9, l1=1.0 / (w * w * cd), r1=1e3,
                     co=1.0 / (w * rso))
        iterations: dict[str, int] = {"R_DB": rdb.iterations}
        g_max = g_min = math.nan
        change, used = math.inf, 0
        while change >= 1e-7 and used < self.passes:
            used += 1
            previous = p
            ls, ls_result = model.degeneration(p)
            iterations["Ls"] = ls_result.iterations
            p = dataclasses.replace(p, ls=ls)
            lg, ci, wire = model.gate_network(p)
            p = dataclasses.replace(p, lg=lg, ci=ci)
            g_max, g_min = model.gain_db(p, R1_RANGE[1]), model.gain_db(p, R1_RANGE[0])
            if target > g_max:
                r1 = R1_RANGE[1]
            elif target < g_min:
                r1 = R1_RANGE[0]
            else:
                r1_result = bisect(lambda r, p=p: model.gain_db(p, r) - target, *R1_RANGE, xtol=1e-6, log=True)
                iterations["R1"] = r1_result.iterations
                r1 = r1_result.x
            l1, co, matched = model.output_match(p, r1)
            p = dataclasses.replace(p, r1=r1, l1=l1, co=co)
            change = max(abs(a / b - 1) for a, b in zip(dataclasses.astuple(p), dataclasses.astuple(previous),
                                                         strict=True))
        iterations["passes"] = used
        if change >= 1e-7:
            note(f"input and output matches did not settle in {self.passes} passes (last change {change:.2g})")
        if not ls_result.bracketed:
            note(f"Re(Z_gate) = {rsi:g} ohm needs Ls outside {LS_RANGE} H; Ls = {p.ls:.4g} H")
        if wire:
            note(f"Z_gate is inductive at {f0 / 1e9:.3g} GHz: Lg = 1 nH bond wire, Ci resonates the rest")
        if target > g_max:
            note(f"target |S21| {target:.2f} dB exceeds G_max = {g_max:.2f} dB (R1 = 10 kohm): "
                 "sizing stopped at the G_max design")
        elif target < g_min:
            note(f"target |S21| {target:.2f} dB is below G_min = {g_min:.2f} dB (R1 = 40 ohm)")
        if not matched:
            note("output not matchable with series Co and shunt L1 (R_p <= R_so)")
        design.update({"Ls": p.ls, "Lg": p.lg, "Ci": p.ci, "L1": p.l1, "R1": p.r1, "Co": p.co})
        predicted = {"s21_db": 20 * math.log10(abs(model.s21(p))), "s11_db": 20 * math.log10(abs(model.s11(p))),
                     "s22_db": 20 * math.log10(abs(model.s22(p))), "g_max_db": g_max, "g_min_db": g_min,
                     "target_db": target}
        return Sizing(design=design, predicted=predicted, fingers=fingers, op=op, devices=devices,
                      iterations=iterations, runs=runs, notes=notes)

    # ---- the proposer protocol

    def propose(self, spec: Spec, count: int = 1, seed: int = 0) -> np.ndarray:
        """The first cut as row 0 of a (count, D) array in the spec's design order (SI); rows 1… are
        log-normal variations (σ = ``spread``) of it. Design variables the sizer does not set keep their
        start values. The sizing is kept in ``self.last``."""
        sizing = self.size(spec)
        self.last = sizing
        start = spec.design_start
        x0 = np.array([sizing.design.get(n, start[n]) for n in spec.file.design], dtype=float)
        rng = np.random.default_rng(seed)
        rows = [x0] + [x0 * np.exp(self.spread * rng.standard_normal(x0.size)) for _ in range(max(0, count - 1))]
        return np.vstack(rows)


def with_netlist_defaults(spec: Spec, values: Mapping[str, float]) -> Spec:
    """A copy of ``spec`` whose testbench netlist has new ``.param`` defaults (name → SI value), e.g. the
    design frequency ``{"f0": 1e9}``. Only parameters that are neither design variables nor varied should
    be set this way (those take their values from the spec)."""
    netlist = spec.testbench.netlist
    lowered = {k.lower(): v for k, v in values.items()}
    missing = set(lowered) - set(netlist.params)
    if missing:
        raise SizingError(f"no `.param {', '.join(sorted(missing))}` in {netlist.path.name}")

    def substitute(line: str) -> str:
        if not line.lower().startswith(".param"):
            return line
        return ".param" + re.sub(r"([A-Za-z_]\w*)(\s*=\s*)({[^}]*}|'[^']*'|\S+)",
                                 lambda m: f"{m[1]}={lowered[m[1].lower()]:.12g}" if m[1].lower() in lowered
                                 else m[0], line[len(".param"):])

    params = {k: (f"{lowered[k]:.12g}" if k in lowered else v) for k, v in netlist.params.items()}
    netlist = dataclasses.replace(netlist, body=tuple(substitute(line) for line in netlist.body), params=params)
    return Spec(spec.file, dataclasses.replace(spec.testbench, netlist=netlist), spec.model, spec.path)


def first_cut(spec: Spec, **options: object) -> Sizing:
    """Convenience: ``LnaCascodeSizer(**options).size(spec)``."""
    return LnaCascodeSizer(**options).size(spec)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# two-port noise parameters (NFmin) of the testbench


@dataclass(frozen=True)
class NoiseParameters:
    """Two-port noise parameters at f (Hz): F_min (IEEE, linear), noise resistance R_n (Ω), optimum
    source admittance Y_opt (S); ``nf_min_db`` = 10 log10 F_min; ``residual`` = rms misfit of the
    measured noise factors to the four-parameter form (a check on the fit)."""

    f: float
    f_min: float
    rn: float
    y_opt: complex
    residual: float

    @property
    def nf_min_db(self) -> float:
        """Minimum noise figure over source impedances, dB."""
        return 10 * math.log10(self.f_min)

    @property
    def z_opt(self) -> complex:
        """Optimum source impedance, Ω."""
        return 1.0 / self.y_opt


#: Source impedances (Ω) the noise parameters are fitted from: around 50 Ω, on both sides of the real axis.
SOURCE_IMPEDANCES = (50, 25, 100, 50 + 30j, 50 - 30j, 30 + 15j, 80 - 40j, 35 - 20j)


def noise_parameters(spec: Spec, design: Mapping[str, float], impedances: Sequence[complex] = SOURCE_IMPEDANCES,
                     source_resistor: str = "RSI", probe: Probe | None = None) -> NoiseParameters:
    """Fit F = F_min + (R_n/G_s)|Y_s − Y_opt|² to ngspice ``.noise`` runs of the spec's testbench at f0
    with the source impedance Z_s = R + jX (R in the source resistor, X an ideal noiseless L or C in series
    with it) set to each of ``impedances``. F is linear in (F_min − 2R_nG_opt, R_n, −2R_nB_opt, R_n|Y_opt|²)
    against (1, |Y_s|²/G_s, B_s/G_s, 1/G_s), so one least-squares solve gives all four. One ngspice run per
    impedance; the source resistor's noise sets F (it is at the simulation temperature, converted to the
    IEEE 290 K source as the testbench's NF measure does)."""
    netlist, timeout = spec.testbench.netlist, spec.testbench.timeout
    f0 = float(spec.nominal(dict(design)).get("f0", spec.testbench.nominal("f0") or 0.0))
    names = tuple(spec.parameters)
    nominal = spec.nominal({k: v for k, v in design.items() if k in spec.file.design})
    values = [nominal[n] for n in names]
    tokens = _instance_line(netlist, source_resistor, 4)
    temp = simulation_temperature(netlist) + rf.ZERO_CELSIUS
    w = 2 * math.pi * f0
    factors = []
    with probing(probe) as run:
        for z in impedances:
            z = complex(z)
            r_line = f"{tokens[0]} {tokens[1]} zs_node {z.real:.12g}"
            if z.imag > 0:
                x_line = f"lzs zs_node {tokens[2]} {z.imag / w:.12g}"
            elif z.imag < 0:
                x_line = (f"czs zs_node {tokens[2]} {1.0 / (w * -z.imag):.12g}\n"  # + a dc path, noiseless
                          f"rzs_dc {tokens[2]} 0 1e12 noisy=0")
            else:
                x_line = f"vzs zs_node {tokens[2]} dc 0"
            body = []
            for line in netlist.body:
                body += [r_line, x_line] if line.split()[0].lower() == tokens[0].lower() else [line]
            deck = dataclasses.replace(netlist, body=tuple(body),
                                       analyses=tuple(a for a in netlist.analyses if a.lower().startswith(".noise")),
                                       measures=())
            spectrum = _run(run, deck, names, values, timeout, ()).vector("noise", "inoise_spectrum")
            factors.append(float(rf.noise_factor(np.abs(spectrum[0]), z, temp)))
    ys = 1.0 / np.asarray(impedances, dtype=complex)
    gs, bs = ys.real, ys.imag
    a = np.column_stack([np.ones_like(gs), np.abs(ys) ** 2 / gs, bs / gs, 1.0 / gs])
    coef, *_ = np.linalg.lstsq(a, np.asarray(factors), rcond=None)
    rn = float(coef[1])
    b_opt = -float(coef[2]) / (2 * rn)
    g_opt = math.sqrt(max(float(coef[3]) / rn - b_opt ** 2, 0.0))
    f_min = float(coef[0]) + 2 * rn * g_opt
    residual = float(np.sqrt(np.mean((a @ coef - np.asarray(factors)) ** 2)))
    return NoiseParameters(f=f0, f_min=f_min, rn=rn, y_opt=complex(g_opt, b_opt), residual=residual)
