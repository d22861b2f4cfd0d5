"""Spec files: YAML → validated, frozen design problems.

A spec names a testbench, its design variables (start and bounds), the manufacturing variation,
the specifications (lower/upper limits on measures) and run settings. Numbers accept engineering
suffixes (``350p``, ``22u``, ``1.2k``, ``5%``; see :mod:`optiyield.units`). Every error names the file,
the YAML path and what was expected, e.g. ``specs/csva.yaml: design.W.start: 50u is outside [1u, 20u]``.
See docs/spec-format.md for the full format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from optiyield.errors import SpecError, load_validated
from optiyield.stats.variation import Draw, StatisticalModel, VariationError
from optiyield.testbench import Testbench, TestbenchFile, build_testbench, load_testbench
from optiyield.units import UnitError, format_eng, parse_eng
from optiyield.yield_ import SpecLimit


def _eng(value: Any) -> Any:
    if value is None:
        return None
    try:
        return parse_eng(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


Eng = Annotated[float, BeforeValidator(_eng)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DesignVariable(_Frozen):
    """A design variable: start value and bounds, SI units."""

    start: Eng | None = None
    min: Eng
    max: Eng

    @model_validator(mode="after")
    def _bounds(self) -> DesignVariable:
        if self.min > self.max:
            raise ValueError(f"min {format_eng(self.min)} is greater than max {format_eng(self.max)}")
        return self


class Spread(_Frozen):
    """A spread given as absolute SI value or, when written with ``%``, as a fraction of nominal."""

    value: float
    relative: bool


def _spread(value: Any) -> Any:
    if value is None or isinstance(value, Spread | dict):
        return value
    relative = isinstance(value, str) and value.strip().endswith("%")
    return {"value": _eng(value), "relative": relative}


class VariationEntry(_Frozen):
    """One source of variation.

    ``param`` (one parameter) or ``params`` (several, e.g. one per device); ``dist: normal`` with
    ``sigma`` or ``dist: uniform`` with ``tol`` (± half-width); ``%`` makes the spread relative to the
    nominal value. ``mode: global`` draws one deviate shared by all ``params`` (process shift),
    ``mode: mismatch`` an independent one per parameter (device mismatch).
    """

    param: str | None = None
    params: tuple[str, ...] | None = None
    name: str | None = None
    dist: Literal["normal", "uniform"]
    sigma: Annotated[Spread | None, BeforeValidator(_spread)] = None
    tol: Annotated[Spread | None, BeforeValidator(_spread)] = None
    mode: Literal["global", "mismatch"] = "global"

    @model_validator(mode="after")
    def _shape(self) -> VariationEntry:
        if (self.param is None) == (self.params is None):
            raise ValueError("give exactly one of `param` (a name) or `params` (a list of names)")
        if self.params is not None and not self.params:
            raise ValueError("`params` is empty")
        if self.dist == "normal" and (self.sigma is None or self.tol is not None):
            raise ValueError("a normal variation takes `sigma` (and no `tol`)")
        if self.dist == "uniform" and (self.tol is None or self.sigma is not None):
            raise ValueError("a uniform variation takes `tol` (and no `sigma`)")
        spread = self.sigma or self.tol
        if spread is not None and spread.value < 0:
            raise ValueError("the spread must not be negative")
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        """The parameters this entry varies."""
        return (self.param,) if self.param is not None else tuple(self.params or ())

    @property
    def draw_name(self) -> str:
        """The name correlations refer to: ``name``, else the single parameter's name."""
        return self.name or (self.param if self.param is not None else "+".join(self.targets))


class Variation(_Frozen):
    """All variation entries and the correlations between (global, normal) entries."""

    parameters: tuple[VariationEntry, ...] = ()
    correlations: tuple[tuple[str, str, float], ...] = ()


def _variation(value: Any) -> Any:
    return {"parameters": value} if isinstance(value, list) else value


class SpecBound(_Frozen):
    """A specification on one measure: lower and/or upper limit, optional weight and error scale."""

    min: Eng | None = None
    max: Eng | None = None
    weight: float = Field(1.0, gt=0)
    scale: Eng | None = None

    @model_validator(mode="after")
    def _limits(self) -> SpecBound:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {format_eng(self.min)} is greater than max {format_eng(self.max)}")
        return self


class VerifyOptions(_Frozen):
    """A verification Monte Carlo with a fresh, larger sample."""

    samples: int = Field(2000, ge=1)
    seed: int | None = None


_STEP_KINDS = ("propose", "nominal", "yield_", "staged", "baseline", "verify")


class ProposeOptions(_Frozen):
    """A proposer step: a model file from ``optiyield train`` (``model``, path relative to the spec file) or
    an analytical sizer by name (``sizer``, e.g. ``lna_cascode``, with its keyword ``options`` such as
    ``{idd: 5m, gain_db: 21}``); how many candidates to re-simulate, how many query targets to draw (models),
    the seed, and whether to re-simulate the candidates one at a time (best-ranked first) and stop at the
    first meeting every spec."""

    model: str | None = None
    sizer: Literal["lna_cascode"] | None = None
    options: dict[str, Eng] = {}
    candidates: int = Field(8, ge=1, le=1000)
    targets: int = Field(256, ge=1)
    seed: int = 0
    sequential: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ProposeOptions:
        if (self.model is None) == (self.sizer is None):
            raise ValueError("give exactly one of `model` (a file from `optiyield train`) or `sizer` "
                             "(an analytical sizer: lna_cascode)")
        if self.options and self.sizer is None:
            raise ValueError("`options` are keyword options of a `sizer`")
        return self


