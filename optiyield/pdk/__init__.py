"""Process design kits whose model libraries a testbench can name (``pdk: {name: sky130, section: tt}``).

Each entry maps a name to a function returning a :class:`~optiyield.pdk.sky130.Library` (one file per section,
ngspice compatibility mode); it raises :class:`PdkNotInstalled` with install advice when the PDK is absent.
:func:`with_section` gives the same testbench at another section (process corner).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from optiyield.pdk import sky130
from optiyield.pdk.sky130 import Library, PdkNotInstalled

if TYPE_CHECKING:  # testbench.py imports this package
    from optiyield.testbench import Testbench

LIBRARIES: dict[str, Callable[[], Library]] = {"sky130": sky130.library}


def load_library(name: str) -> Library:
    """The model library of PDK ``name``; ValueError for an unknown name, PdkNotInstalled when absent."""
    if name not in LIBRARIES:
        raise ValueError(f"unknown PDK {name!r}; expected one of {', '.join(LIBRARIES)}")
    return LIBRARIES[name]()


def with_section(testbench: Testbench, section: str) -> Testbench:
    """``testbench`` with its PDK library at ``section`` (e.g. ``ff``): the ``.lib`` line is swapped in place.

    ValueError when the testbench names no PDK or the section is unknown.
    """
    if testbench.pdk is None:
        raise ValueError(f"testbench {testbench.name!r} names no PDK (`pdk:` in testbench.yaml)")
    library, current = testbench.pdk
    old, new = library.line(current), library.line(section)
    hoisted = tuple(new if line == old else line for line in testbench.netlist.hoisted)
    netlist = dataclasses.replace(testbench.netlist, hoisted=hoisted)
    return dataclasses.replace(testbench, netlist=netlist, pdk=(library, section))


__all__ = ["LIBRARIES", "Library", "PdkNotInstalled", "load_library", "with_section"]
