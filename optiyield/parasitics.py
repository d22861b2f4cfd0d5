"""Parasitic-aware devices: layout-like Cgs/Cgd/Cds added to every MOSFET of a testbench netlist.

A testbench with ``parasitics: regression`` gets, next to each MOSFET instance, three capacitors whose
values follow a linear regression in the number of fingers N, the finger width w (µm) and the
multiplier M (the knowledge-aware VGA tool's model, DESIGN.md §5)::

    C = max(0, a + b·N + c·w) · M      [fF]

with the default coefficients (the VGA paper's)::

    Cgs = (−18.46 + 0.676·N + 14.93·w)·M fF
    Cgd = (−17.83 + 0.683·N + 13.87·w)·M fF
    Cds = (−29.02 + 0.907·N + 23.45·w)·M fF

N, w and M come from the instance line's BSIM4 parameters ``nf`` (default 1), ``w`` (total width, so
w = W/nf) and ``m`` (default 1). Those may be expressions of design or statistical parameters
(``W={WN1}``), so each capacitor is written as an ngspice expression of the same text: it follows the
parameters per sample in a batched deck. A negative regression value is clipped at 0.

This module also fits the coefficients to a table of extracted capacitances (``optiyield
fit-parasitics``) and reads/writes the coefficient YAML that ``parasitic_coefficients:`` accepts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from optiyield.errors import SpecError, from_validation_error, load_validated
from optiyield.netlist import Netlist, spice_number

#: The three capacitances, in the order they are written: gate-source, gate-drain, drain-source.
CAPACITANCES = ("cgs", "cgd", "cds")
#: Columns of a fit-parasitics table: fingers, finger width in µm, multiplier, capacitances in fF.
TABLE_COLUMNS = ("N", "w_um", "M", "cgs_fF", "cgd_fF", "cds_fF")
#: Name prefix of the injected capacitors: ``Cpar_gs_M1`` is Cgs of ``M1``.
PREFIX = "Cpar"
_GROUND = {"0", "gnd"}


class ParasiticError(ValueError):
    """Parasitics cannot be added to a netlist, or a coefficient table cannot be fitted."""


class Regression(BaseModel):
    """One capacitance regression C/M = a + b·N + c·w: ``a`` in fF, ``b`` in fF per finger, ``c`` in fF
    per µm of finger width. YAML: ``{a: -18.46, b: 0.676, c: 14.93}`` or ``[-18.46, 0.676, 14.93]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    a: float
    b: float
    c: float

    @field_validator("a", "b", "c")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("coefficient must be a finite number")
        return value

    def femtofarads(self, n: Any, w_um: Any, m: Any) -> np.ndarray:
        """Capacitance in fF for fingers ``n``, finger width ``w_um`` (µm) and multiplier ``m``, clipped at 0
        (vectorised)."""
        n, w_um, m = (np.asarray(x, dtype=float) for x in (n, w_um, m))
        return np.maximum(0.0, self.a + self.b * n + self.c * w_um) * m


def _regression_from_list(value: Any) -> Any:
    """``[a, b, c]`` → ``{a:, b:, c:}`` (a mapping passes through)."""
    if isinstance(value, list | tuple):
        if len(value) != 3:
            raise ValueError(f"expected three coefficients [a, b, c], got {len(value)}")
        return dict(zip("abc", value, strict=True))
    return value


