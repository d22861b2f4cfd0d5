"""Name → object tables: the extension points a spec file can name (run steps, simulators, estimators).

A :class:`Registry` maps a name to an entry. Built-in entries are listed here as ``"module:attribute"``
strings and imported the first time they are looked up (the pattern of fsspec's known
implementations), so this module imports nothing of the package and sits at its lowest layer: the spec
loader can validate a step against the method's own options model without importing every optimizer
up front. A user's own entry is registered as an object::

    from optiyield.registry import STEPS, StepMethod, StepOptions

    class ToyOptions(StepOptions):
        moves: int = 3

    def toy(problem, x0, options, callback):        # -> optiyield.optim.result.Result
        ...

    STEPS.register(StepMethod(kind="yield", name="toy", options=ToyOptions, run=toy))

after which a spec may say ``- {yield: toy, moves: 5}`` (docs/architecture.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class RegistryError(KeyError):
    """A name is not registered (the message lists the names that are)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A table of named entries of one kind (``what`` names the kind in error messages).

    ``builtins`` maps names to ``"module:attribute"`` strings, resolved on first lookup.
    """

    def __init__(self, what: str, builtins: dict[str, str] | None = None) -> None:
        self.what = what
        self._lazy: dict[str, str] = dict(builtins or {})
        self._entries: dict[str, T] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._lazy

    def names(self) -> tuple[str, ...]:
        """Every registered name, built-ins first, in registration order."""
        return tuple(dict.fromkeys([*self._lazy, *self._entries]))

    def get(self, name: str) -> T:
        """The entry called ``name``; raises :class:`RegistryError` naming the known ones."""
        if name not in self._entries:
            target = self._lazy.get(name)
            if target is None:
                raise RegistryError(f"unknown {self.what} {name!r}; expected one of {', '.join(self.names())}")
            module, _, attribute = target.partition(":")
            self._entries[name] = getattr(importlib.import_module(module), attribute)
        return self._entries[name]

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add an entry; ``replace`` allows overriding an existing name. Returns the entry."""
        if name in self and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._lazy.pop(name, None)
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (a built-in one comes back only by re-registering it)."""
        self._lazy.pop(name, None)
        self._entries.pop(name, None)

    @contextmanager
    def registered(self, name: str, entry: T) -> Iterator[T]:
        """Register ``entry`` for the duration of a ``with`` block (tests, notebooks)."""
        self.register(name, entry)
        try:
            yield entry
        finally:
            self.unregister(name)


class StepOptions(BaseModel):
    """Base of every run step's options model: unknown options are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def check(self, spec: Any, folder: Path) -> Iterator[tuple[str, str]]:
        """Cross-checks against the rest of the spec file (``spec``, a ``SpecFile``) and the spec's
        ``folder``, run when the spec is loaded: yields (option, message) pairs, option "" for the step
        itself. None by default."""
        return iter(())


@dataclass(frozen=True)
class StepMethod:
    """A run step a spec can name: ``{KIND: NAME, option: value, …}``.

    ``kind`` is the step key (``nominal``, ``yield``, ``staged``, ``baseline``, ``propose``, ``verify``,
    …) and ``name`` the method under it (``minimax``, ``l1``, ``bfgs``, …). ``options`` validates the
    remaining keys. ``nested`` steps take their options as a mapping under the key instead
    (``{verify: {samples: 2000}}``). ``run(problem, x0, options, callback)`` does the work and returns an
    :class:`optiyield.optim.result.Result` (see :mod:`optiyield.optim.method`); ``label(options)`` is the
    short text shown for the step (default ``"KIND NAME"``).
    """

    kind: str
    name: str
    options: type[StepOptions]
    run: Callable[..., Any]
    label: Callable[[Any], str] | None = None
    nested: bool = False

    @property
    def key(self) -> str:
        """The registry key, ``kind:name``."""
        return f"{self.kind}:{self.name}"

    def describe(self, options: Any) -> str:
        """The step's label for tables and the journal."""
        return self.label(options) if self.label is not None else f"{self.kind} {self.name}"


class StepRegistry(Registry[StepMethod]):
    """Run steps keyed by ``kind:name``; :meth:`register` takes a :class:`StepMethod`."""

    def register(self, name: str | StepMethod, entry: StepMethod | None = None, *,  # type: ignore[override]
                 replace: bool = False) -> StepMethod:
        """``register(method)`` (or ``register("kind:name", method)``)."""
        if isinstance(name, StepMethod):
            entry, name = name, name.key
        assert entry is not None
        return super().register(name, entry, replace=replace)

    def kinds(self) -> tuple[str, ...]:
        """The step keys a spec may use (``nominal``, ``yield``, …)."""
        return tuple(dict.fromkeys(name.partition(":")[0] for name in self.names()))

    def methods(self, kind: str) -> tuple[str, ...]:
        """The methods registered under one step key."""
        return tuple(n.partition(":")[2] for n in self.names() if n.partition(":")[0] == kind)

    def method(self, kind: str, name: str) -> StepMethod:
        """The method ``name`` of step ``kind``; :class:`RegistryError` lists the alternatives."""
        key = f"{kind}:{name}"
        if key not in self:
            choices = self.methods(kind)
            raise RegistryError(f"unknown `{kind}` method {name!r}; expected one of {', '.join(choices)}")
        return self.get(key)


#: Run steps (``run.steps`` of a spec). Each module defines ``METHOD`` (or a named StepMethod).
STEPS = StepRegistry("run step", {
    "propose:candidates": "optiyield.propose.step:METHOD",
    "nominal:minimax": "optiyield.optim.minimax:METHOD",
    "yield:l1": "optiyield.optim.yield_l1:METHOD",
    "yield:auto": "optiyield.optim.yield_auto:METHOD",
    "staged:bfgs": "optiyield.optim.staged:METHOD",
    "baseline:random": "optiyield.optim.baselines:RANDOM",
    "baseline:nelder-mead": "optiyield.optim.baselines:NELDER_MEAD",
    "baseline:cma-es": "optiyield.optim.blackbox:CMA",
    "baseline:optuna-tpe": "optiyield.optim.blackbox:TPE",
    "baseline:optuna-gp": "optiyield.optim.blackbox:GP",
    "verify:mc": "optiyield.optim.verify:METHOD",
    "centering:wcd": "optiyield.reliability.centering:METHOD",
})

#: Analytical sizers a ``propose`` step can name (``{propose: {sizer: NAME, options: {…}}}``): classes
#: taking the sizer's keyword options and ``probe`` (the evaluator's counted single-sample runs), with
#: ``propose(spec, count, seed)``.
SIZERS: Registry[Any] = Registry("sizer", {
    "lna_cascode": "optiyield.propose.lna_cascode:LnaCascodeSizer",
})

#: Simulators the engine can drive (``testbench.yaml``: ``simulator: NAME``; default ngspice).
SIMULATORS: Registry[Any] = Registry("simulator", {
    "ngspice": "optiyield.sim.ngspice:NgspiceSimulator",
})
