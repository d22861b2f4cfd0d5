"""Output folders: checked before anything is simulated, and held by one run at a time.

A late error must never throw finished work away: :func:`prepare` creates the folder and writes a test
file into it before the first simulation (a read-only folder, a path naming a file, or a place such as
``/proc`` fails at once, not after an hour), and :class:`FolderLock` keeps a second optiyield process
(a concurrent ``--resume`` or ``--fresh``) out of a folder a run is using.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_NAME = ".optiyield.lock"


class OutputError(RuntimeError):
    """The output folder cannot be used (the message says which folder and why)."""


def prepare(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that files can be written in it; returns it as a Path."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder: choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".optiyield-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {folder}: {exc.strerror or exc}; choose another --out") from None
    return folder


class FolderLock:
    """An exclusive lock on an output folder for the life of a run (``with FolderLock(folder):``).

    Raises :class:`OutputError` naming the holder's process id when another process holds it. The lock
    (``flock`` on ``OUT/.optiyield.lock``) is released by the kernel when the holder dies, however it dies.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"{self.path.parent} is in use by another optiyield run (process {holder}); "
                              "wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
