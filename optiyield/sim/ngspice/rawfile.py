"""Reader for ngspice binary raw files (``ngspice -b -r out.raw``).

A raw file is a sequence of plots (one per analysis). Each plot has a text header (title, plot name,
flags ``real``/``complex``, variable names, number of points) followed by ``Binary:`` and the data,
point-major: for every point, every variable as float64 (real) or two float64 (complex).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class RawFileError(ValueError):
    """The raw file is missing, truncated or not an ngspice binary raw file."""


@dataclass(frozen=True)
class Plot:
    """One analysis result.

    ``data`` is the (points, variables) block; ``index`` maps lower-case vector names (``frequency``,
    ``v(x0.vout)``, ``i(v.x0.vdd)``) to columns. Complex for AC-type plots.
    """

    name: str
    flags: str
    points: int
    index: dict[str, int] = field(repr=False)
    data: np.ndarray = field(repr=False)
    complete: bool = True

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.index

    def __getitem__(self, name: str) -> np.ndarray:
        """One vector, shape (points,)."""
        return self.data[:, self.index[name.lower()]]

    def columns(self, names: list[str]) -> np.ndarray:
        """Several vectors at once, shape (len(names), points); raises KeyError naming a missing one."""
        try:
            cols = [self.index[n.lower()] for n in names]
        except KeyError as exc:
            raise KeyError(f"vector {exc.args[0]} not in plot {self.name!r}") from None
        return self.data[:, cols].T

    @property
    def kind(self) -> str:
        """Short analysis name from the plot name: ``op``, ``ac``, ``dc``, ``tran``, ``noise``, ``sp``."""
        return plot_kind(self.name)


def plot_kind(plotname: str) -> str:
    """Map an ngspice plot name (``AC Analysis``, ``Operating Point``, …) to an analysis keyword."""
    lowered = plotname.lower()
    for key, kind in (
        ("operating point", "op"),
        ("ac analysis", "ac"),
        ("dc transfer", "dc"),
        ("transient", "tran"),
        ("noise", "noise"),
        ("s-param", "sp"),
        ("sp analysis", "sp"),
    ):
        if key in lowered:
            return kind
    return lowered


def _parse_header(text: str) -> tuple[str, str, int, list[str]]:
    plotname, flags, npoints, names = "", "real", -1, []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "plotname":
            plotname = value.strip()
        elif key == "flags":
            flags = value.strip().lower()
        elif key == "no. points":
            npoints = int(value.strip())
        elif key == "variables":
            for var_line in lines[index + 1 :]:
                parts = var_line.split()
                if len(parts) >= 2 and parts[0].isdigit():
                    names.append(parts[1].lower())
            break
    if npoints < 0 or not names:
        raise RawFileError("raw header without 'No. Points' or 'Variables'")
    return plotname, flags, npoints, names


def read_raw(path: str | Path) -> list[Plot]:
    """Read every plot of a binary raw file.

    A plot whose data is cut short (ngspice stopped mid-analysis) is returned with the points that
    are complete and ``complete=False``; callers treat that as a failed simulation.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise RawFileError(f"no raw file written ({path.name})") from exc
    plots: list[Plot] = []
    offset = 0
    while offset < len(data):
        marker = data.find(b"Binary:\n", offset)
        if marker < 0:
            if data.find(b"Values:", offset) >= 0:
                raise RawFileError("ASCII raw files are not supported; run ngspice with binary output")
            if data[offset:].strip():
                raise RawFileError("raw file ends inside a header")
            break
        header = data[offset:marker].decode("latin-1")
        name, flags, npoints, names = _parse_header(header)
        width = len(names) * (2 if "complex" in flags else 1)
        start = marker + len(b"Binary:\n")
        expected = npoints * width * 8
        available = min(expected, len(data) - start)
        rows = available // (width * 8)
        dtype = "<c16" if "complex" in flags else "<f8"  # complex points are interleaved (re, im) pairs
        block = np.frombuffer(data, dtype=dtype, count=rows * len(names), offset=start).reshape(rows, len(names))
        index = {vname: i for i, vname in enumerate(names)}
        plots.append(Plot(name=name, flags=flags, points=rows, index=index, data=block, complete=rows == npoints))
        offset = start + expected
    if not plots:
        raise RawFileError(f"raw file {path.name} holds no plot")
    return plots
