"""Spec files: YAML → validated, frozen design problems.

A spec names a testbench, its design variables (start and bounds), the manufacturing variation,
the specifications (lower/upper limits on measures) and run settings. Numbers accept engineering
suffixes (``350p``, ``22u``, ``1.2k``, ``5%``; see :mod:`optiyield.units`). Every error names the file,
the YAML path and what was expected, e.g. ``specs/csva.yaml: design.W.start: 50u is outside [1u, 20u]``.
See docs/spec-format.md for the full format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from optiyield import safety
from optiyield.corners import CornerSet, CornersFile, build_corners
from optiyield.errors import SpecError, from_validation_error, load_validated
from optiyield.netlist import Netlist
from optiyield.region_specs import RegionRequest, RegionSpec, check_regions, expand
from optiyield.registry import STEPS, RegistryError, StepMethod, StepOptions
from optiyield.stats.variation import Draw, StatisticalModel, VariationError
from optiyield.testbench import Testbench, TestbenchFile, build_testbench, load_testbench
from optiyield.units import eng_field, format_eng
from optiyield.yield_ import SpecLimit

Eng = Annotated[float, BeforeValidator(eng_field)]


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
    return {"value": eng_field(value), "relative": relative}


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


#: The steps of a spec without ``run.steps``: minimax, then ``yield: auto`` (ℓ1 on a growing outcome set, IGAT
#: Jacobians below 8 design variables and FAST ones from 8 on, and a pass-count polish; chosen by
#: benchmarks/yield_opt.py, docs/optimization.md), then verification.
DEFAULT_STEPS: tuple[dict[str, Any], ...] = ({"nominal": "minimax"}, {"yield": "auto"}, {"verify": {"samples": 2000}})


def _step_error(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    return ValidationError.from_exception_data("Step", [InitErrorDetails(
        type=PydanticCustomError("step", message), loc=loc, input=value)])


class Step(BaseModel):
    """One step of ``run.steps``: ``{KIND: METHOD, option: value, …}`` with KIND and METHOD a registered
    run step (:data:`optiyield.registry.STEPS`), or ``{KIND: {option: value, …}}`` for the kinds that take
    their options as a mapping (``verify``, ``propose``). Each method's own options model validates its
    options, so an option given to the wrong step is an error naming the step and the option. Examples::

        - {propose: {model: models/lna_mlp.oym, candidates: 8}}
        - {nominal: minimax, max_iter: 30}
        - {nominal: minimax, until: feasible}    # stop at the first design meeting every spec
        - {yield: l1, gradient: igat, max_iter: 30, phases: 2}
        - {staged: bfgs, rounds: 3, protect: 1}  # a stage keeps the other stages' passing specs
        - {baseline: random, budget: 2000}
        - {verify: {samples: 2000}}
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: str
    method: str
    options: StepOptions

    @model_validator(mode="wrap")
    @classmethod
    def _dispatch(cls, data: Any, handler: Any) -> Step:
        if isinstance(data, Step):
            return data
        kinds = STEPS.kinds()
        if not isinstance(data, dict):
            raise ValueError(f"a step is a mapping such as {{nominal: minimax}} (kinds: {', '.join(kinds)})")
        present = [k for k in data if k in kinds]
        if len(present) != 1:
            unknown = [k for k in data if k not in kinds]
            hint = f"; unknown: {', '.join(map(str, unknown))}" if unknown and not present else ""
            raise ValueError(f"a step names exactly one of {', '.join(f'`{k}`' for k in kinds)}{hint}")
        kind = present[0]
        value = data[kind]
        rest = {k: v for k, v in data.items() if k != kind}
        nested = STEPS.get(f"{kind}:{STEPS.methods(kind)[0]}").nested
        if nested:
            if rest:
                raise _step_error((next(iter(rest)),), f"`{kind}` takes its options inside its mapping, e.g. "
                                  f"{{{kind}: {{{next(iter(rest))}: …}}}}", rest)
            options = {} if value is True or value is None else value
            if not isinstance(options, dict):
                raise _step_error((kind,), f"expected a mapping of `{kind}` options (or true), got {value!r}", value)
            options = dict(options)
            name = str(options.pop("method", STEPS.methods(kind)[0]))
            prefix: tuple[str, ...] = (kind,)
        else:
            if not isinstance(value, str):
                raise _step_error((kind,), f"expected a `{kind}` method name ({', '.join(STEPS.methods(kind))}), "
                                  f"got {value!r}", value)
            name, options, prefix = value, rest, ()
        try:
            method = STEPS.method(kind, name)
        except RegistryError as exc:
            raise _step_error((kind,), str(exc), name) from None
        try:
            parsed = method.options.model_validate(options)
        except ValidationError as exc:
            raise _options_error(exc, method, prefix) from None
        return cls.model_construct(kind=kind, method=name, options=parsed)

    @property
    def label(self) -> str:
        """The step's short description (``minimax (igat)``, ``verify (2000 new)``)."""
        return STEPS.method(self.kind, self.method).describe(self.options)


