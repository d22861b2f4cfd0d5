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
        message = f"{message} (got {_quote(first.get('input'))})"
    return SpecError(file, yaml_path(loc), _shorten(message))


def _shorten(text: str) -> str:
    return text if len(text) <= 2 * MAX_QUOTE else text[:2 * MAX_QUOTE] + f"… ({len(text):,} characters)"


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + "…"


#: Largest spec or testbench file read (bytes): these are short text files.
MAX_FILE_BYTES = 1 << 20
#: Largest number of values a YAML document may expand to (aliases counted each time they are used).
MAX_NODES = 200_000
#: Longest piece of user input quoted in an error message (characters).
MAX_QUOTE = 200


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys in a mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # unhashable: PyYAML reports it below
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {str(key)[:MAX_QUOTE]!r} (first at line {seen[key] + 1})", mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def _expanded_size(data: Any, budget: int) -> int:
    """Values in ``data`` counting shared (aliased) parts each time they appear, stopping past ``budget``."""
    count, stack = 0, [data]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def read_text(file: Path, what: str = "file") -> str:
    """A user's text file: UTF-8, else Latin-1 (every byte is a character there); a binary file (NUL
    bytes) or one over :data:`MAX_FILE_BYTES` is a :class:`SpecError`."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(file, "", f"{what} of {size:,} bytes is too large (at most {MAX_FILE_BYTES:,})")
        data = file.read_bytes()
    except FileNotFoundError:
        raise SpecError(file, "", "file not found") from None
    except IsADirectoryError:
        raise SpecError(file, "", "is a folder, not a file") from None
    except OSError as exc:
        raise SpecError(file, "", f"cannot read file ({exc.strerror})") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise SpecError(file, "", f"not a text file (a NUL byte at offset {nul}); expected {what} text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def load_yaml(file: Path) -> dict[str, Any]:
    """Read a YAML mapping; syntax errors, duplicate keys, oversized documents (alias bombs included) and
    non-mapping documents become :class:`SpecError`."""
    text = read_text(file, "YAML")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(file, "", f"invalid YAML: {where}{problem}") from None
    except RecursionError:
        raise SpecError(file, "", "invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise SpecError(file, "", f"expected a mapping of keys at the top level, got {type(data).__name__}")
    if _expanded_size(data, MAX_NODES) > MAX_NODES:
        raise SpecError(file, "", f"the document expands to more than {MAX_NODES:,} values (YAML aliases "
                        "repeated too often?); a spec or testbench is far smaller")
    return data


def load_validated(file: Path, model: type[Model]) -> Model:
    """Read a YAML file and validate it as ``model``; every problem becomes one :class:`SpecError`."""
    try:
        return model.model_validate(load_yaml(file))
    except ValidationError as exc:
        raise from_validation_error(file, exc) from None
