"""User-facing input errors: one message naming the file, the YAML path and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class SpecError(ValueError):
    """A spec or testbench file is invalid. ``str()`` is the complete message for the user."""

    def __init__(self, file: str | Path, path: str, message: str) -> None:
        self.file, self.path, self.message = str(file), path, message
        location = f"{self.file}: {path}" if path else self.file
        super().__init__(f"{location}: {message}")


def yaml_path(loc: tuple[Any, ...]) -> str:
    """``('design', 'W', 'start')`` → ``design.W.start``; list indices as ``[i]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


#: Location parts that pydantic inserts for union members and validators, not YAML keys.
_TAGS = {"str", "int", "float", "bool", "list", "dict", "TestbenchFile", "Spread", "MeasureDef", "SweepDef"}


def _is_tag(part: object) -> bool:
    return isinstance(part, str) and (part in _TAGS or part.startswith("function-") or "[" in part)


def from_validation_error(file: str | Path, error: ValidationError) -> SpecError:
    """Turn pydantic's most specific error into a :class:`SpecError` with a designer-readable message.

    With unions (``testbench: path | mapping``) pydantic reports one error per member; the deepest
    location is the one that explains what is wrong with what the user wrote.
    """
    details = error.errors(include_url=False)
    first = max(details, key=lambda e: len([p for p in e["loc"] if not _is_tag(p)]))
    loc = tuple(p for p in first["loc"] if not _is_tag(p))
    kind, message = first["type"], first["msg"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {first.get('input')!r})"
    return SpecError(file, yaml_path(loc), message)


def load_yaml(file: Path) -> dict[str, Any]:
    """Read a YAML mapping; syntax errors and non-mapping documents become :class:`SpecError`."""
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise SpecError(file, "", "file not found") from None
    except OSError as exc:
        raise SpecError(file, "", f"cannot read file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(file, "", f"invalid YAML: {where}{problem}") from None
    if not isinstance(data, dict):
        raise SpecError(file, "", f"expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def load_validated(file: Path, model: type[Model]) -> Model:
    """Read a YAML file and validate it as ``model``; every problem becomes one :class:`SpecError`."""
    try:
        return model.model_validate(load_yaml(file))
    except ValidationError as exc:
        raise from_validation_error(file, exc) from None
