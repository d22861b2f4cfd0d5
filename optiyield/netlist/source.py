"""Netlist files as ngspice reads them: bytes decoded as text, logical lines, and the files a line includes.

ngspice reads bytes, so a netlist (or a file it includes) written in Latin-1 — a ``µ`` in a comment — is
as valid as UTF-8: each file is decoded as UTF-8, and as Latin-1 when it is not valid UTF-8. A NUL byte
means a binary file. Files are cached by path, modification time and size for the life of the process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


class NetlistError(ValueError):
    """The netlist cannot be used as a testbench; the message names the file and line."""


_COMMENT = re.compile(r"\s;|^;|\s\$\s")
_CONTROL = re.compile(r"^[ \t]*\.(?:control|endc)\b", re.IGNORECASE | re.MULTILINE)
_ENV = re.compile(r"^\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class SourceFile:
    """One text file of a netlist: its resolved path, its text, and the first ``.control``/``.endc`` line
    (1-based, None when there is none)."""

    path: Path
    text: str
    control: int | None

    @cached_property
    def lines(self) -> list[tuple[int, str]]:
        """Logical lines: ``+`` continuations joined, comments and blank lines dropped, 1-based numbers."""
        return logical_lines(self.text)


_FILES: dict[Path, tuple[tuple[int, int], SourceFile]] = {}


def decode(data: bytes, name: str | Path) -> str:
    """Text of a netlist file's bytes: UTF-8, else Latin-1 (every byte is a character, as for ngspice).

    A NUL byte raises :class:`NetlistError` naming the file (a binary file, not a netlist)."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise NetlistError(f"{name}: not a text netlist (NUL byte at offset {nul}); is it a binary file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.removeprefix("\ufeff")


def read_source(path: Path, what: str = "netlist") -> SourceFile:
    """The file at ``path``, decoded (cached while its modification time and size are unchanged).

    Raises :class:`NetlistError` naming the file when it cannot be read or is binary; ``what`` names it
    in the message (``netlist``, ``included file``)."""
    try:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = _FILES.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        data = path.read_bytes()
    except OSError as exc:
        raise NetlistError(f"{path}: cannot read {what} ({exc.strerror})") from exc
    text = decode(data, path)
    match = _CONTROL.search(text)
    control = text.count("\n", 0, match.start()) + 1 if match else None
    source = SourceFile(path=path, text=text, control=control)
    _FILES[path] = (key, source)
    return source


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join ``+`` continuation lines; drop comments (``*``, ``$``, ``#`` lines; ``;`` and `` $ `` tails)
    and blank lines; keep 1-based line numbers."""
    out: list[tuple[int, str]] = []
    number, pieces = 0, []
    for index, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "*$#":
            continue
        if ";" in stripped or "$" in stripped:
            stripped = _COMMENT.split(stripped, maxsplit=1)[0].rstrip()
            if not stripped:
                continue
        if stripped[0] == "+":
            if pieces:
                pieces.append(stripped[1:].strip())
            continue
        if pieces:
            out.append((number, " ".join(pieces)))
        number, pieces = index, [stripped]
    if pieces:
        out.append((number, " ".join(pieces)))
    return out


@dataclass(frozen=True)
class Directive:
    """A line that reads another file: ``.include F`` (``kind="include"``), ``.lib F section``
    (``"lib"``), or a one-word ``.lib X`` (``"lib1"``: a section definition in a library file, or, as
    PSPICE/LTspice read it, ``.lib F`` = ``.include F``). ``target`` is the path as written."""

    kind: str
    target: str
    section: str | None = None


def directive(line: str) -> Directive | None:
    """The include directive of a logical line, or None. Tokens are read as ngspice 39 reads them:
    ``.include`` takes one (possibly quoted) path; ``.lib`` a path and a section name, quotes ignored."""
    lowered = line[:8].lower()
    if lowered.startswith(".inc"):
        rest = line.split(maxsplit=1)[1].strip() if len(line.split(maxsplit=1)) > 1 else ""
        if not rest:
            return None
        if rest[0] in "\"'":
            end = rest.find(rest[0], 1)
            target = rest[1:end] if end > 0 else rest[1:]
        else:
            target = rest.split()[0]
        return Directive("include", target)
    if lowered.startswith(".lib") and (len(line) == 4 or line[4] in " \t\"'"):
        words = [w for w in re.split(r"[\s\"']+", line[4:]) if w]
        if not words:
            return None
        if len(words) == 1:
            return Directive("lib1", words[0])
        return Directive("lib", words[0], words[1])
    return None


def resolve(target: str, base: Path, where: str) -> Path:
    """Absolute path of an include target as ngspice resolves it: a leading ``$VAR`` from the environment,
    ``~/`` to the home folder, a relative path against ``base`` (the folder ngspice uses for that line).
    ``where`` (``file:line``) names the line in errors."""
    match = _ENV.match(target)
    if match:
        value = os.environ.get(match[1])
        if value is None:
            raise NetlistError(f"{where}: environment variable ${match[1]} in {target!r} is not set")
        target = value + target[match.end():]
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = base / path
    return Path(os.path.abspath(path))


def rewrite(line: str, base: Path, where: str) -> str:
    """An include line with its path made absolute (so the deck runs from any folder): ``.include "/abs"``,
    ``.lib "/abs" section``. Other lines come back unchanged."""
    found = directive(line)
    if found is None or (found.kind == "lib1" and not resolve(found.target, base, where).is_file()):
        return line  # not an include, or a `.lib name` section definition
    keyword = line.split()[0]
    path = resolve(found.target, base, where).resolve()  # as before: symbolic links resolved
    return f'{keyword} "{path}"' + (f" {found.section}" if found.section else "")
