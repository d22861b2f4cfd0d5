"""Engineering numbers: ``350p``, ``22u``, ``1.2k``, ``5%``, ``28GHz`` → SI floats, and back.

Spec files are written by RF designers, so prefixes are the SI ones and are **case-sensitive**:
``m`` is milli and ``M`` is mega (``meg``/``Meg`` are accepted as mega too, SPICE-style). This differs
from SPICE netlists, where ``M`` means milli; netlists are never parsed with this module.
"""

from __future__ import annotations

import math
import re

#: SI prefix → multiplier. Case-sensitive on purpose (see module docstring).
PREFIXES: dict[str, float] = {
    "a": 1e-18,
    "f": 1e-15,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "μ": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "meg": 1e6,
    "Meg": 1e6,
    "MEG": 1e6,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}

#: Unit names that may follow the prefix; they are checked, then dropped (values are SI).
UNITS = ("Hz", "V", "A", "W", "F", "H", "Ohm", "ohm", "Ω", "s", "S", "dBm", "dB", "deg")

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_PREFIX = "|".join(sorted((re.escape(p) for p in PREFIXES if p), key=len, reverse=True))
_UNIT = "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))
_PATTERN = re.compile(rf"^\s*(?P<num>{_NUMBER})\s*(?:(?P<pct>%)|(?P<prefix>{_PREFIX})?(?P<unit>{_UNIT})?)\s*$")


class UnitError(ValueError):
    """A value could not be read as an engineering number."""


def parse_eng(value: str | float | int) -> float:
    """Read an engineering number and return it as an SI float.

    Accepts plain numbers (``1e-3``, ``42``), SI prefixes (``350p``, ``22u``, ``1.2k``, ``5M``, ``1meg``),
    an optional unit after the prefix (``28GHz``, ``1.2kOhm``, ``10mV``) and percentages (``5%`` → 0.05).
    Raises :class:`UnitError` with the offending text otherwise.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), value)
    if not isinstance(value, str):
        raise UnitError(f"expected a number, got {type(value).__name__} {value!r}")
    match = _PATTERN.match(value)
    if match is None:
        raise UnitError(
            f"expected a number such as 350p, 22u, 1.2k, 5% or 28GHz, got {value!r}"
        )
    number = float(match["num"])
    if match["pct"]:
        return _finite(number * 1e-2, value)
    return _finite(number * PREFIXES[match["prefix"] or ""], value)


def eng_field(value: object) -> object:
    """:func:`parse_eng` for a pydantic ``before`` validator: None passes through, a :class:`UnitError` becomes
    the ``ValueError`` pydantic reports with the field's location."""
    try:
        return None if value is None else parse_eng(value)  # type: ignore[arg-type]
    except UnitError as exc:
        raise ValueError(str(exc)) from None

def _finite(number: float, given: object) -> float:
    """``number`` when it is finite; a value such as ``1e999`` overflows to infinity and is refused."""
    if not math.isfinite(number):
        raise UnitError(f"expected a finite number, got {str(given)[:40]!r}")
    return number


_FORMAT_PREFIXES = [
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "u"),
    (1e-9, "n"),
    (1e-12, "p"),
    (1e-15, "f"),
    (1e-18, "a"),
]


def format_eng(value: float, digits: int = 4, unit: str = "") -> str:
    """Format an SI float with an engineering prefix, e.g. ``2.2e-05`` → ``22u``.

    ``digits`` significant digits are kept (trailing zeros dropped); ``parse_eng`` reads the text back.
    Non-finite values are returned as ``nan``/``inf``/``-inf``.
    """
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return f"0{unit}"
    magnitude = abs(value)
    scale, prefix = next(
        ((s, p) for s, p in _FORMAT_PREFIXES if magnitude >= s * (1 - 0.5 * 10 ** (1 - digits))), (1e-18, "a")
    )
    text = f"{value / scale:.{digits}g}"
    if "e" in text:  # outside the prefix range: fall back to plain scientific notation
        return f"{value:.{digits}g}{unit}"
    return f"{text}{prefix}{unit}"


#: Units that are logarithmic or angular: SI prefixes make no sense on them ("200 mdB").
PLAIN_UNITS = ("dB", "dBm", "dBc", "°", "deg")


def format_value(value: float, unit: str = "", digits: int = 4) -> str:
    """A value with its unit for people: ``723.3 µW``, ``250 MHz``, ``12.29 dB``.

    SI prefix, a space before the unit, ``µ`` for micro; plain numbers for dB and degrees.
    """
    if unit in PLAIN_UNITS or not math.isfinite(value):
        return f"{value:.{digits}g} {unit}".rstrip()
    text = format_eng(value, digits=digits)
    number, prefix = (text[:-1], text[-1]) if text[-1] in "afpnumkMGT" else (text, "")
    return f"{number} {'µ' if prefix == 'u' else prefix}{unit}".rstrip()