class ParasiticCoefficients(BaseModel):
    """Coefficients of the three regressions (what ``parasitic_coefficients:`` holds or points to).

    ``model``, ``source``, ``rows`` and ``r2`` are informational: ``optiyield fit-parasitics`` writes them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cgs: Regression
    cgd: Regression
    cds: Regression
    model: str | None = None
    source: str | None = None
    rows: int | None = None
    r2: dict[str, float] | None = None

    @field_validator("cgs", "cgd", "cds", mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        return _regression_from_list(value)

    def regression(self, name: str) -> Regression:
        """The regression of ``cgs``, ``cgd`` or ``cds``."""
        return getattr(self, name)

    def femtofarads(self, n: Any, w_um: Any, m: Any) -> dict[str, np.ndarray]:
        """All three capacitances in fF (clipped at 0) for fingers ``n``, finger width ``w_um`` (µm) and
        multiplier ``m``."""
        return {name: self.regression(name).femtofarads(n, w_um, m) for name in CAPACITANCES}


#: The knowledge-aware VGA tool's regression (DESIGN.md §5), in fF with w in µm.
DEFAULT_COEFFICIENTS = ParasiticCoefficients(
    cgs=Regression(a=-18.46, b=0.676, c=14.93),
    cgd=Regression(a=-17.83, b=0.683, c=13.87),
    cds=Regression(a=-29.02, b=0.907, c=23.45),
    model="C = max(0, a + b*N + c*w_um) * M  [fF]",
    source="knowledge-aware VGA tool (DESIGN.md section 5)",
)


# ---------------------------------------------------------------------------------------------------
# netlist injection


@dataclass(frozen=True)
class MosInstance:
    """A MOSFET instance line as the regression needs it: name, drain/gate/source nodes and the ngspice
    expression text (without braces) of total width ``w`` (m), fingers ``nf`` and multiplier ``m``."""

    name: str
    drain: str
    gate: str
    source: str
    w: str
    nf: str
    m: str


def _split(line: str) -> list[str]:
    """Split an element line at blanks outside braces, parentheses and quotes; ``W = {x}`` → ``W={x}``."""
    tokens: list[str] = []
    current, depth, quote = "", 0, ""
    for char in line:
        if quote:
            current += char
            quote = "" if char == quote else quote
        elif char in "'\"":
            current, quote = current + char, char
        elif char in "{(":
            current, depth = current + char, depth + 1
        elif char in "})":
            current, depth = current + char, max(0, depth - 1)
        elif char.isspace() and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    joined: list[str] = []
    for token in tokens:
        if joined and (token.startswith("=") or joined[-1].endswith("=")):
            joined[-1] += token
        else:
            joined.append(token)
    return joined


def _expression(text: str) -> str:
    """Instance-parameter value → an ngspice expression (no braces): numbers in SI, ``{e}``/``'e'`` → ``e``."""
    text = text.strip()
    number = spice_number(text)
    if number is not None:
        return f"{number:.12g}"
    if len(text) >= 2 and (text[0], text[-1]) in (("{", "}"), ("'", "'"), ('"', '"')):
        return text[1:-1].strip()
    return text


def parse_mosfet(line: str) -> MosInstance:
    """Read a MOSFET instance line (``Mname d g s b model W=… nf=… m=…``); nf and m default to 1.

    Raises :class:`ParasiticError` when the line has fewer than four nodes and a model, or no ``W``.
    """
    tokens = _split(line)
    positional = [t for t in tokens[1:] if "=" not in t]
    if len(positional) < 5:
        raise ParasiticError(f"{tokens[0]}: cannot read drain, gate, source, bulk and model from `{line}`")
    params: dict[str, str] = {}
    for token in tokens[1:]:
        if "=" in token:
            key, _, value = token.partition("=")
            params[key.strip().lower()] = value
    if "w" not in params:
        raise ParasiticError(f"{tokens[0]}: no `W=` on the instance line; parasitics: regression needs each "
                             "MOSFET's total width (nf and m default to 1)")
    return MosInstance(name=tokens[0], drain=positional[0], gate=positional[1], source=positional[2],
                       w=_expression(params["w"]), nf=_expression(params.get("nf", "1")),
                       m=_expression(params.get("m", "1")))


def capacitor_value(regression: Regression, device: MosInstance) -> str:
    """ngspice brace expression of one regression capacitance in farads, evaluated per sample:
    ``{max(0, a + b*(nf) + c*(w)/(nf)*1e6)*(m)*1e-15}``."""
    def num(x: float) -> str:
        return f"{x:.12g}" if x >= 0 else f"({x:.12g})"

    return (f"{{max(0, {num(regression.a)} + {num(regression.b)}*({device.nf}) + "
            f"{num(regression.c)}*({device.w})/({device.nf})*1e6)*({device.m})*1e-15}}")


def parasitic_lines(device: MosInstance, coefficients: ParasiticCoefficients) -> list[str]:
    """Capacitor lines ``Cpar_gs_<dev> g s {…}``, ``Cpar_gd_<dev> g d {…}``, ``Cpar_ds_<dev> d s {…}``.

    A capacitor whose two terminals are the same node (e.g. Cgd of a diode-connected device) has no
    effect and is left out.
    """
    terminals = {"cgs": (device.gate, device.source), "cgd": (device.gate, device.drain),
                 "cds": (device.drain, device.source)}
    lines = []
    for name in CAPACITANCES:
        a, b = terminals[name]
        if a.lower() == b.lower() or {a.lower(), b.lower()} <= _GROUND:
            continue
        lines.append(f"{PREFIX}_{name[1:]}_{device.name} {a} {b} "
                     f"{capacitor_value(coefficients.regression(name), device)}")
    return lines


def _inject(lines: Sequence[str], coefficients: ParasiticCoefficients, inside_only: bool,
            devices: list[MosInstance]) -> list[str]:
    """Insert the capacitors after each MOSFET line; with ``inside_only`` only within ``.subckt`` blocks."""
    out: list[str] = []
    depth = 0
    names = {line.split()[0].lower() for line in lines if line.strip()}
    for line in lines:
        out.append(line)
        word = line.split()[0].lower()
        if word == ".subckt":
            depth += 1
        elif word == ".ends":
            depth = max(0, depth - 1)
        elif word[0] == "m" and (depth or not inside_only):
            device = parse_mosfet(line)
            added = parasitic_lines(device, coefficients)
            for extra in added:
                if extra.split()[0].lower() in names:
                    raise ParasiticError(f"{device.name}: the netlist already has an element named "
                                         f"{extra.split()[0]}; rename it (the prefix {PREFIX}_ is reserved)")
            devices.append(device)
            out += added
    return out


def add_parasitics(netlist: Netlist, coefficients: ParasiticCoefficients = DEFAULT_COEFFICIENTS) -> Netlist:
    """The netlist with regression Cgs/Cgd/Cds after every MOSFET line, top level and inside ``.subckt``.

    Only ``M`` elements are handled (a transistor wrapped in a subcircuit ``X`` line gets its capacitors
    where its ``M`` line is). Raises :class:`ParasiticError` naming the device for an unreadable line.
    """
    devices: list[MosInstance] = []
    try:
        body = _inject(netlist.body, coefficients, False, devices)
        hoisted = _inject(netlist.hoisted, coefficients, True, devices)
    except ParasiticError as exc:
        raise ParasiticError(f"{netlist.path.name}: {exc}") from None
    if not devices:
        raise ParasiticError(f"{netlist.path.name}: no MOSFET (M element) to add parasitics to")
    return replace(netlist, body=tuple(body), hoisted=tuple(hoisted))


def load_coefficients(value: str | Mapping[str, Any] | None, base: Path, file: str | Path) -> ParasiticCoefficients:
    """The coefficients of a testbench's ``parasitic_coefficients:`` field: None → the defaults, a mapping
    → validated in place, a string → a YAML file relative to ``base`` (the testbench's folder).

    Problems become :class:`SpecError` naming the testbench (or coefficient) file and the field.
    """
    if value is None:
        return DEFAULT_COEFFICIENTS
    if isinstance(value, str):
        path = base / value
        if not path.is_file():
            raise SpecError(file, "parasitic_coefficients", f"coefficient file {value!r} not found next to {file}")
        return load_validated(path, ParasiticCoefficients)
    try:
        return ParasiticCoefficients.model_validate(dict(value))
    except ValidationError as exc:
        inner = from_validation_error(file, exc)
        raise SpecError(file, "parasitic_coefficients" + (f".{inner.path}" if inner.path else ""),
                        inner.message) from None


# ---------------------------------------------------------------------------------------------------
# fitting


@dataclass(frozen=True)
class ParasiticFit:
    """Result of :func:`fit`: the coefficients, R² of each fitted C/M, RMS residual of C in fF, row count."""

    coefficients: ParasiticCoefficients
    r2: dict[str, float]
    rms_ff: dict[str, float]
    rows: int


def fit(n: Any, w_um: Any, m: Any, capacitances: Mapping[str, Any], source: str | None = None) -> ParasiticFit:
    """Least-squares fit (numpy.linalg.lstsq) of C = (a + b·N + c·w)·M for cgs, cgd and cds.

    ``n`` fingers, ``w_um`` finger width in µm, ``m`` multiplier, ``capacitances[name]`` in fF, one row per
    device. Each C/M is fitted against [1, N, w] (so rows count with weight 1/M² in C). R² is that of C/M;
    ``rms_ff`` the RMS residual of C itself (fF), without clipping. Raises :class:`ParasiticError` for
    fewer than 3 rows, non-finite values, M ≤ 0, or N and w that do not vary independently.
    """
    n, w_um, m = (np.asarray(x, dtype=float).ravel() for x in (n, w_um, m))
    rows = n.size
    if not (w_um.size == m.size == rows) or any(np.asarray(capacitances[c]).size != rows for c in CAPACITANCES):
        raise ParasiticError("N, w_um, M and the capacitance columns must have the same length")
    if rows < 3:
        raise ParasiticError(f"need at least 3 rows to fit three coefficients, got {rows}")
    if not (np.isfinite(n).all() and np.isfinite(w_um).all() and np.isfinite(m).all()):
        raise ParasiticError("N, w_um and M must be finite numbers")
    if (m <= 0).any():
        raise ParasiticError("M must be positive")
    design = np.column_stack([np.ones(rows), n, w_um])
    rank = np.linalg.matrix_rank(design)
    if rank < 3:
        raise ParasiticError(f"N and w_um must vary independently across the rows (design matrix rank {rank} < 3)")
    fitted: dict[str, Regression] = {}
    r2: dict[str, float] = {}
    rms: dict[str, float] = {}
    for name in CAPACITANCES:
        c = np.asarray(capacitances[name], dtype=float).ravel()
        if not np.isfinite(c).all():
            raise ParasiticError(f"{name}: capacitances must be finite numbers")
        y = c / m
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residual = y - design @ coef
        total = float(np.sum((y - y.mean()) ** 2))
        r2[name] = 1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan")
        rms[name] = float(np.sqrt(np.mean((residual * m) ** 2)))
        fitted[name] = Regression(a=float(coef[0]), b=float(coef[1]), c=float(coef[2]))
    coefficients = ParasiticCoefficients(**fitted, model=DEFAULT_COEFFICIENTS.model, source=source, rows=rows,
                                         r2={k: round(v, 6) for k, v in r2.items()})
    return ParasiticFit(coefficients=coefficients, r2=r2, rms_ff=rms, rows=rows)


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a CSV table with columns N, w_um, M, cgs_fF, cgd_fF, cds_fF (other columns ignored).

    Raises :class:`ParasiticError` naming the file for a missing file or column or a non-numeric value.
    """
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except FileNotFoundError:
        raise ParasiticError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise ParasiticError(f"{path}: cannot read CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in TABLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ParasiticError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                             f"(expected {', '.join(TABLE_COLUMNS)}; found {', '.join(frame.columns)})")
    table = {}
    for column in TABLE_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ParasiticError(f"{path}: column {column}, row {bad[0] + 1}: not a number "
                                 f"({frame[column].iloc[bad[0]]!r})")
        table[column] = values
    return table


def fit_table(path: str | Path) -> ParasiticFit:
    """Fit the three regressions to the CSV table at ``path`` (see :func:`read_table` and :func:`fit`)."""
    table = read_table(path)
    try:
        return fit(table["N"], table["w_um"], table["M"],
                   {name: table[f"{name}_fF"] for name in CAPACITANCES}, source=Path(path).name)
    except ParasiticError as exc:
        raise ParasiticError(f"{path}: {exc}") from None


def write_coefficients(path: str | Path, coefficients: ParasiticCoefficients) -> None:
    """Write coefficients as YAML that ``parasitic_coefficients:`` accepts (a path to this file)."""
    data = coefficients.model_dump(exclude_none=True)
    header = ("# Parasitic capacitance regression for optiyield (testbench `parasitic_coefficients:`)\n"
              "# C = max(0, a + b*N + c*w_um) * M in fF; N fingers, w_um finger width in um, M multiplier\n")
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False))
