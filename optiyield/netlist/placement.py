"""Which definitions of a netlist go inside the copied subcircuit of a copies deck, and which stay on top.

In a copies deck (:mod:`optiyield.sim.ngspice.deck`) the netlist's top-level ``.param`` lines and elements
live inside ``.subckt oy_tb params: …``, one instance per sample. A definition kept at the top level
cannot see those parameters: ngspice 39 stops with ``Undefined parameter`` for a top-level
``.model qn npn bf={bf_n}`` when ``bf_n`` is an ``oy_tb`` parameter, and a top-level ``.subckt`` cannot
use a model defined inside ``oy_tb``. So a definition goes inside the copies when it refers to a
*per-sample* name; everything else stays on top, once (a big model card copied K times costs load time).

Per-sample names are the sampled parameters, the netlist's ``.param`` values that depend on them, and the
names defined by what was moved inside (a subcircuit using a model that moved inside moves too). An
included file goes inside when its content refers to a per-sample name or instantiates elements at its
top level (those belong to each sample's circuit). Netlist parameters that do not depend on sampled ones
are constants: when a top-level line (a kept definition, an analysis, ``.temp``, ``.options``) refers to one,
its ``.param`` line is written at the top level too, after the kept definitions, as ngspice would read the
netlist (its own ``.param`` overrides a library's). A top-level line that refers to a per-sample name —
``.temp {tj}`` with ``tj`` sampled, ``.tran 1n {tstop}`` with ``tstop`` a design variable — cannot run as
copies (one temperature and one analysis per deck): :attr:`Placement.per_sample` lists it, and the
testbench runs such a netlist one sample per deck.

References are found over-generously (every word of an element line, so a node named like a parameter
counts): a false reference only costs load time, a missed one would break the deck.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from optiyield.netlist.includes import Content, content
from optiyield.netlist.source import directive

_IDENT = re.compile(r"(?<![\w.])[a-z_]\w*(?!\w|\s*=(?!=))")
_ASSIGN = re.compile(r"([a-z_]\w*)\s*=\s*({[^}]*}|'[^']*'|\S+)")
#: Top-level lines that cannot move into a subcircuit: one value per deck.
_SEPARATORS = {c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}
GLOBAL = (".options", ".option", ".opt", ".temp", ".global")


def _refs(text: str) -> set[str]:
    """Names a (lower-case) text refers to: every identifier that is not a ``key=`` being assigned."""
    return set(_IDENT.findall(text))


@dataclass
class Summary:
    """Names a group of lines defines at its top level, names it refers to (those local to a
    ``.subckt`` it defines excepted), and whether it has element lines at its top level."""

    defines: set[str] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    elements: bool = False


def summarize(lines: Iterable[str]) -> Summary:
    """Definitions, references and top-level elements of logical netlist lines (any case)."""
    top = Summary()
    scopes: list[tuple[set[str], set[str]]] = []  # per open .subckt: (local names, references)

    def define(name: str) -> None:
        (scopes[-1][0] if scopes else top.defines).add(name)

    def refer(names: set[str]) -> None:
        (scopes[-1][1] if scopes else top.refs).update(names)

    for raw in lines:
        text = raw.lower()
        word, _, rest = text.partition(" ")
        if word == ".subckt":
            tokens = rest.replace("params:", " ").split()
            if not tokens:
                continue
            define(tokens[0])
            local = {t for t in tokens[1:] if "=" not in t}
            local |= {m[1] for m in _ASSIGN.finditer(rest)}
            scopes.append((local, set()))
            refer({r for m in _ASSIGN.finditer(rest) for r in _refs(m[2])})
        elif word == ".ends":
            if scopes:
                local, refs = scopes.pop()
                refer(refs - local)
        elif word == ".param":
            for m in _ASSIGN.finditer(rest):
                define(m[1])
                refer(_refs(m[2]))
        elif word == ".model":
            tokens = rest.split(maxsplit=1)
            if tokens:
                define(tokens[0])
                refer(_refs(tokens[1]) if len(tokens) > 1 else set())
        elif word == ".func":
            match = re.match(r"\s*([a-z_]\w*)\s*\(([^)]*)\)\s*(.*)", rest)
            if match:
                define(match[1])
                refer(_refs(match[3]) - set(re.split(r"[\s,]+", match[2].strip())))
        elif word in (".endl", ".lib", ".end") or word.startswith(".inc"):
            continue
        elif word.startswith("."):
            if word in (".ic", ".nodeset") and not scopes:
                top.elements = True
            refer(_refs(rest))
        else:
            if not scopes:
                top.elements = True
            refer(_refs(rest))
    return top


class Item:
    """One top-level definition of a netlist's ``hoisted`` lines: an include, a ``.subckt`` block, a
    ``.model``, ``.func`` or ``.csparam`` line (``movable``), or a global line (``.options``, …).

    ``text`` is its content in lower case (for an include, the lines it inserts); its :class:`Summary`
    is computed only when a name of interest occurs in that text (a PDK library is large)."""

    def __init__(self, lines: tuple[str, ...], movable: bool, text: str, elements: bool,
                 summary: Summary | None = None) -> None:
        self.lines, self.movable, self.text, self.elements = lines, movable, text, elements
        self._summary = summary
        self._words: set[str] | None = None

    @property
    def summary(self) -> Summary:
        """Definitions and references of the item (computed on first use)."""
        if self._summary is None:
            self._summary = summarize(self.text.splitlines())
        return self._summary

    def refers(self, names: set[str]) -> set[str]:
        """The names of ``names`` (lower case) that this item refers to."""
        if self._words is None:
            self._words = set(self.text.translate(_SEPARATORS).split())
        if not names & self._words:
            return set()
        return self.summary.refs & names


_INCLUDED: dict[int, tuple[Content, Item]] = {}


def _top_elements(lines: Iterable[str]) -> bool:
    """True when element lines (or ``.ic``/``.nodeset``) occur outside every ``.subckt`` block."""
    depth = 0
    for text in lines:
        head = text[:8].lower()
        if head.startswith(".subckt"):
            depth += 1
        elif head.startswith(".ends"):
            depth = max(0, depth - 1)
        elif depth == 0 and (head[0] != "." or head.startswith((".ic", ".nodeset"))):
            return True
    return False


def _included(found: Content, line: str) -> Item:
    """The item of an include line, cached per content (the text of a library is joined once)."""
    cached = _INCLUDED.get(id(found))
    if cached is None or cached[0] is not found:
        texts = [text for _, _, text in found.lines]
        # the summary's refs keep the file's references to its own top-level names: a netlist .param of
        # a name a library defines overrides the library's (ngspice: the later .param wins)
        cached = (found, Item((line,), True, "\n".join(texts).lower(), _top_elements(texts)))
        _INCLUDED[id(found)] = cached
    item = cached[1]
    return item if item.lines == (line,) else Item((line,), True, item.text, item.elements, item._summary)


def items(hoisted: Sequence[str], where: str) -> list[Item]:
    """Split ``hoisted`` lines into items; includes are read. ``where`` names the netlist in errors."""
    out: list[Item] = []
    block: list[str] = []
    depth = 0

    def add(lines: list[str], movable: bool) -> None:
        summary = summarize(lines)
        out.append(Item(tuple(lines), movable, "\n".join(lines).lower(), summary.elements, summary))

    for line in hoisted:
        word = line.split()[0].lower() if line.split() else ""
        if depth or word == ".subckt":
            block.append(line)
            depth += (word == ".subckt") - (word == ".ends")
            if depth == 0:
                add(block, True)
                block = []
            continue
        found = directive(line)
        included = content(line, where) if found is not None else None
        if included is not None:
            out.append(_included(included, line))
        else:
            add([line], word not in GLOBAL and found is None)
    if block:
        add(block, True)
    return out


@dataclass(frozen=True)
class Placement:
    """Where the lines of a copies deck go.

    ``outside``: hoisted lines kept at the top level, once. ``params``: ``.param`` lines of constant
    netlist parameters that top-level lines refer to (written after ``outside``). ``inside``: hoisted lines
    moved into the copied subcircuit (before the body). ``per_sample``: top-level lines (analyses,
    ``.temp``, ``.options``) that refer to a per-sample name, so the netlist cannot run as copies.
    """

    outside: tuple[str, ...]
    params: tuple[str, ...]
    inside: tuple[str, ...]
    per_sample: tuple[str, ...]


_CACHE: dict[tuple[object, ...], Placement] = {}


def place(hoisted: Sequence[str], params: dict[str, str], analyses: Sequence[str], names: Sequence[str],
          where: str | Path) -> Placement:
    """Placement of a netlist's ``hoisted`` lines in a copies deck that varies ``names`` per sample.

    ``params`` maps the netlist's top-level ``.param`` names (lower case) to their value text, ``analyses``
    are its analysis lines. Includes are read (cached by file modification time); errors name ``where``."""
    key = (tuple(hoisted), tuple(params.items()), tuple(analyses), tuple(n.lower() for n in names), str(where))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    found = items(hoisted, str(where))
    depends = {name: _refs(value.lower()) for name, value in params.items()}
    per_sample = {n.lower() for n in names}
    inside: set[int] = set()
    changed = True
    while changed:
        changed = False
        for name, refs in depends.items():
            if name not in per_sample and refs & per_sample:
                per_sample.add(name)
                changed = True
        for index, item in enumerate(found):
            if index not in inside and item.movable and (item.elements or item.refers(per_sample)):
                inside.add(index)
                per_sample |= item.summary.defines
                changed = True
    top_refs: set[str] = set()
    for index, item in enumerate(found):
        if index not in inside:
            top_refs |= item.refers(set(params))
    late = [line for line in (*(i.lines[0] for i in found if not i.movable), *analyses)
            if _refs(line.lower().partition(" ")[2]) & per_sample]
    for line in analyses:
        top_refs |= _refs(line.lower().partition(" ")[2])
    needed: set[str] = set()
    pending = [n for n in top_refs if n in params and n not in per_sample]
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending += [n for n in depends[name] if n in params and n not in per_sample]
    result = Placement(
        outside=tuple(line for i, item in enumerate(found) if i not in inside for line in item.lines),
        params=tuple(f".param {name}={value}" for name, value in params.items() if name in needed),
        inside=tuple(line for i, item in enumerate(found) if i in inside for line in item.lines),
        per_sample=tuple(late))
    _CACHE[key] = result
    return result
