"""Warm-started transients for ngspice: start a copy from a settled state (``.ic``, ``ic=``, ``uic``).

A driven RF testbench spends most of its transient settling: the PA's output network has an envelope
time constant of ~3 periods, so a cold start from the operating point needs ~20 periods before the
Fourier window. The rows of a finite-difference Jacobian (PAST) are copies of one outcome perturbed by
0.2 %: their periodic states are within ~0.2 % of the base outcome's. Started from the base's settled
state they need far fewer periods (docs/benchmarks.md, "Transient cost").

The state of a copy is read from the last point of a cold run that ends on a whole number of drive
periods (the drive is then back at phase 0):

- every node voltage → one ``.ic v(xK.node)=…`` per node and copy (capacitor charges follow from them);
- every inductor current → ``ic=`` on the inductor line (a subcircuit parameter, set per copy);
- every MOSFET's ``ic=vds,vgs,vbs`` from its terminal voltages, with the internal gate and body nodes of
  BSIM4's gate-resistance and body-resistance networks when the card has them; without these, ``uic``
  starts the devices' charges at vds = vgs = vbs = 0 and the first step kicks the circuit;
- every diode's ``ic=vd``.

Only flat testbench bodies of R, C, L, K, M, D and sources are supported (no subcircuit instances,
transmission lines or BJTs, whose state cannot be set this way); :func:`plan` says why otherwise.

**Linear start** (a cold run without an anchor): a short pre-run computes the operating point and the
small-signal response at f0 to the drive sources' sine (``.op`` + ``.ac lin 1 f0 f0``, each drive's ``ac``
set to its sine amplitude and phase − 90°, every other ``ac`` removed); the copy then starts from the
operating point plus the real part of that response, the linear periodic state at t = 0, and runs a few
periods. Scaled down where the linear response would swing a node by more than ``max_swing`` (a large
drive compresses: starting from the uncompressed state kicks the circuit). :func:`linear_deck_netlist`,
:func:`linear_states`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from optiyield.netlist import Netlist, spice_number

_SUPPORTED = set("rclkmdviefghb")
_GROUND = {"0", "gnd"}
_TRAN = re.compile(r"^\.tran\s+(\S+)\s+(\S+)(.*)$", re.IGNORECASE)
_NODE = re.compile(r"v\(x(\d+)\.([^)#]+)\)")
_INTERNAL = re.compile(r"v\(m\.x(\d+)\.([^)#.]+)#(gate|body)\)")
_INDUCTOR = re.compile(r"i\(l\.x(\d+)\.([^)]+)\)")
_PREFIX = {"gate": "g", "body": "b"}


class WarmStartError(ValueError):
    """The testbench cannot be warm-started; the message says why."""


@dataclass(frozen=True)
class Plan:
    """How a testbench is warm-started: the ``.tran`` line of a warm run (with ``uic``) and the elements
    whose state is set per copy."""

    tran: str
    inductors: tuple[str, ...]
    mosfets: tuple[tuple[str, str, str, str, str], ...]  # (name, d, g, s, b), lower case
    diodes: tuple[tuple[str, str, str], ...]  # (name, anode, cathode)


@dataclass(frozen=True)
class CopyStates:
    """The settled states of the copies of one sample: ``values[copy, j]`` is the quantity ``keys[j]``
    (``v:node`` a node voltage in V, ``i:inductor`` a current in A, ``g:mosfet`` / ``b:mosfet`` a BSIM4
    internal gate / body node in V)."""

    keys: tuple[str, ...]
    values: np.ndarray

    def of(self, copy: int) -> dict[str, float]:
        """The state of one copy as key → value."""
        return dict(zip(self.keys, self.values[copy].tolist(), strict=True))


def plan(netlist: Netlist, f0: float, periods: int, whole: bool = True) -> Plan:
    """The warm-start plan of a netlist whose cold ``.tran`` ends on whole periods of ``f0`` (Hz): warm runs
    keep its step and maximum step and last ``periods`` periods. ``whole=False`` (a linear start's own run)
    skips the check of the cold run's length. Raises :class:`WarmStartError`."""
    trans = [line for line in netlist.analyses if line.lower().startswith(".tran")]
    if len(trans) != 1:
        raise WarmStartError("a warm start needs exactly one .tran line")
    match = _TRAN.match(trans[0])
    if match is None or "uic" in trans[0].lower().split():
        raise WarmStartError(f"cannot read `{trans[0]}` (expected `.tran tstep tstop [tstart [tmax]]`, no uic)")
    stop = spice_number(match[2])
    rest = match[3].split()
    if stop is None or (rest and spice_number(rest[0]) not in (0.0, None)):
        raise WarmStartError(f"`{trans[0]}`: tstop must be a number and tstart 0")
    cycles = stop * f0
    if whole and abs(cycles - round(cycles)) > 1e-6 * max(1.0, cycles):
        raise WarmStartError(f"the cold run must end on a whole period of f0 = {f0:g} Hz (tstop × f0 = "
                             f"{cycles:.6g}); e.g. tstop = {round(cycles) / f0:.12g}")
    inductors, mosfets, diodes = [], [], []
    for line in netlist.body:
        if line.startswith("."):
            if line.lower().startswith((".ic", ".nodeset")):
                raise WarmStartError("the netlist sets .ic/.nodeset itself")
            continue
        kind = line[0].lower()
        fields = line.split()
        if kind not in _SUPPORTED:
            raise WarmStartError(f"element `{fields[0]}`: its state cannot be set per copy (supported: R, C, L, K, "
                                 "M, D and sources)")
        if re.search(r"\sic\s*=", line, re.IGNORECASE):
            raise WarmStartError(f"element `{fields[0]}` already has ic=")
        if kind == "l":
            inductors.append(fields[0].lower())
        elif kind == "m":
            mosfets.append(tuple(f.lower() for f in fields[:5]))
        elif kind == "d":
            diodes.append(tuple(f.lower() for f in fields[:3]))
    tail = " ".join(rest)
    tran = f".tran {match[1]} {periods / f0:.10g}" + (f" {tail}" if tail else "") + " uic"
    return Plan(tran=tran, inductors=tuple(inductors), mosfets=tuple(mosfets),  # type: ignore[arg-type]
                diodes=tuple(diodes))  # type: ignore[arg-type]


def _split(text: str) -> list[str]:
    """Whitespace-separated tokens of an element line, keeping ``{…}`` and ``(…)`` groups whole; a keyword
    followed by ``(`` (``sin (0 1 1G)``) stays one token."""
    tokens: list[str] = []
    depth, current = 0, ""
    for char in text:
        if char in "({":
            if char == "(" and depth == 0 and not current and tokens and tokens[-1].isalpha():
                current = tokens.pop()  # `sin (` → `sin(`
            depth += 1
        elif char in ")}":
            depth = max(0, depth - 1)
        if char.isspace() and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


def _value_token(token: str) -> bool:
    """True for a number or a ``{…}`` expression (an ac magnitude or phase), not a keyword such as ``sin(…)``."""
    return token.startswith("{") or spice_number(token) is not None


def _sine(tokens: list[str]) -> list[str] | None:
    """The arguments of a ``sin(…)`` token of a source line, or None."""
    for token in tokens:
        if token.lower().startswith("sin(") and token.endswith(")"):
            return _split(token[4:-1].replace(",", " "))
    return None


def linear_line(line: str, drives: tuple[str, ...]) -> str:
    """A body line for the linear pre-run: every source loses its ``ac`` specification, and each drive
    source (lower-case names in ``drives``) gets ``ac VA PHASE-90`` from its ``sin(VO VA FREQ 0 0 PHASE)``."""
    if not line or line[0].lower() not in "vi":
        return line
    tokens = _split(line)
    kept: list[str] = []
    skip = 0
    for i, token in enumerate(tokens):
        if skip:
            skip -= 1
            continue
        if i >= 3 and token.lower() == "ac":
            skip = 1 + (i + 2 < len(tokens) and _value_token(tokens[i + 2]))  # magnitude [phase]
            continue
        if i >= 3 and token.lower().startswith(("ac=", "acmag=", "acphase=")):
            continue
        kept.append(token)
    if tokens[0].lower() in drives:
        args = _sine(tokens)
        assert args is not None and len(args) >= 2  # checked by check_drives
        phase = args[5] if len(args) > 5 else "0"
        number = spice_number(phase)
        shifted = f"{number - 90:.12g}" if number is not None else f"{{({phase.strip('{}')})-90}}"
        kept.insert(3, f"ac {args[1]} {shifted}")
    return " ".join(kept)


def check_drives(netlist: Netlist, drives: tuple[str, ...]) -> None:
    """Raise :class:`WarmStartError` unless every drive names a source of the body with a
    ``sin(VO VA FREQ [TD [THETA [PHASE]]])`` whose delay and damping are 0."""
    lines = {line.split()[0].lower(): line for line in netlist.body if line and line[0].lower() in "vi"}
    for drive in drives:
        line = lines.get(drive.lower())
        if line is None:
            raise WarmStartError(f"drive `{drive}` is not a voltage or current source of the netlist")
        args = _sine(_split(line))
        if args is None or len(args) < 3:
            raise WarmStartError(f"drive `{drive}` has no sin(VO VA FREQ …) (the linear start needs a sine drive)")
        for index, what in ((3, "delay TD"), (4, "damping THETA")):
            if len(args) > index and spice_number(args[index]) != 0.0:
                raise WarmStartError(f"drive `{drive}`: the linear start needs sin(…) with {what} 0")


def linear_netlist(netlist: Netlist, f0: float, drives: tuple[str, ...]) -> Netlist:
    """The pre-run netlist of a linear start: ``.op`` + ``.ac lin 1 f0 f0`` driven by the sine of each drive."""
    import dataclasses

    body = tuple(linear_line(line, drives) for line in netlist.body)
    return dataclasses.replace(netlist, body=body, analyses=(".op", f".ac lin 1 {f0:.12g} {f0:.12g}"), measures=())


def linear_states(op: tuple[list[str], np.ndarray], ac: tuple[list[str], np.ndarray], copies: int,
                  max_swing: float | None) -> list[dict[str, float]]:
    """Per copy: the operating point (``op`` = vector names and values) plus the real part of the response at
    f0 (``ac``, complex), scaled by min(1, max_swing / the largest node amplitude) when ``max_swing`` (V) is given."""
    base = capture(op[0], np.real(op[1]), copies)
    real = capture(ac[0], np.real(ac[1]), copies)
    imag = capture(ac[0], np.imag(ac[1]), copies)
    states = []
    for c in range(copies):
        peak = max((abs(complex(real[c][k], imag[c].get(k, 0.0))) for k in real[c] if k.startswith("v:")),
                   default=0.0)
        scale = min(1.0, max_swing / peak) if max_swing is not None and peak > 0 else 1.0
        states.append({k: base[c].get(k, 0.0) + scale * real[c].get(k, 0.0) for k in base[c].keys() | real[c].keys()})
    return states


def capture(names: list[str], last: np.ndarray, copies: int) -> list[dict[str, float]]:
    """The state of each of ``copies`` copies from the last point ``last`` (one value per vector of
    ``names``) of a transient that saved every vector."""
    states: list[dict[str, float]] = [{} for _ in range(copies)]
    for column, name in enumerate(names):
        if (m := _NODE.fullmatch(name)) and int(m[1]) < copies:
            states[int(m[1])][f"v:{m[2]}"] = float(np.real(last[column]))
        elif (m := _INTERNAL.fullmatch(name)) and int(m[1]) < copies:
            states[int(m[1])][f"{_PREFIX[m[3]]}:{m[2]}"] = float(np.real(last[column]))
        elif (m := _INDUCTOR.fullmatch(name)) and int(m[1]) < copies:
            states[int(m[1])][f"i:{m[2]}"] = float(np.real(last[column]))
    return states


def pack(states: list[dict[str, float]]) -> CopyStates:
    """Copies' states (key → value each) as one compact :class:`CopyStates` (missing keys NaN)."""
    keys = tuple(dict.fromkeys(k for s in states for k in s))
    values = np.array([[s.get(k, np.nan) for k in keys] for s in states], dtype=float).reshape(len(states), len(keys))
    return CopyStates(keys, values)


def _param(element: str, what: str = "") -> str:
    return f"oyic_{element}{'_' + what if what else ''}"


def defaults(warm: Plan) -> list[str]:
    """``name=0`` subcircuit-parameter defaults of every initial condition."""
    names = [_param(n) for n in warm.inductors] + [_param(d[0]) for d in warm.diodes]
    names += [_param(m[0], t) for m in warm.mosfets for t in ("ds", "gs", "bs")]
    return [f"{n}=0" for n in names]


def element_line(warm: Plan, line: str) -> str:
    """A body line with its ``ic=`` bound to the per-copy parameters (other lines unchanged)."""
    name = line.split(maxsplit=1)[0].lower() if line.strip() else ""
    if name in warm.inductors or any(d[0] == name for d in warm.diodes):
        return f"{line} ic={{{_param(name)}}}"
    if any(m[0] == name for m in warm.mosfets):
        return f"{line} ic={{{_param(name, 'ds')}}},{{{_param(name, 'gs')}}},{{{_param(name, 'bs')}}}"
    return line


def assignments(warm: Plan, state: dict[str, float]) -> list[str]:
    """Instance parameters of one copy: its inductor currents, diode voltages and MOSFET vds/vgs/vbs."""

    def v(node: str) -> float:
        value = 0.0 if node in _GROUND else state.get(f"v:{node}", 0.0)
        return value if np.isfinite(value) else 0.0

    def known(key: str, fallback: float) -> float:
        value = state.get(key, fallback)
        return value if np.isfinite(value) else fallback

    out = [f"{_param(n)}={known(f'i:{n}', 0.0):.10g}" for n in warm.inductors]
    out += [f"{_param(d)}={v(a) - v(k):.10g}" for d, a, k in warm.diodes]
    for m, d, g, s, b in warm.mosfets:
        gate, body = known(f"g:{m}", v(g)), known(f"b:{m}", v(b))
        out += [f"{_param(m, 'ds')}={v(d) - v(s):.10g}", f"{_param(m, 'gs')}={gate - v(s):.10g}",
                f"{_param(m, 'bs')}={body - v(s):.10g}"]
    return out


def ic_lines(states: list[dict[str, float]]) -> list[str]:
    """``.ic`` lines setting every node of every copy (copy k is subcircuit instance ``xk``)."""
    lines = []
    for k, state in enumerate(states):
        parts = [f"v(x{k}.{key[2:]})={value:.10g}" for key, value in state.items()
                 if key.startswith("v:") and np.isfinite(value)]
        if parts:
            lines.append(".ic " + " ".join(parts))
    return lines
