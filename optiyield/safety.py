"""What text from a spec or testbench file may contain where it reaches a deck or a file name.

Spec and testbench files are data (docs/security.md): nothing in them may start an ngspice control block,
run a command, or write outside the output folder. Every string that is written into a deck (options,
analysis lines, model paths, device names) or used as a file name (the spec's name) passes one of these
checks when the file is loaded; each raises ValueError with a message for the user.
"""

from __future__ import annotations

import re

#: Most samples a Monte Carlo, sweep or outcome set may ask for at once (memory: one row of parameters
#: and measures per sample).
MAX_SAMPLES = 10_000_000

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ANALYSIS = re.compile(r"\.(op|ac|dc|tran|noise|sp|tf|pz|disto|sens|pss)(\s[^\n\r]*)?", re.IGNORECASE)
_DEVICE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_#]*)*")
_QUANTITY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def file_name(value: str) -> str:
    """A name that becomes a file or folder name (``out/<name>``): letters, digits, ``_ . + -``, at most
    100 characters, not starting with a dot or a separator (so never ``..``, an absolute path or a
    hidden file)."""
    if not _NAME.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"{_show(value)} is not a usable name: use letters, digits, '_', '.', '+' or '-' "
                         "(at most 100, starting with a letter or digit); it names the output folder")
    return value


def deck_line(value: str, what: str) -> str:
    """Text written into one line of a deck: no line breaks or other control characters (a line break
    would let the text start an ngspice ``.control`` block)."""
    if _CONTROL.search(value):
        raise ValueError(f"{what} must be one line without control characters, got {_show(value)}")
    if value.lstrip().startswith("."):
        raise ValueError(f"{what} must not start a new deck card, got {_show(value)}")
    return value


def analysis_line(value: str) -> str:
    """One analysis card such as ``.ac dec 20 1k 10g`` (one line, a known analysis)."""
    if _CONTROL.search(value) or not _ANALYSIS.fullmatch(value.strip()):
        raise ValueError(f"expected one analysis line such as `.ac dec 20 1k 10g` (.op, .ac, .dc, .tran, .noise, "
                         f".sp, .tf, .pz, .disto, .sens, .pss), got {_show(value)}")
    return value.strip()


def model_path(value: str) -> str:
    """A file path written into an ``.include`` line: one line, no quote characters."""
    if _CONTROL.search(value) or '"' in value or "'" in value:
        raise ValueError(f"a model path must be one line without quotes, got {_show(value)}")
    return value


def device_name(value: str) -> str:
    """An instance name such as ``M1`` or ``X1.M3`` (written into ``.save @m1[vds]`` lines)."""
    if not _DEVICE.fullmatch(value):
        raise ValueError(f"expected a device instance name such as M1 or X1.M3, got {_show(value)}")
    return value


def device_quantity(value: str) -> str:
    """An instance quantity such as ``vdsat`` or ``gm`` (written into ``.save @m1[vdsat]`` lines)."""
    if not _QUANTITY.fullmatch(value):
        raise ValueError(f"expected an instance quantity such as vds, vdsat, id or gm, got {_show(value)}")
    return value.lower()


def _show(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + f"… ({len(value):,} characters)"
