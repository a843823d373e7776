"""The one loader of YAML config files (curate, train, recipe): a missing file, invalid YAML or a field that does
not match the schema is a :class:`ConfigError` of one line per bad field, naming the file and the field."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is missing, not YAML, or does not match its schema; the message is for the user."""


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file" if not path.exists() else f"{path}: not a file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


def error_lines(exc: ValidationError, where: str, names: Mapping[str, str] | None = None) -> list[str]:
    """One line per bad field: ``WHERE: field.path: message``; `names` renames a field (by its dotted path or
    its top-level name, e.g. to the command-line option that set it) and then names it instead of `where`."""
    lines, names = [], names or {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        if err["type"] not in ("extra_forbidden", "missing") and "input" in err and not isinstance(
                err["input"], dict | list):
            message += f" (got {err['input']!r})"
        named = names.get(".".join(loc)) or names.get(loc[0] if loc else "")
        if named:
            lines.append(f"{named}: {message}")
        else:
            lines.append(f"{where}: {'.'.join(loc) or '(top level)'}: {message}")
    return lines


def validate_model(data: Any, model: type[M], where: str, names: Mapping[str, str] | None = None) -> M:
    """`model` validated from `data`, or a ConfigError of one line per bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(error_lines(exc, where, names))) from None


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    """Read `path` and validate it as `model`; ConfigError names the file and each bad field."""
    return validate_model(read_yaml_mapping(path), model, str(path))


def with_changes(model: M, **changes: Any) -> M:
    """A copy of `model` with `changes`, validated again (``model_copy(update=...)`` would skip validation)."""
    return type(model).model_validate(model.model_dump() | changes)
