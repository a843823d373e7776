"""Curation sources: a typed registry of adapters that turn public judge data into items.

An adapter reads one public data set (a local copy, or its hub id when a hub is reachable) and yields,
per source row, either an :class:`Item` (a judge record with its gold verdict and, where the source has
one, a trusted critique) or a :class:`RowError` naming file, row and field. Sources use the same
:class:`~gavel.data.LoadContext` as benchmarks, rooted at the training-data folder (:mod:`gavel.data`), and
place pairs with :func:`gavel.data.place_pair`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gavel.data import LoadContext
from gavel.judge.records import JudgeRecord, RowError, Task, first_error, validate_row
from gavel.registry import Registry


class Item(BaseModel):
    """One judge record from a source, with its gold verdict and an optional trusted critique."""

    id: str
    source: str
    record: JudgeRecord
    critique: str | None = None  # trusted critique reaching record.label, if the source has one
    critique_author: str | None = None  # human, gpt-4, ...
    file: str = ""
    row: int = 0


Yielded = Item | RowError
Adapter = Callable[[LoadContext], Iterable[Yielded]]


@dataclass(frozen=True)
class Source:
    name: str
    tasks: tuple[Task, ...]
    adapter: Adapter
    description: str
    hub_id: str | None = None  # the public hub dataset the adapter also reads
    critique_author: str | None = None
    local: bool = True  # a local copy ships with the project's data folder

    def load(self, ctx: LoadContext) -> Iterator[Yielded]:
        yield from self.adapter(ctx)


def _ensure_loaded() -> None:
    from gavel.curate import adapters  # noqa: F401 - importing registers every source


SOURCES: Registry[Source] = Registry("source", _ensure_loaded)


def register(name: str, tasks: tuple[Task, ...], description: str, **kwargs) -> Callable[[Adapter], Adapter]:
    """Decorator: ``@register("shepherd", (Task.absolute,), "Shepherd human critiques")``."""

    def wrap(adapter: Adapter) -> Adapter:
        SOURCES.add(name, Source(name=name, tasks=tasks, adapter=adapter, description=description, **kwargs))
        return adapter

    return wrap


# -- helpers for adapters -------------------------------------------------------------------------------
class SourceRow(BaseModel):
    """The fields an adapter reads from one source row, with their types; other fields are ignored.

    Each adapter declares one; :func:`parse_row` turns a row whose types do not match into a RowError.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


R = TypeVar("R", bound=SourceRow)


def parse_row(model: type[R], source: str, file: Path | str, row: int, raw: Any) -> R | RowError:
    """`raw` validated as `model`, or a RowError naming file, row and the first bad field."""
    if not isinstance(raw, dict):
        return row_error(source, file, row, "row is not a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        field, message = first_error(exc)
        return row_error(source, file, row, message, field=field)


def make_item(source: str, file: Path | str, row: int, *, critique: str | None = None,
              author: str | None = None, **fields) -> Yielded:
    """Validate a record built from a source row; a bad row becomes a RowError, never an exception.

    Curation needs the gold verdict: a row without a usable label is a RowError, so it never leaves the load stage.
    """
    if fields.get("label") is None:
        return row_error(source, file, row, "no usable gold label", field="label",
                         id=None if fields.get("id") is None else str(fields["id"]))
    loaded = validate_row({k: v for k, v in fields.items() if v is not None}, f"{source}:{file}", row)
    if loaded.error is not None:
        return loaded.error
    record = loaded.record
    assert record is not None
    critique = critique.strip() if critique and critique.strip() else None
    return Item(id=record.id, source=source, record=record, critique=critique,
                critique_author=author if critique else None, file=str(file), row=row)


def row_error(source: str, file: Path | str, row: int, message: str, field: str | None = None,
              id: str | None = None) -> RowError:
    return RowError(source=f"{source}:{file}", row=row, id=id, field=field, message=message)


def ten_to_five(score: float) -> int:
    """Map a 1-10 rating to 1-5: ceil(score / 2), so 1-2 -> 1, 3-4 -> 2, 5-6 -> 3, 7-8 -> 4, 9-10 -> 5.

    Half points round up with it (4.5 -> 3). Raises ValueError outside 1-10.
    """
    if not 1 <= score <= 10:
        raise ValueError(f"rating {score} is outside 1-10")
    return max(1, min(5, math.ceil(score / 2)))
