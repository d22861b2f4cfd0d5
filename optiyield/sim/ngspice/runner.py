"""Run one ngspice process on one deck and say whether it worked.

``ngspice -b -r out.raw deck.cir`` in its own folder and process group, with a minimal spinit
(``set num_threads=1``: OpenMP threads only slow small circuits down), a wall-clock time-out (the whole
process group is killed) and a cap on the size of files it writes (a runaway transient is killed by
SIGXFSZ instead of filling memory). Exit code 0 does not mean success: the output is scanned for
convergence failures and the raw file for missing or incomplete plots (reference: ngspice findings §5).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from optiyield.sim.ngspice.rawfile import Plot, RawFileError, plot_kind, read_raw
from optiyield.sim.protocol import Cancelled

SPINIT = "alias exit quit\nset num_threads=1\n"

#: ngspice's compatibility modes (``set ngbehavior=...``; manual §16.13): ``hs`` HSPICE, ``ps`` PSPICE, ``lt``
#: LTSPICE, ``ki`` KiCad, ``spe`` Spectre, ``a`` apply to the whole netlist (not only .lib/.include files); ``all``
#: and ``spice3`` stand alone (the flags of ngspice 39's ``struct compat``). sky130 asks for ``hsa``.
COMPAT_MODE = re.compile(r"^(all|spice3|(?:hs|ps|lt|ki|spe|a)+)$")


def spinit_text(compat: str = "") -> str:
    """The spinit ngspice reads before the deck: the minimal one, plus ``set ngbehavior=<compat>`` and
    ``set ng_nomodcheck`` (no model-parameter range check, as PDKs such as sky130 ask) for a compatibility mode.

    ``compat`` must match :data:`COMPAT_MODE` (it is written into an ngspice script, so nothing else may pass);
    a ValueError says what is expected.
    """
    if not compat:
        return SPINIT
    if not COMPAT_MODE.match(compat):
        raise ValueError(f"unknown ngspice compatibility mode {compat!r}; expected a combination of hs, ps, lt, "
                         "ki, spe and a (e.g. hsa), or all / spice3")
    return SPINIT + f"set ngbehavior={compat}\nset ng_nomodcheck\n"

#: Output lines that mean the results cannot be trusted even when ngspice exits with 0.
FAILURE_PATTERNS = re.compile(
    r"(?im)(timestep too small|singular matrix|simulation\(s\) aborted|dc solution failed|"
    r"transient op failed|no convergence|iteration limit|could not be simulated|fatal|cannot recover|"
    r"^\s*error\b.*)"
)
_IGNORED_ERRORS = re.compile(r"(?i)^\s*error: measure\b|\.meas.*failed!|^\s*error on line.*meas")


class NgspiceNotFound(RuntimeError):
    """The ngspice executable is not installed or not on PATH."""


def find_ngspice(executable: str = "ngspice") -> str:
    """Absolute path of the ngspice executable; raises :class:`NgspiceNotFound` with install advice."""
    found = shutil.which(executable)
    if found is None:
        raise NgspiceNotFound(
            f"'{executable}' not found on PATH. Install it with `apt-get install ngspice` "
            "(Debian/Ubuntu) or run `make demo`, which installs it."
        )
    return found


@dataclass
class NgspiceRun:
    """What one ngspice process produced: plots, its text output, timing and, if it failed, why."""

    plots: list[Plot] = field(default_factory=list)
    stdout: str = ""
    returncode: int | None = None
    seconds: float = 0.0
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run is usable (no failure reason)."""
        return self.failure is None

    def plot(self, kind: str) -> Plot:
        """The first plot of an analysis kind (``op``, ``ac``, …); KeyError if absent."""
        for plot in self.plots:
            if plot.kind == kind:
                return plot
        raise KeyError(f"no {kind} plot in the results")


def _workspace_root() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


#: Prefix of the private folders (followed by the owning process id): a folder whose process is gone
#: was left by a killed optiyield and is removed by the next one.
FOLDER_PREFIX = "optiyield-"