class Step(_Frozen):
    """One step of ``run.steps``: exactly one of ``propose``, ``nominal``, ``yield``, ``staged``,
    ``baseline`` or ``verify``, with its options. Examples::

        - {propose: {model: models/lna_mlp.oym, candidates: 8}}
        - {nominal: minimax, max_iter: 30}
        - {nominal: minimax, until: feasible}    # stop at the first design meeting every spec
        - {yield: l1, gradient: igat, max_iter: 30, phases: 2}
        - {staged: bfgs, rounds: 3}
        - {staged: bfgs, rounds: 3, protect: 1}  # a stage keeps the other stages' passing specs
        - {baseline: random, budget: 2000}
        - {verify: {samples: 2000}}
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    propose: ProposeOptions | None = None
    nominal: Literal["minimax"] | None = None
    yield_: Literal["l1"] | None = Field(None, alias="yield")
    staged: Literal["bfgs"] | None = None
    baseline: Literal["random", "nelder-mead"] | None = None
    verify: VerifyOptions | None = None
    gradient: Literal["igat", "past", "central"] = "igat"
    max_iter: int = Field(30, ge=1)
    phases: int = Field(2, ge=1)
    rounds: int = Field(3, ge=1)
    budget: int = Field(2000, ge=1)
    samples: int | None = Field(None, ge=1)
    trust_region: float = Field(0.1, gt=0, le=1)
    refresh: int = Field(5, ge=0)
    refine: int = Field(8, ge=0)
    protect: float = Field(0.0, ge=0)
    stall_restart: bool = False
    until: Literal["converged", "feasible"] = "converged"

    @model_validator(mode="before")
    @classmethod
    def _verify_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("verify") is True:
            data = {**data, "verify": {}}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in _STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a step is exactly one of `propose`, `nominal`, `yield`, `staged`, `baseline` or "
                             "`verify`")
        return self

    @property
    def kind(self) -> str:
        """``propose``, ``nominal``, ``yield``, ``staged``, ``baseline`` or ``verify``."""
        for key in _STEP_KINDS:
            if getattr(self, key) is not None:
                return key.rstrip("_")
        raise AssertionError("validated step without a kind")


class Stage(_Frozen):
    """A knowledge-based optimization stage: a group of specs (optionally re-weighted) and the design
    variables allowed to move while they are optimized."""

    name: str
    specs: dict[str, float] | tuple[str, ...]
    variables: tuple[str, ...]

    @property
    def weights(self) -> dict[str, float] | None:
        """Per-spec weights of this stage, or None to use the specs' own weights."""
        return dict(self.specs) if isinstance(self.specs, dict) else None

    @property
    def spec_names(self) -> tuple[str, ...]:
        """The specs this stage optimizes."""
        return tuple(self.specs)


def _cluster(value: Any) -> str | None:
    """``run.cluster``: None, or a Dask cluster address (``local:N`` or ``tcp://HOST:PORT``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a cluster address, local:N or tcp://HOST:PORT, got {value!r}")
    from optiyield.execute import parse_cluster

    parse_cluster(value)
    return value.strip()


class RunSettings(_Frozen):
    """Run settings: seed, number of Monte Carlo samples, sampler, confidence level, the optional
    sequential-stopping width (stop once the yield interval is narrower; then ``samples`` is the cap),
    parallel slots (``workers``) and where batches run (``cluster``: ``local:N`` or ``tcp://HOST:PORT``
    for a Dask cluster, see docs/engine.md; default this machine)."""

    seed: int = 1
    samples: int = Field(500, ge=1)
    sampler: Literal["mc", "sobol"] = "mc"
    confidence: float = Field(0.95, gt=0.5, lt=1)
    ci_width: float | None = Field(None, gt=0, lt=1)
    chunk: int = Field(250, ge=1)
    workers: int | None = Field(None, ge=1)
    cluster: Annotated[str | None, BeforeValidator(_cluster)] = None
    steps: tuple[Step, ...] = ()


class SpecFile(_Frozen):
    """Schema of a spec file (see the module docstring)."""

    name: str
    description: str = ""
    testbench: str | TestbenchFile
    design: dict[str, DesignVariable] = {}
    variation: Annotated[Variation, BeforeValidator(_variation)] = Variation()
    specs: dict[str, SpecBound]
    stages: tuple[Stage, ...] = ()
    run: RunSettings = RunSettings()


class Spec:
    """A validated design problem: the spec file, its loaded testbench and statistical model."""

    def __init__(self, file: SpecFile, testbench: Testbench, model: StatisticalModel, path: Path | None) -> None:
        self.file, self.testbench, self.model, self.path = file, testbench, model, path

    @property
    def name(self) -> str:
        """Name of the design problem."""
        return self.file.name

    @property
    def run(self) -> RunSettings:
        """Run settings."""
        return self.file.run

    @property
    def design_start(self) -> dict[str, float]:
        """Start value of every design variable (the netlist default where no start is given), SI."""
        return {n: v.start if v.start is not None else float(self.testbench.nominal(n) or 0.0)
                for n, v in self.file.design.items()}

    @property
    def design_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the design variables (SI), in ``file.design`` order."""
        lower = np.array([v.min for v in self.file.design.values()], dtype=float)
        upper = np.array([v.max for v in self.file.design.values()], dtype=float)
        return lower, upper

    @property
    def parameters(self) -> tuple[str, ...]:
        """Netlist parameters set per sample: design variables, then statistical-only parameters."""
        names = list(self.file.design)
        names += [p for p in self.model.parameters if p not in self.file.design]
        return tuple(names)

    def nominal(self, design: dict[str, float] | None = None) -> dict[str, float]:
        """Nominal value of every per-sample parameter at a design point (default: the start point)."""
        point = dict(self.design_start)
        point.update(design or {})
        values = {}
        for name in self.parameters:
            if name in point:
                values[name] = point[name]
            else:
                default = self.testbench.nominal(name)
                values[name] = 0.0 if default is None else default
        return values

    @property
    def limits(self) -> tuple[SpecLimit, ...]:
        """The specifications as yield limits."""
        return tuple(SpecLimit(name, b.min, b.max) for name, b in self.file.specs.items())


