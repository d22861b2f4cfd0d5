"""The files a netlist reads through ``.include``, ``.inc`` and ``.lib``, walked as ngspice 39 reads them.

- ``.include F`` (and any ``.inc…``) inserts the whole file. A relative ``F`` is resolved against the folder
  of the file that holds the line.
- ``.lib F S`` inserts section ``S`` (the lines between ``.lib S`` and ``.endl``) of library ``F``. ngspice reads
  the whole library file, including every file its ``.include`` lines name in *any* section, then follows the
  ``.lib`` references of the selected section only. A relative ``F`` is resolved against the folder of the
  library that holds the line, or, outside any library, against the folder of the top netlist (ngspice
  39 ``inpcom.c``: ``expand_section_references``).
- A one-word ``.lib X`` is a section definition in a library; PSPICE and LTspice read ``.lib F`` as
  ``.include F``, so when ``X`` names a file it is read like an include.

Every file read is checked: it must exist, be text (UTF-8 or Latin-1, no NUL byte) and carry no
``.control``/``.endc`` line (a ``.control`` block anywhere in a file ngspice reads would run commands of the
user's files in optiyield's runs). Include cycles are refused. The lines a directive inserts (its
*content*) are kept for :mod:`optiyield.netlist.placement`. Results are cached per process and checked
against the modification time and size of every file involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optiyield.netlist.source import Directive, NetlistError, SourceFile, directive, read_source, resolve

#: (file, 1-based line number, logical line) of one line of content.
Entry = tuple[Path, int, str]


@dataclass(frozen=True)
class Content:
    """What one include directive inserts: its logical lines in order (includes inlined, ``.lib`` sections
    expanded) and every file read to find them (checked for ``.control``, including files of sections
    that are not selected)."""

    lines: tuple[Entry, ...]
    files: tuple[Path, ...]


_Stamp = tuple[Path, int, int]
_TREES: dict[Path, tuple[tuple[_Stamp, ...], tuple[Entry, ...], tuple[Path, ...]]] = {}
_CONTENT: dict[tuple[str, Path | None, str], tuple[tuple[_Stamp, ...], Content]] = {}


def _stamp(path: Path) -> _Stamp | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (path, stat.st_mtime_ns, stat.st_size)


def _fresh(stamps: tuple[_Stamp, ...]) -> bool:
    return all(_stamp(s[0]) == s for s in stamps)


def _chain(stack: tuple[tuple[Path, str], ...], where: str, last: Path) -> str:
    """``net.cir:3 → a.inc:2 → /abs/b.inc``: the include lines that lead to ``last``."""
    return " → ".join([w for _, w in stack] + [where, str(last)])


def _open(path: Path, where: str, stack: tuple[tuple[Path, str], ...], what: str) -> SourceFile:
    """Read an included file; NetlistError for a missing or binary file, a cycle or a ``.control`` line."""
    if any(path == p for p, _ in stack):
        raise NetlistError(f"{where}: include cycle: {_chain(stack, where, path)}")
    if not path.is_file():
        raise NetlistError(f"{where}: {what} {path} not found")
    source = read_source(path, what)
    if source.control is not None:
        origin = f" (read through {_chain(stack, where, path)})" if stack else ""
        raise NetlistError(f"{path}:{source.control}: .control block in a file the netlist includes{origin}; "
                           "optiyield writes its own control flow and runs no commands from netlist files — "
                           "remove the .control … .endc block")
    return source


def _read_tree(path: Path, where: str, stack: tuple[tuple[Path, str], ...],
               what: str = "included file") -> tuple[tuple[Entry, ...], tuple[Path, ...]]:
    """The logical lines of ``path`` with its ``.include`` lines (and one-word ``.lib F`` naming a file)
    replaced by the lines of those files, recursively, and the files read (``path`` first)."""
    cached = _TREES.get(path)
    if cached is not None and _fresh(cached[0]):
        loop = next((p for p in cached[2] if any(p == q for q, _ in stack)), None)
        if loop is None:
            return cached[1], cached[2]
    source = _open(path, where, stack, what)
    stack = (*stack, (path, where))
    lines: list[Entry] = []
    files: dict[Path, None] = {path: None}
    for number, text in source.lines:
        found = directive(text)
        here = f"{path}:{number}"
        target = None
        if found is not None and found.kind == "include":
            target = resolve(found.target, path.parent, here)
        elif found is not None and found.kind == "lib1":
            candidate = resolve(found.target, path.parent, here)
            target = candidate if candidate.is_file() else None
        if target is None:
            lines.append((path, number, text))
            continue
        sub_lines, sub_files = _read_tree(target, here, stack)
        lines += sub_lines
        files.update(dict.fromkeys(sub_files))
    stamps = tuple(s for s in (_stamp(p) for p in files) if s is not None)
    _TREES[path] = (stamps, tuple(lines), tuple(files))
    return tuple(lines), tuple(files)


def _section(lines: tuple[Entry, ...], library: Path, name: str, where: str) -> list[Entry]:
    """The lines of section ``name`` (between ``.lib name`` and ``.endl``) of a library's lines."""
    sections: list[str] = []
    inside = False
    out: list[Entry] = []
    for entry in lines:
        found = directive(entry[2])
        lowered = entry[2].lower()
        if inside:
            if lowered.startswith(".endl"):
                return out
            out.append(entry)
        elif found is not None and found.kind == "lib1":
            sections.append(found.target)
            inside = found.target.lower() == name.lower()
    if inside:
        raise NetlistError(f"{library}: section {name} has no .endl")
    known = f" (sections: {', '.join(sections)})" if sections else " (it defines no section)"
    raise NetlistError(f"{where}: no section {name} in library {library}{known}")


