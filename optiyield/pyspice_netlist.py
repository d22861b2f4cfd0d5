"""PySpice circuits as testbenches: PySpice writes the netlist text, optiyield's engine runs it, batched.

A testbench may name, instead of a netlist file, a Python function that returns a PySpice ``Circuit``::

    pyspice: bench.py:build        # in testbench.yaml, or inline under a spec's `testbench:`

(``bench.py`` relative to the testbench's folder; ``build`` a function without arguments, or a module-level
``Circuit``). The Python API also takes the ``Circuit`` object itself (docs/python-api.md).

Only ``str(circuit)`` is used: PySpice's netlist writer, which needs neither ngspice's shared library nor
PySpice's simulator binding. The text then goes through the same reader as a netlist file
(:func:`optiyield.netlist.parse_netlist_text`): ``.param`` defaults, ``.subckt`` blocks, ``.include``
paths and analyses (``circuit.raw_spice``, or the testbench's ``analyses:``) are kept as written.
PySpice's own netlist *parser* is not used for anything: it drops ``.param`` lines and subcircuits
(DESIGN.md §6). PySpice 1.5 imports and writes netlists under NumPy 2.4 unchanged: no shim is needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optiyield.netlist import Netlist, NetlistError, parse_netlist_text

#: What to install when a testbench needs PySpice and it is missing.
INSTALL_HINT = "pip install 'optiyield[pyspice]'"


class PySpiceError(ValueError):
    """A PySpice testbench cannot be loaded; the message says which reference and why."""


def is_circuit(value: Any) -> bool:
    """True for a PySpice ``Circuit`` (checked without importing PySpice when the caller has not)."""
    netlist = sys.modules.get("PySpice.Spice.Netlist")
    circuit = getattr(netlist, "Circuit", None)
    return circuit is not None and isinstance(value, circuit)


def circuit_text(circuit: Any) -> str:
    """The netlist text PySpice writes for ``circuit`` (``str(circuit)``); PySpiceError for anything else."""
    if not is_circuit(circuit):
        raise PySpiceError(f"expected a PySpice Circuit, got {type(circuit).__name__}")
    return str(circuit)


def split_reference(reference: str) -> tuple[str, str]:
    """``"bench.py:build"`` → ``("bench.py", "build")``; PySpiceError when the form is wrong."""
    file, sep, name = reference.rpartition(":")
    if not sep or not file.endswith(".py") or not name.isidentifier():
        raise PySpiceError(f"{reference!r}: expected FILE.py:NAME, e.g. bench.py:build (a function that returns a "
                           "PySpice Circuit)")
    return file, name


def _import_file(path: Path) -> Any:
    """Execute a Python file as a fresh module (re-read on every load: the user may have edited it)."""
    name = "optiyield_bench_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PySpiceError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        sys.modules.pop(name, None)
        hint = f" (install it: {INSTALL_HINT})" if (exc.name or "").startswith("PySpice") else ""
        raise PySpiceError(f"{path.name}: {exc}{hint}") from None
    except Exception as exc:  # noqa: BLE001 - the user's file: any error becomes one message naming it
        sys.modules.pop(name, None)
        raise PySpiceError(f"{path.name} failed on import: {type(exc).__name__}: {exc}") from None
    return module


def load_reference(reference: str, base: Path) -> Any:
    """The object ``FILE.py:NAME`` names (``FILE.py`` relative to ``base``)."""
    file, name = split_reference(reference)
    path = (base / file).resolve()
    if not path.is_file():
        raise PySpiceError(f"{reference!r}: file {file!r} not found next to the testbench ({base})")
    module = _import_file(path)
    if not hasattr(module, name):
        raise PySpiceError(f"{reference!r}: {file} defines no {name!r}")
    return getattr(module, name)


def build_circuit(source: Any, label: str) -> Any:
    """A ``Circuit`` from a ``Circuit`` or from a function without arguments that returns one."""
    if is_circuit(source):
        return source
    if callable(source):
        builder: Callable[[], Any] = source
        try:
            circuit = builder()
        except Exception as exc:  # noqa: BLE001 - the user's builder: any error becomes one message naming it
            raise PySpiceError(f"{label} failed: {type(exc).__name__}: {exc}") from None
        if not is_circuit(circuit):
            raise PySpiceError(f"{label} returned {type(circuit).__name__}, expected a PySpice Circuit")
        return circuit
    raise PySpiceError(f"{label} is a {type(source).__name__}, expected a PySpice Circuit or a function returning one")


def pyspice_netlist(source: Any, base: Path) -> Netlist:
    """The testbench netlist of a PySpice source: ``"FILE.py:NAME"``, a ``Circuit``, or a function returning one.

    Relative ``.include`` paths in the circuit resolve against ``base`` (the testbench's folder).
    Raises :class:`PySpiceError` naming the reference and the problem.
    """
    if isinstance(source, str):
        label = source
        source = load_reference(source, base)
    else:
        label = getattr(source, "__name__", None) or "circuit"
    circuit = build_circuit(source, label)
    text = circuit_text(circuit)
    try:
        return parse_netlist_text(text, base / f"{label} (PySpice)")
    except NetlistError as exc:
        raise PySpiceError(f"the netlist PySpice wrote for {label}: {exc}") from None