def _options_error(exc: ValidationError, method: StepMethod, prefix: tuple[str, ...]) -> ValidationError:
    """The options model's errors, with misplaced options named with the step and its valid options."""
    known = ", ".join(method.options.model_fields) or "none"
    details = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            option = str(error["loc"][-1])
            details.append(InitErrorDetails(type=PydanticCustomError(
                "step_option", f"`{method.kind}: {method.name}` does not take `{option}` (its options: {known})"),
                loc=loc, input=error["input"]))
        else:
            details.append(InitErrorDetails(type=PydanticCustomError("step_option", _message(error)), loc=loc,
                                            input=error["input"]))
    return ValidationError.from_exception_data("Step", details)


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message[len("Value error, "):] if message.startswith("Value error, ") else message


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
    samples: int = Field(500, ge=1, le=safety.MAX_SAMPLES)
    sampler: Literal["mc", "sobol"] = "mc"
    confidence: float = Field(0.95, gt=0.5, lt=1)
    ci_width: float | None = Field(None, gt=0, lt=1)
    chunk: int = Field(250, ge=1)
    workers: int | None = Field(None, ge=1)
    cluster: Annotated[str | None, BeforeValidator(_cluster)] = None
    steps: tuple[Step, ...] = Field(default_factory=lambda: tuple(Step.model_validate(s) for s in DEFAULT_STEPS))

    @field_validator("steps", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and not value:
            raise ValueError("empty: list at least one step, or leave `steps` out for the default (minimax, "
                             "then yield auto, then verify with 2,000 samples)")
        return value


class SpecFile(_Frozen):
    """Schema of a spec file (see the module docstring)."""

    name: Annotated[str, AfterValidator(safety.file_name)]
    description: str = ""
    testbench: str | TestbenchFile
    design: dict[str, DesignVariable] = {}
    variation: Annotated[Variation, BeforeValidator(_variation)] = Variation()
    specs: dict[str, SpecBound]
    regions: Annotated[dict[str, RegionRequest], AfterValidator(check_regions)] = {}  # optiyield/region_specs.py
    stages: tuple[Stage, ...] = ()
    corners: CornersFile | None = None
    run: RunSettings = Field(default_factory=RunSettings)


class Spec:
    """A validated design problem: the spec file, its loaded testbench and statistical model."""

    def __init__(self, file: SpecFile, testbench: Testbench, model: StatisticalModel, path: Path | None,
                 base: Path | None = None, corners: CornerSet | None = None,
                 regions: tuple[RegionSpec, ...] = ()) -> None:
        self.file, self.testbench, self.model, self.path = file, testbench, model, path
        #: The expanded PVT corners of ``corners:`` (None without): docs/corners.md.
        self.corners = corners
        #: The expanded ``regions:`` constraints (their measures are in the testbench, their specs in ``file.specs``).
        self.regions = regions
        #: The folder relative paths of the spec resolve against (the spec file's folder, or the ``base`` a spec
        #: given as a mapping was loaded with); None: the working directory.
        self.base = base if base is not None else (path.parent if path is not None else None)

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
    return build_spec(load_validated(path, SpecFile), path.parent, path, path=path)


def spec_from_data(data: dict[str, Any], base: str | Path = ".", source: str = "<spec>",
                   netlist: Netlist | None = None) -> Spec:
    """Validate a spec given as a mapping (the content of a spec file) and load its testbench.

    Relative paths (the testbench file, an inline testbench's netlist or PySpice builder, model files of
    run steps) resolve against ``base``; ``source`` names the spec in error messages
    (``<spec>: design.W.start: …``). ``netlist`` replaces an inline testbench's netlist (a PySpice
    ``Circuit`` given as an object). Raises :class:`SpecError` as :func:`load_spec` does.
    """
    if not isinstance(data, dict):
        raise SpecError(source, "", f"expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        file = SpecFile.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(source, exc) from None
    return build_spec(file, Path(base), source, netlist=netlist)


def build_spec(file: SpecFile, base: Path, source: str | Path, *, path: Path | None = None,
               netlist: Netlist | None = None) -> Spec:
    """Load the testbench of a validated spec (relative to ``base``) and cross-check the two."""
    if isinstance(file.testbench, str):
        testbench_path = base / file.testbench
        if not testbench_path.is_file():
            raise SpecError(source, "testbench", f"testbench file {file.testbench!r} not found")
        testbench = load_testbench(testbench_path)
    else:
        testbench = build_testbench(file.testbench, base, source, netlist)
    file, testbench, regions = _expand_regions(file, testbench, source)
    model = _check(file, testbench, source, base)
    return Spec(file, testbench, model, path, base, _corners(file, testbench, model, source), regions)


def _expand_regions(file: SpecFile, testbench: Testbench, source: str | Path
                    ) -> tuple[SpecFile, Testbench, tuple[RegionSpec, ...]]:
    """``regions:`` → operating-point measures added to the testbench and specs added to ``file.specs``."""
    if not file.regions:
        return file, testbench, ()
    if "op" not in testbench.netlist.analysis_kinds:
        raise SpecError(source, "regions", f"region constraints read the operating point: add `.op` to "
                        f"{testbench.netlist.path.name} (or to the testbench's `analyses`)")
    try:
        testbench, specs, regions = expand(file.regions, testbench)
    except ValueError as exc:
        raise SpecError(source, "regions", str(exc)) from None
    for name in specs:
        if name in file.specs:
            device = next(r.device for r in regions if name in r.bounds)
            raise SpecError(source, f"specs.{name}", f"also made by `regions: {{{device}: …}}`; keep one of the two")
    bounds = {name: SpecBound.model_validate(bound) for name, bound in specs.items()}
    return file.model_copy(update={"specs": {**file.specs, **bounds}}), testbench, tuple(regions)


def revise(spec: Spec, *, start: Mapping[str, Any] | None = None, run: Mapping[str, Any] | None = None,
           corners: Mapping[str, Any] | None | Literal[False] = False) -> Spec:
    """A copy of ``spec`` with some design start values (name → value, engineering strings allowed), run
    settings (``seed``, ``samples``, ``steps``, …) and/or its ``corners`` (a mapping as in a spec file; None
    removes them) replaced, validated as in a spec file; the testbench is not reloaded. Raises
    :class:`SpecError` naming the key (``design.W.start``, ``run.steps[0]…``, ``corners.temp``)."""
    source = spec.path if spec.path is not None else "<spec>"
    file = spec.file
    update: dict[str, Any] = {}
    if start:
        design = dict(file.design)
        for name, value in start.items():
            if name not in design:
                raise SpecError(source, f"design.{name}",
                                f"not a design variable (the design variables: {', '.join(design) or 'none'})")
            try:
                design[name] = DesignVariable.model_validate({**design[name].model_dump(), "start": value})
            except ValidationError as exc:
                error = from_validation_error(source, exc)
                raise SpecError(source, f"design.{name}" + (f".{error.path}" if error.path else ""),
                                error.message) from None
        update["design"] = design
    if run:
        current = {key: getattr(file.run, key) for key in RunSettings.model_fields}
        try:
            update["run"] = RunSettings.model_validate({**current, **run})
        except ValidationError as exc:
            error = from_validation_error(source, exc)
            raise SpecError(source, "run" + (f".{error.path}" if error.path else ""), error.message) from None
    if corners is not False:
        try:
            update["corners"] = None if corners is None else CornersFile.model_validate(corners)
        except ValidationError as exc:
            error = from_validation_error(source, exc)
            raise SpecError(source, "corners" + (f".{error.path}" if error.path else ""), error.message) from None
    file = file.model_copy(update=update)
    base = spec.base if spec.base is not None else Path.cwd()
    model = _check(file, spec.testbench, source, base)
    return Spec(file, spec.testbench, model, spec.path, spec.base, _corners(file, spec.testbench, model, source),
                spec.regions)


def _corners(file: SpecFile, testbench: Testbench, model: StatisticalModel, source: Path | str) -> CornerSet | None:
    """The expanded corners of a spec file (None without ``corners:``); SpecError names the key."""
    if file.corners is None:
        return None
    parameters = list(file.design) + [p for p in model.parameters if p not in file.design]
    return build_corners(file.corners, testbench, tuple(file.design), tuple(parameters), source)


def _check(file: SpecFile, testbench: Testbench, path: Path | str, base: Path) -> StatisticalModel:
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
        nested = STEPS.method(step.kind, step.method).nested
        for option, message in step.options.check(file, base):
            where = ".".join(part for part in (f"run.steps[{index}]", step.kind if nested else "", option) if part)
            raise SpecError(path, where, message)
    measures = testbench.measure_names
    for name in file.specs:
        if name not in measures:
            raise SpecError(path, f"specs.{name}",
                            f"unknown measure {name!r}; the testbench defines: {', '.join(measures) or 'none'}")
    return model
