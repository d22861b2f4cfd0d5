"""SQLite journal of every evaluation: cache, resume and audit.

Each simulated sample is stored under a key made from the testbench fingerprint and the exact bytes of
its parameter row. Optimizers here are deterministic (fixed seeds, common random numbers), so a resumed
run asks for the same rows again and gets them from the store instead of from ngspice: an interrupted
``optiyield run`` continues where it stopped. Rows are committed after every engine call, so a kill
loses at most the batches in flight. Iteration records of each step are journaled too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    key BLOB PRIMARY KEY,
    params BLOB NOT NULL,
    measures TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    record TEXT NOT NULL,
    created REAL NOT NULL
);
"""


class StoreMismatch(ValueError):
    """The store was written for another testbench or parameter set."""


def to_json(value: Any) -> Any:
    """JSON fallback for journal records: dataclasses as dicts, numpy values as Python numbers/lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _nan_to_none(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


class Store:
    """The evaluation journal of one output folder (``store.sqlite``).

    ``fingerprint`` identifies the job (:attr:`optiyield.sim.job.SimJob.fingerprint`); opening a store
    written for another fingerprint raises :class:`StoreMismatch`, or with ``replace_mismatch``, when the
    store has the same parameters (the testbench, a measure, a sweep or an option changed), drops its stale
    samples (counted in ``dropped``) and starts over under the new fingerprint.
    """

    def __init__(self, path: str | Path, fingerprint: str, parameters: Sequence[str], measures: Sequence[str],
                 *, readonly: bool = False, replace_mismatch: bool = False):
        self.path = Path(path)
        self.parameters, self.measures = tuple(parameters), tuple(measures)
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.executescript(SCHEMA)
        self._lock = threading.Lock()  # samples are saved from the engine's threads as they finish
        self._closed, self._count = False, 0
        self.fingerprint = fingerprint
        self._prefix = hashlib.sha1(fingerprint.encode()).digest()
        stored = self.meta
        #: Stale samples dropped on opening (``replace_mismatch``: the job changed since they were stored).
        self.dropped = 0
        if stored and stored.get("fingerprint") != fingerprint:
            same_problem = json.loads(stored.get("parameters", "[]")) == list(self.parameters)
            if not (replace_mismatch and same_problem) or readonly:
                raise StoreMismatch(f"{self.path} was written for a different testbench or parameter set; "
                                    "use another output folder or start over with --fresh")
            self.dropped = self.evaluations
            self._db.execute("DELETE FROM evaluations")
            self._db.execute("DELETE FROM meta")
            self._db.commit()
            stored = {}
        if not stored and not readonly:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("fingerprint", fingerprint), ("parameters", json.dumps(self.parameters)),
                ("measures", json.dumps(self.measures)), ("created", str(time.time()))])
            self._db.commit()

    @classmethod
    def read(cls, path: str | Path, parameters: Sequence[str], measures: Sequence[str]) -> Store:
        """Open an existing store read-only, whatever it was written for (its ``fingerprint`` says)."""
        with sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        return cls(path, meta.get("fingerprint", ""), parameters, measures, readonly=True)

    @property
    def meta(self) -> dict[str, str]:
        """The store's metadata: fingerprint, parameters, measures, created."""
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def failure_reasons(self) -> dict[str, int]:
        """Reason → number of stored samples that failed with it."""
        rows = self._db.execute("SELECT reason, COUNT(*) FROM evaluations WHERE status = 'failed' GROUP BY reason")
        return {str(reason): int(count) for reason, count in rows}

    def _keys(self, rows: np.ndarray) -> list[bytes]:
        rows = np.ascontiguousarray(rows, dtype="<f8")
        return [hashlib.sha1(self._prefix + row.tobytes()).digest() for row in rows]

    def lookup(self, rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Stored results for parameter rows (R, P): (found mask, measures (R,), status, reason)."""
        keys = self._keys(rows)
        count = len(keys)
        found = np.zeros(count, dtype=bool)
        values = {m: np.full(count, np.nan) for m in self.measures}
        status = np.full(count, "", dtype=object)
        reason = np.full(count, "", dtype=object)
        positions: dict[bytes, list[int]] = {}
        for i, k in enumerate(keys):  # identical rows share a key: every one of them is found
            positions.setdefault(k, []).append(i)
        unique = list(positions)
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            query = f"SELECT key, measures, status, reason FROM evaluations WHERE key IN ({','.join('?' * len(chunk))})"
            for key, measures, st, why in self._db.execute(query, chunk):
                rows = positions[key]
                found[rows] = True
                for name, value in json.loads(measures).items():
                    if name in values:
                        values[name][rows] = np.nan if value is None else value
                status[rows], reason[rows] = st, why
        return found, values, status, reason

    def save(self, rows: np.ndarray, values: dict[str, np.ndarray], status: np.ndarray, reason: np.ndarray) -> None:
        """Record simulated rows and commit."""
        now = time.time()
        records = []
        for i, key in enumerate(self._keys(rows)):
            measures = {m: _nan_to_none(float(values[m][i])) for m in self.measures}
            records.append((key, np.asarray(rows[i], dtype="<f8").tobytes(), json.dumps(measures),
                            str(status[i]), str(reason[i]), now))
        with self._lock:
            if self._closed:  # an engine thread finishing after an interrupt closed the store
                return
            self._db.executemany("INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?, ?)", records)
            self._db.commit()

    def journal(self, step: str, iteration: int, record: dict[str, Any]) -> None:
        """Append one iteration record of a step (JSON-able values)."""
        self._db.execute("INSERT INTO journal (step, iteration, record, created) VALUES (?, ?, ?, ?)",
                         (step, iteration, json.dumps(record, default=to_json), time.time()))
        self._db.commit()

    def history(self, step: str | None = None) -> list[dict[str, Any]]:
        """Journal records, oldest first (of one run step, or all, each with its run step's label as
        ``step``; the optimizer's own name for the part of its work is the record's ``phase``)."""
        if step is None:
            rows = self._db.execute("SELECT step, iteration, record FROM journal ORDER BY id").fetchall()
            return [{**json.loads(r), "step": s, "iteration": i} for s, i, r in rows]
        rows = self._db.execute("SELECT iteration, record FROM journal WHERE step = ? ORDER BY id", (step,)).fetchall()
        return [{"iteration": i, **json.loads(r)} for i, r in rows]

    def journal_times(self) -> tuple[float, float] | None:
        """When the first and the last journal record were written (s since the epoch), or None for an empty
        journal. A run clears the journal when it starts, so the first time is when the current run began."""
        first, last = self._db.execute("SELECT MIN(created), MAX(created) FROM journal").fetchone()
        return None if first is None else (float(first), float(last))

    def clear_journal(self) -> None:
        """Drop journal records (a resumed run writes them again); evaluations stay."""
        self._db.execute("DELETE FROM journal")
        self._db.commit()

    @property
    def evaluations(self) -> int:
        """Number of stored samples."""
        return int(self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    def close(self) -> int:
        """Close the database (waiting for a save in progress; later saves are dropped); returns the number
        of stored samples at that moment."""
        with self._lock:
            if self._closed:
                return self._count
            self._count = self.evaluations
            self._closed = True
            self._db.close()
            return self._count
