"""A simulation job: everything needed to turn parameter rows into measured values, and its identity."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from optiyield.netlist import Netlist, NetlistError
from optiyield.sim.protocol import Waveforms


@dataclass
class Extraction:
    """The measures of one run's ``count`` samples: ``values`` (count,) per measure name; ``bad``, per
    sample, None or why its simulated data is unusable (the sample fails, after a gentle retry);
    ``notes``, per usable sample, None or why a measure gave no value (the value is NaN, which fails its
    spec; the note becomes the sample's reason)."""

    values: dict[str, np.ndarray]
    bad: list[str | None]
    notes: list[str | None] | None = None


#: ``extract(waveforms, count) -> Extraction``.
Extractor = Callable[[Waveforms, int], Extraction]

@dataclass(frozen=True)
class LinearStart:
    """A cold transient that starts from the linear periodic state (:mod:`optiyield.sim.ngspice.warmstart`):
    drive frequency ``f0`` (Hz), run length in ``periods`` of it, the sine ``drives`` (source names), and
    ``max_swing`` (V): the linear state is scaled down where it would swing a node by more."""

    f0: float
    periods: int
    drives: tuple[str, ...]
    max_swing: float | None = None


_INCLUDE = re.compile(r'^\.(?:include|inc|lib)\s+"([^"]+)"', re.IGNORECASE)


@dataclass(frozen=True)
class SimJob:
    """Everything the engine needs to simulate one testbench.

    ``names`` are the parameters whose values vary per sample; ``measures`` the names ``extract``
    returns (None for a probe, which returns raw waveforms); ``copies`` selects the batched K-copy deck
    (else one run per sample); ``timeout`` the wall-clock limit of one run in s; ``expected`` the
    analyses that must be in the results; ``sweep`` (param, values) extra copies per sample; ``saves``
    extra vectors to keep, by their name in the rendered deck (single-sample probes); ``devices`` device
    quantities (device, quantity) to keep for every copy, e.g. ``("M1", "vdsat")``, which the simulator names
    per copy (operating-point measures); ``vectors`` ("v", node) / ("i", source) pairs: when given,
    only these vectors of every copy (and ``saves``) are written, not everything (the testbench derives them
    from its measure bindings for transient decks); ``warm_start`` (f0 in Hz, periods): the transient can
    start from a settled state (:meth:`optiyield.sim.engine.Engine.run` with ``anchors``; the cold run
    ends on a whole period of f0, a warm run lasts ``periods`` of them); ``linear_start``: cold rows start
    from the linear periodic state and run its shorter transient (:class:`LinearStart`); ``identity`` what
    else defines the numbers (measure definitions, parasitic coefficients; the testbench supplies it). With
    ``temperature``, the last of ``names``
    is not a netlist parameter but the simulation temperature of each row in °C: rows sharing a deck run at
    each of their temperatures in ONE simulator process (the corner engine, docs/corners.md); ``extract``
    then receives waveforms grouped by temperature (:class:`~optiyield.sim.ngspice.temperature.TemperatureWaveforms`).
    """

    netlist: Netlist
    names: tuple[str, ...]
    measures: tuple[str, ...] = ()
    extract: Extractor | None = None
    copies: bool = True
    batch_size: int = 500
    timeout: float = 60.0
    options: str = ""
    expected: tuple[str, ...] = ()
    sweep: tuple[str, tuple[float, ...]] | None = None
    saves: tuple[str, ...] = ()
    vectors: tuple[tuple[str, str], ...] = ()
    warm_start: tuple[float, int] | None = None
    linear_start: LinearStart | None = None
    identity: str = ""
    simulator: str = "ngspice"
    compat: str = ""  # simulator compatibility mode (ngspice: ``set ngbehavior=...``), e.g. ``hsa`` for sky130
    temperature: bool = False  # the last of ``names`` is each row's temperature (°C), run in one process
    devices: tuple[tuple[str, str], ...] = ()

    @cached_property
    def fingerprint(self) -> str:
        """A stable identity of what a row's results mean: the netlist (with the text of the files it
        includes, nested ones too), analyses, sweep, measures, options, batch size (a sample's numbers
        depend slightly on its deck), time-out, saved vectors, warm and linear start, simulator and parameter names. The
        store and the Dask back-end key results by it. ``vectors`` is left out: writing fewer vectors to the
        raw file gives bit-identical numbers (tests/test_engine.py)."""
        netlist = self.netlist
        payload = {
            "netlist": [netlist.title, *netlist.hoisted, *netlist.body],
            "includes": {line: _file_digest(line) for line in netlist.hoisted if _INCLUDE.match(line)},
            "analyses": list(netlist.analyses), "meas": list(netlist.measures),
            "names": list(self.names), "measures": list(self.measures), "copies": self.copies,
            "batch_size": self.batch_size, "timeout": self.timeout, "options": self.options,
            "expected": list(self.expected), "sweep": self.sweep, "saves": list(self.saves),
            "identity": self.identity, "simulator": self.simulator, "compat": self.compat,
        }
        if self.devices:  # only when asked for, so fingerprints of other jobs stay as they were
            payload["devices"] = [list(pair) for pair in self.devices]
        if self.warm_start is not None:  # only when set, so fingerprints of other jobs stay as they were
            payload["warm_start"] = list(self.warm_start)
        if self.linear_start is not None:
            payload["linear_start"] = repr(self.linear_start)
        nested = _nested_digests(netlist)
        if nested:  # only when there are nested files, so fingerprints of other netlists stay as they were
            payload["nested_includes"] = nested
        if self.temperature:  # only when set, so fingerprints of other jobs stay as they were
            payload["temperature"] = True
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()


def _file_digest(line: str) -> str:
    """SHA-1 of an included file's bytes ('missing' when it cannot be read): a changed model file
    changes the numbers without changing the netlist."""
    match = _INCLUDE.match(line)
    try:
        return hashlib.sha1(Path(match[1]).read_bytes()).hexdigest() if match else ""
    except OSError:
        return "missing"


def _nested_digests(netlist: Netlist) -> dict[str, str]:
    """SHA-1 of every file the netlist's includes read in turn (nested includes, library sections), beyond
    the include lines themselves: a changed nested model file changes the numbers too."""
    top = {match[1] for match in (_INCLUDE.match(line) for line in netlist.hoisted) if match}
    try:
        files = netlist.included()
    except NetlistError:
        return {"unreadable": "missing"}
    out = {}
    for path in files:
        if str(path) not in top:
            try:
                out[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
            except OSError:
                out[str(path)] = "missing"
    return out