def load_spec(path: str | Path) -> Spec:
    """Load and validate a spec file and its testbench; raises :class:`SpecError` on any problem."""
    path = Path(path)
    file = load_validated(path, SpecFile)
    base = path.parent
    if isinstance(file.testbench, str):
        testbench_path = base / file.testbench
        if not testbench_path.is_file():
            raise SpecError(path, "testbench", f"testbench file {file.testbench!r} not found")
        testbench = load_testbench(testbench_path)
    else:
        testbench = build_testbench(file.testbench, base, path)
    return Spec(file, testbench, _check(file, testbench, path), path)


def _check(file: SpecFile, testbench: Testbench, path: Path) -> StatisticalModel:
    """Cross-checks between spec and testbench; returns the statistical model."""
    netlist_name = testbench.netlist.path.name
    for name, var in file.design.items():
        where = f"design.{name}"
        if not testbench.has_param(name):
            raise SpecError(path, where, f"no `.param {name}` in {netlist_name}")
        start = var.start if var.start is not None else testbench.nominal(name)
        if start is None:
            raise SpecError(path, f"{where}.start", f"required: the netlist default of {name} is not a number")
        if not var.min <= start <= var.max:
            raise SpecError(path, f"{where}.start",
                            f"{format_eng(start)} is outside [{format_eng(var.min)}, {format_eng(var.max)}]")
    draws = []
    for index, entry in enumerate(file.variation.parameters):
        where = f"variation.parameters[{index}]"
        for target in entry.targets:
            if not testbench.has_param(target):
                raise SpecError(path, f"{where}.{'param' if entry.param else 'params'}",
                                f"no `.param {target}` in {netlist_name}")
            if target not in file.design and testbench.nominal(target) is None:
                raise SpecError(path, where, f"the netlist default of statistical parameter {target} "
                                "must be a number (it is the nominal value)")
        spread = entry.sigma or entry.tol
        assert spread is not None
        draws.append(Draw(name=entry.draw_name, dist=entry.dist, targets=entry.targets,
                          spread=spread.value, relative=spread.relative, mode=entry.mode))
    try:
        model = StatisticalModel(draws, file.variation.correlations)
    except VariationError as exc:
        where = "variation.correlations" if file.variation.correlations else "variation"
        raise SpecError(path, where, str(exc)) from None
    for index, stage in enumerate(file.stages):
        for name in stage.spec_names:
            if name not in file.specs:
                raise SpecError(path, f"stages[{index}].specs",
                                f"{name!r} is not one of the specs ({', '.join(file.specs)})")
        for name in stage.variables:
            if name not in file.design:
                raise SpecError(path, f"stages[{index}].variables",
                                f"{name!r} is not a design variable ({', '.join(file.design) or 'none'})")
    for index, step in enumerate(file.run.steps):
        if step.propose is not None and step.propose.model is not None and not (
                path.parent / step.propose.model).is_file():
            raise SpecError(path, f"run.steps[{index}].propose.model",
                            f"model file {step.propose.model!r} not found (train one with `optiyield train`)")
    if any(step.kind == "staged" for step in file.run.steps) and not file.stages:
        raise SpecError(path, "run.steps", "a `staged` step needs `stages:` in the spec")
    measures = testbench.measure_names
    for name in file.specs:
        if name not in measures:
            raise SpecError(path, f"specs.{name}",
                            f"unknown measure {name!r}; the testbench defines: {', '.join(measures) or 'none'}")
    return model