def _expand(lines: tuple[Entry, ...] | list[Entry], library: Path | None,
            stack: tuple[tuple[Path, str, str], ...], files: dict[Path, None]) -> list[Entry]:
    """Replace the ``.lib F S`` lines of ``lines`` by the content of those sections, recursively.

    ``library`` is the library these lines come from (relative ``F`` resolve against its folder); None
    for lines outside any library, where ngspice resolves a relative ``F`` against the top netlist's
    folder — a folder optiyield's runs do not have, so such a line is refused. ``stack`` holds the
    (library, section, line) references being expanded, to refuse cycles."""
    out: list[Entry] = []
    for path, number, text in lines:
        found = directive(text)
        if found is None or found.kind != "lib":
            out.append((path, number, text))
            continue
        out += _library(found, f"{path}:{number}", library, stack, files)
    return out


def _library(found: Directive, here: str, library: Path | None, stack: tuple[tuple[Path, str, str], ...],
             files: dict[Path, None]) -> list[Entry]:
    """The expanded content of section ``found.section`` of library ``found.target`` (line ``here``)."""
    section = found.section or ""
    if library is None and not Path(found.target).expanduser().is_absolute() and not found.target.startswith("$"):
        raise NetlistError(f"{here}: `.lib {found.target} {section}` in an included file: ngspice resolves this "
                           "relative path against the folder of the top netlist, and optiyield runs ngspice in "
                           "a private folder; write an absolute path (or $VAR/…), or move the .lib line into "
                           "the netlist")
    path = resolve(found.target, library.parent if library is not None else Path("/"), here)
    if any(p == path and s.lower() == section.lower() for p, s, _ in stack):
        chain = " → ".join(f"{w} ({s})" for _, s, w in stack)
        raise NetlistError(f"{here}: .lib cycle: {chain} → {here} ({section})")
    lines, read = _read_tree(path, here, (), what="library")
    files.update(dict.fromkeys(read))
    selected = _section(lines, path, section, here)
    return _expand(selected, path, (*stack, (path, section, here)), files)


def content(line: str, where: str) -> Content | None:
    """The content of an include line of a netlist (its path already absolute, as
    :func:`~optiyield.netlist.source.rewrite` makes it), or None when the line includes nothing (a
    section definition). ``where`` (``file:line``) names the line in errors. Raises :class:`NetlistError`
    for a missing, binary or cyclic file, a missing section, or a ``.control`` line in any file read."""
    found = directive(line)
    if found is None:
        return None
    path = Path(found.target)
    if found.kind == "lib1" and not path.is_file():
        return None  # `.lib name`: a section definition in the netlist itself
    key = (line, None, where)
    cached = _CONTENT.get(key)
    if cached is not None and _fresh(cached[0]):
        return cached[1]
    files: dict[Path, None] = {}
    if found.kind == "lib":
        lines = _library(found, where, None, (), files)
    else:
        tree, read = _read_tree(path, where, ())
        files.update(dict.fromkeys(read))
        lines = _expand(tree, None, (), files)
    result = Content(lines=tuple(lines), files=tuple(files))
    stamps = tuple(s for s in (_stamp(p) for p in files) if s is not None)
    _CONTENT[key] = (stamps, result)
    return result
