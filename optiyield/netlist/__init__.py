"""Read a user's ngspice netlist into the sections the engine needs.

The netlist is an ordinary, runnable ngspice deck: ``.param`` defaults for every design and
statistical parameter, ``.include``/``.lib`` of device models, element lines, analyses (``.op``,
``.ac``, ``.tran``, …) and optionally ``.meas`` lines. Element lines are kept as opaque text (ngspice
parses them); only voltage sources are read, so that a measure can name a supply. Numbers in a
netlist follow SPICE rules (case-insensitive, ``m`` = milli, ``meg`` = mega).

Modules: :mod:`~optiyield.netlist.source` reads files as ngspice does (UTF-8 or Latin-1, logical lines,
include targets), :mod:`~optiyield.netlist.includes` walks and checks the files a netlist includes,
:mod:`~optiyield.netlist.placement` decides which definitions a copies deck keeps per copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from optiyield.netlist.includes import Content, content
from optiyield.netlist.placement import Placement, place
from optiyield.netlist.source import NetlistError, decode, directive, logical_lines, read_source, rewrite

ANALYSES = ("op", "ac", "dc", "tran", "noise", "sp", "tf", "pz", "disto", "sens", "pss")
_HOISTED = ("model", "global", "temp", "options", "option", "opt", "func", "csparam")
_DROPPED = ("print", "plot", "probe", "save", "width", "four", "fourier", "backanno")
_SPICE_SUFFIX = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3, "u": 1e-6,
                 "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18}
_SPICE_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(meg|mil|[tgkmunpfa])?[a-z]*$")


def spice_number(text: str) -> float | None:
    """Value of a SPICE number (``5u``, ``1.2K``, ``10meg``, ``1e-3``, ``{1k}``), or None if ``text``
    is an expression rather than a number."""
    stripped = text.strip().strip("{}'\"").strip().lower()
    match = _SPICE_NUMBER.match(stripped)
    if match is None:
        return None
    return float(match[1]) * _SPICE_SUFFIX.get(match[2] or "", 1.0)


@dataclass(frozen=True)
class VoltageSource:
    """A voltage source of the netlist: name (as written) and its + and − nodes (lower case)."""

    name: str
    plus: str
    minus: str


@dataclass(frozen=True)
class Netlist:
    """A parsed testbench netlist.

    ``params`` maps each top-level ``.param`` name (lower case) to its default text, in file order.
    ``body`` holds the circuit lines (elements, ``.ic``/``.nodeset``, ``.param`` lines) that are
    replicated per copy; ``hoisted`` the definitions and global lines (includes with absolute paths,
    ``.model``, ``.options``, ``.temp``, ``.subckt`` blocks, ``.func``, ``.csparam``): on top once, except those
    a copies deck must keep per copy (:meth:`placement`); ``analyses`` and ``measures`` the ``.op/.ac/…``
    and ``.meas`` lines.
    """

    path: Path
    title: str
    params: dict[str, str]
    body: tuple[str, ...]
    hoisted: tuple[str, ...]
    analyses: tuple[str, ...]
    measures: tuple[str, ...]
    sources: dict[str, VoltageSource] = field(default_factory=dict)

    @property
    def analysis_kinds(self) -> tuple[str, ...]:
        """Analysis keywords in order (``op``, ``ac``, …)."""
        return tuple(line.split()[0][1:].lower() for line in self.analyses)

    @property
    def measure_names(self) -> tuple[str, ...]:
        """Names of the ``.meas`` results, lower case."""
        return tuple(line.split()[2].lower() for line in self.measures)

    def placement(self, names: tuple[str, ...] | list[str]) -> Placement:
        """Where the ``hoisted`` lines go in a copies deck varying ``names`` per sample
        (:mod:`optiyield.netlist.placement`): kept on top, or moved into the copied subcircuit."""
        return place(self.hoisted, self.params, self.analyses, names, self.path)

    def included(self) -> tuple[Path, ...]:
        """Every file the netlist reads through its include lines, nested ones included, in order."""
        files: dict[Path, None] = {}
        for line in self.hoisted:
            found = content(line, str(self.path)) if directive(line) is not None else None
            if found is not None:
                files.update(dict.fromkeys(found.files))
        return tuple(files)

    def param_value(self, name: str) -> float | None:
        """Numeric default of ``.param name``, or None if it is an expression or absent."""
        text = self.params.get(name.lower())
        return None if text is None else spice_number(text)


_PARAM_ASSIGN = re.compile(r"([A-Za-z_][\w]*)\s*=\s*({[^}]*}|'[^']*'|\S+)")


def parse_netlist(path: str | Path) -> Netlist:
    """Parse a testbench netlist file into a :class:`Netlist`.

    Raises :class:`NetlistError` (naming file and line) for a missing file, a ``.control`` block
    (the engine writes its own) or an unterminated ``.subckt``.

    The netlist and every file it includes are read as UTF-8, or Latin-1 when not valid UTF-8 (ngspice
    reads bytes). Included files are read as ngspice reads them (:mod:`optiyield.netlist.includes`): a
    missing, binary or cyclic include, a missing ``.lib`` section or a ``.control`` line in any of them
    is a :class:`NetlistError` naming the file and line.
    """
    path = Path(path)
    return parse_netlist_text(read_source(path).text, path)


def parse_netlist_text(text: str, path: str | Path) -> Netlist:
    """Parse netlist text (a file's contents, or a netlist written by a program such as PySpice).

    ``path`` names the netlist in messages, and relative ``.include``/``.lib`` paths are resolved
    against its folder. Raises :class:`NetlistError` as :func:`parse_netlist` does.
    """
    path = Path(path)
    lines = logical_lines(text)
    title = text.splitlines()[0].strip() if text.strip() else "* netlist"
    if lines and lines[0][0] == 1 and not title.startswith("*"):
        lines = lines[1:]  # the first line of a SPICE deck is its title
    params: dict[str, str] = {}
    body: list[str] = []
    hoisted: list[str] = []
    analyses: list[str] = []
    measures: list[str] = []
    sources: dict[str, VoltageSource] = {}
    subckt_depth = 0
    for number, line in lines:
        lowered = line.lower()
        word = lowered.split()[0]
        where = f"{path}:{number}"
        if word in (".control", ".endc"):
            raise NetlistError(f"{where}: .control blocks are not allowed in a testbench netlist; "
                               "optiyield writes its own control flow — use analyses and measures instead")
        if directive(line) is not None:
            line = rewrite(line, path.parent, where)
            content(line, where)  # reads and checks the included files
        if subckt_depth:
            hoisted.append(line)
            if word == ".subckt":
                subckt_depth += 1
            elif word == ".ends":
                subckt_depth -= 1
            continue
        if word == ".end":
            break
        if word == ".subckt":
            subckt_depth = 1
            hoisted.append(line)
        elif directive(line) is not None or word == ".endl" or word.startswith(".") and word[1:] in _HOISTED:
            hoisted.append(line)
        elif word.startswith(".") and word[1:] in ANALYSES:
            analyses.append(line)
        elif word in (".meas", ".measure"):
            parts = line.split()
            if len(parts) < 4:
                raise NetlistError(f"{where}: incomplete .meas line: {line}")
            if "`" in line:  # .meas lines become commands of optiyield's .control block: `…` would run a shell
                raise NetlistError(f"{where}: a backquote in a .meas line is not allowed (ngspice runs `…` as a "
                                   "shell command in the control block optiyield writes for .meas lines)")
            measures.append(line)
        elif word.startswith(".") and word[1:] in _DROPPED:
            continue
        elif word == ".param":
            assigns = _PARAM_ASSIGN.findall(line[len(".param"):])
            if not assigns:
                raise NetlistError(f"{where}: cannot read .param line: {line}")
            for name, value in assigns:
                params[name.lower()] = value
            body.append(line)
        else:
            if word[0] == "v":
                tokens = line.split()
                if len(tokens) >= 3:
                    sources[tokens[0].lower()] = VoltageSource(tokens[0], tokens[1].lower(), tokens[2].lower())
            body.append(line)
    if subckt_depth:
        raise NetlistError(f"{path}: .subckt without .ends")
    return Netlist(path=path, title=title, params=params, body=tuple(body), hoisted=tuple(hoisted),
                   analyses=tuple(analyses), measures=tuple(measures), sources=sources)


__all__ = ["ANALYSES", "Content", "Netlist", "NetlistError", "Placement", "VoltageSource", "decode",
           "logical_lines", "parse_netlist", "spice_number"]