def remove_stale_folders(*roots: Path) -> int:
    """Delete run and spinit folders left by optiyield processes that no longer exist (killed with
    SIGKILL, so their own clean-up never ran); returns how many were removed."""
    removed = 0
    for root in roots:
        try:
            entries = list(root.glob(f"{FOLDER_PREFIX}*-*-*"))
        except OSError:
            continue
        for folder in entries:
            parts = folder.name.split("-")
            if len(parts) < 4 or not parts[2].isdigit() or process_alive(int(parts[2])):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process id names a live process on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NgspiceRunner:
    """Runs decks through the ngspice executable; safe to share between threads.

    ``max_file_bytes`` caps every file ngspice writes (the raw file above all); ``kill_with_parent``
    (default) makes ngspice die with the thread that started it, so no ngspice outlives a killed
    optiyield. :meth:`cancel` kills every running ngspice at once and refuses new ones.
    """

    def __init__(self, executable: str = "ngspice", max_file_bytes: int = 2 << 30,
                 kill_with_parent: bool = True) -> None:
        self.executable = find_ngspice(executable)
        self.max_file_bytes = max_file_bytes
        # ngspice must die with optiyield (a SIGKILL leaves no chance to clean up): util-linux
        # `setpriv --pdeathsig KILL` sets that up before exec, at ~2 ms per process (docs/engine.md).
        setpriv = shutil.which("setpriv") if kill_with_parent else None
        self._prefix = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
        self._live: set[subprocess.Popen[bytes]] = set()
        self._live_lock = threading.Lock()
        self._cancelled = False
        remove_stale_folders(_workspace_root(), Path(tempfile.gettempdir()))
        self._scripts = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}spinit-{os.getpid()}-"))
        (self._scripts / "spinit").write_text(SPINIT)
        self._env = dict(os.environ, SPICE_SCRIPTS=str(self._scripts))
        self._compat_env: dict[str, dict[str, str]] = {"": self._env}
        self._compat_lock = threading.Lock()

    def _environment(self, compat: str) -> dict[str, str]:
        """Process environment whose SPICE_SCRIPTS folder holds the spinit of compatibility mode ``compat``."""
        with self._compat_lock:
            if compat not in self._compat_env:
                text = spinit_text(compat)
                folder = self._scripts / f"compat-{compat}"
                folder.mkdir()
                (folder / "spinit").write_text(text)
                self._compat_env[compat] = dict(os.environ, SPICE_SCRIPTS=str(folder))
            return self._compat_env[compat]

    def workdir(self) -> Path:
        """A fresh private folder for one run (in /dev/shm when available)."""
        return Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}run-{os.getpid()}-", dir=_workspace_root()))

    def cancel(self) -> None:
        """Kill every running ngspice process group now and start no new one (raises :class:`Cancelled`)."""
        with self._live_lock:
            self._cancelled = True
            processes = list(self._live)
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def reset(self) -> None:
        """Accept new runs again after :meth:`cancel`."""
        with self._live_lock:
            self._cancelled = False

    @staticmethod
    def remove(folder: Path) -> None:
        """Delete a run folder and everything in it."""
        shutil.rmtree(folder, ignore_errors=True)

    def run(self, deck: str, folder: Path, timeout: float, expected: tuple[str, ...] = (),
            slot: AbstractContextManager[object] | None = None, compat: str = "") -> NgspiceRun:
        """Write ``deck`` to ``folder/deck.cir``, run ngspice on it and classify the outcome.

        ``expected`` lists analysis kinds whose plots must be present and complete. The raw file is
        ``folder/out.raw`` (the deck must refer to that path if it writes from ``.control``).
        ``slot`` is held only while the ngspice process runs (the engine's limit on concurrent
        processes), so reading results of one run overlaps with the next run. ``compat`` selects an ngspice
        compatibility mode (:func:`spinit_text`), e.g. ``hsa`` for the sky130 models.
        """
        deck_path, raw_path, log_path = folder / "deck.cir", folder / "out.raw", folder / "log.txt"
        deck_path.write_text(deck)
        command = [*self._prefix, self.executable, "-b", "-r", str(raw_path), str(deck_path)]
        if ".control" in deck:
            command = [*self._prefix, self.executable, "-b", str(deck_path)]
        with slot or nullcontext():
            returncode, seconds = self._execute(command, folder, log_path, timeout, self._environment(compat))
        if returncode is None:
            return NgspiceRun(returncode=None, seconds=seconds, stdout=_read_text(log_path),
                              failure=f"timed out after {timeout:g} s")
        outcome = NgspiceRun(returncode=returncode, seconds=seconds, stdout=_read_text(log_path))
        outcome.failure = self._classify(outcome, raw_path, expected)
        return outcome

    def _execute(self, command: list[str], folder: Path, log_path: Path, timeout: float,
                 env: dict[str, str]) -> tuple[int | None, float]:
        """Run the process; its exit code (None after a time-out) and wall time in seconds."""
        start = time.perf_counter()
        with open(log_path, "wb") as log, self._live_lock:
            if self._cancelled:
                raise Cancelled("cancelled: no new ngspice run")
            process = subprocess.Popen(
                command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,
            )
            self._live.add(process)
        try:
            result = self._wait(process, timeout, start)
        finally:
            with self._live_lock:
                self._live.discard(process)
        if self._cancelled:  # killed by cancel(): its output means nothing
            raise Cancelled("cancelled: ngspice was stopped")
        return result

    def _wait(self, process: subprocess.Popen[bytes], timeout: float, start: float) -> tuple[int | None, float]:
        """Cap the process's file sizes, wait for it with a kill timer; (exit code or None, seconds)."""
        # Cap the child's file sizes from here: a preexec_fn would make Python fork instead of vfork,
        # which costs tens of ms per process in a parent holding numpy/pandas.
        with contextlib.suppress(ProcessLookupError):
            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (self.max_file_bytes, self.max_file_bytes))
        # A blocking wait plus a kill timer: Popen.wait(timeout=...) polls with sleeps of up to 50 ms,
        # which added ~14 % to 100 ms runs.
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            _kill_group(process)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            returncode: int | None = process.wait()
        finally:
            timer.cancel()
        return (None if expired.is_set() else returncode), time.perf_counter() - start

    def _classify(self, outcome: NgspiceRun, raw_path: Path, expected: tuple[str, ...]) -> str | None:
        rc = outcome.returncode
        if rc is not None and rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            reason = {"SIGXFSZ": " (raw file exceeded the size cap)"}.get(name, "")
            return f"ngspice crashed: killed by {name}{reason}"
        message = _first_failure_line(outcome.stdout)
        if rc:
            return f"ngspice exit code {rc}" + (f": {message}" if message else "")
        if message:
            return message
        try:
            outcome.plots = read_raw(raw_path)
        except RawFileError as exc:
            return str(exc)
        for kind in expected:
            plots = [p for p in outcome.plots if p.kind == kind]
            if not plots:
                return f"no {kind} results in the raw file"
            if not all(p.complete for p in plots):
                return f"{kind} results incomplete (missing points)"
        return None

    def close(self) -> None:
        """Remove the spinit folder."""
        shutil.rmtree(self._scripts, ignore_errors=True)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""


_GENERIC = re.compile(r"(?i)fatal error in ngspice|simulation\(s\) aborted|cannot recover")


def _first_failure_line(text: str) -> str | None:
    """The first line of ngspice's output that says a run failed; for a generic one ("fatal error in
    ngspice") the two lines before it that explain why (e.g. ``Netlist line no. 4: Closing "}" not
    found.``) come first."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _IGNORED_ERRORS.search(line):
            continue
        if FAILURE_PATTERNS.search(line):
            found = line.strip()
            if _GENERIC.search(line):
                before = [b.strip() for b in lines[max(0, index - 4):index] if b.strip()][-2:]
                found = " ".join([*before, found])
            return found[:400]
    return None


__all__ = ["COMPAT_MODE", "FAILURE_PATTERNS", "NgspiceNotFound", "NgspiceRun", "NgspiceRunner", "find_ngspice",
           "plot_kind", "spinit_text"]
