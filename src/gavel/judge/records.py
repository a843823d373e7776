"""The record schema shared by `gavel judge` and `gavel bench` (and, as it lands, curation).

One record is one item to judge. On disk it is one JSON object per line (or a CSV/Parquet row):

- ``id`` (str, optional): defaults to the 1-based row number.
- ``task``: ``absolute`` | ``classification`` | ``pairwise``.
- ``instruction`` (str): the user input being answered.
- ``response`` (absolute, classification) or ``response_a`` and ``response_b`` (pairwise).
- ``rubric`` (optional): a string objective, or ``{"objective": ..., "score1".."score5": ...}`` (absolute)
  or ``{"objective": ..., "yes": ..., "no": ...}`` (classification). A default per task when absent.
- ``reference`` (optional str): a reference answer.
- ``label`` (optional gold): 1-5, ``Yes``/``No`` or ``A``/``B``/``tie``.

Any other field passes through to the output unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from gavel.io import hub_offline, iter_jsonl
from gavel.labels import LABELS, Task, normalise_label, swap_label

log = logging.getLogger(__name__)

#: What one level of a rubric means (absent: a generic description is filled in).
Level = str | None


class Rubric(BaseModel):
    """An evaluation criterion; the per-level descriptions used depend on the task."""

    model_config = ConfigDict(extra="forbid")

    objective: str
    score1: Level = None
    score2: Level = None
    score3: Level = None
    score4: Level = None
    score5: Level = None
    yes: Level = None
    no: Level = None


DEFAULT_RUBRICS: dict[Task, Rubric] = {
    Task.absolute: Rubric(
        objective="How well does the response carry out the instruction: is it helpful, correct, complete "
        "and clearly written?",
        score1="The response ignores or misreads the instruction, or is mostly wrong or unusable.",
        score2="The response attempts the instruction but has major errors or omissions.",
        score3="The response carries out the main part of the instruction with some errors or gaps.",
        score4="The response carries out the instruction well, with only minor issues.",
        score5="The response carries out the instruction fully, correctly and clearly.",
    ),
    Task.classification: Rubric(
        objective="Does the response carry out the instruction correctly and completely?",
        yes="The response carries out the instruction correctly and completely.",
        no="The response misses part of the instruction or contains an error.",
    ),
    Task.pairwise: Rubric(
        objective="Which response carries out the instruction better: more helpful, correct and harmless, "
        "doing exactly what was asked?",
    ),
}

_GENERIC_LEVELS = {
    "score1": "The response does not meet the criterion at all.",
    "score2": "The response meets the criterion only in small part.",
    "score3": "The response partly meets the criterion.",
    "score4": "The response mostly meets the criterion.",
    "score5": "The response fully meets the criterion.",
    "yes": "The response meets the criterion.",
    "no": "The response does not meet the criterion.",
}


#: The fields a judge sees; the label and passthrough fields are not judged.
JUDGED_FIELDS = frozenset({"task", "instruction", "response", "response_a", "response_b", "rubric", "reference"})


class JudgeRecord(BaseModel):
    """One item to judge, validated."""

    model_config = ConfigDict(extra="allow")

    id: str
    task: Task
    instruction: str
    response: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    rubric: Rubric | None = None
    reference: str | None = None
    label: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("rubric", mode="before")
    @classmethod
    def _rubric_from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"objective": value}
        return value

    @field_validator("label", mode="before")
    @classmethod
    def _label_to_str(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int | float):  # 4.5 goes on to "not a score from 1 to 5"
            return str(value)
        return value

    @field_validator("reference", mode="before")
    @classmethod
    def _empty_reference_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _check_task_fields(self) -> JudgeRecord:
        if not self.instruction.strip():
            raise ValueError("field 'instruction': must not be empty")
        needed = ("response_a", "response_b") if self.task is Task.pairwise else ("response",)
        for name in needed:  # an empty response is judged (a model that returned nothing); a missing one is not
            if getattr(self, name) is None:
                raise ValueError(f"field '{name}': required for task '{self.task.value}'")
        if self.label is not None:
            self.label = normalise_label(self.task, self.label)
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS[self.task]

    def resolved_rubric(self) -> Rubric:
        """The record's rubric with every description the task needs filled in."""
        default = DEFAULT_RUBRICS[self.task]
        if self.rubric is None:
            return default
        levels = ("yes", "no") if self.task is Task.classification else tuple(f"score{i}" for i in range(1, 6))
        filled = {k: getattr(self.rubric, k) or _GENERIC_LEVELS[k] for k in levels}
        return self.rubric.model_copy(update=filled)

    @property
    def content_hash(self) -> str:
        """SHA-256 (16 hex digits) of what the judge sees: a row edited under the same id gets another hash."""
        content = json.dumps(self.model_dump(mode="json", include=JUDGED_FIELDS), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]

    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def swapped(self) -> JudgeRecord:
        """The pairwise record with the two responses exchanged (the gold label follows)."""
        return self.model_copy(update={"response_a": self.response_b, "response_b": self.response_a,
                                       "label": swap_label(self.label)})


class RowError(BaseModel):
    """A row that could not be judged, with where it came from and why."""

    source: str
    row: int
    id: str | None = None
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}, row {self.row}"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


class LoadedRow(BaseModel):
    """A row read from an input file: a valid record or the error that stopped it."""

    row: int
    record: JudgeRecord | None = None
    error: RowError | None = None


def first_error(error: ValidationError) -> tuple[str | None, str]:
    """The field (dotted path) and message of the first error pydantic found."""
    detail = error.errors()[0]
    loc = [str(p) for p in detail.get("loc", ()) if not isinstance(p, int)]
    message = detail.get("msg", str(error)).removeprefix("Value error, ")
    field = ".".join(loc) if loc else None
    if field is None and message.startswith("field '"):
        field = message.split("'")[1]
        message = message.split(": ", 1)[-1]
    if detail.get("type") == "missing":
        message = "required field is missing"
    return field, message


def validate_row(raw: Any, source: str, row: int) -> LoadedRow:
    """Validate one raw row; never raises."""
    if not isinstance(raw, dict):
        return LoadedRow(row=row, error=RowError(source=source, row=row, message="row is not a JSON object"))
    data = {k: v for k, v in raw.items() if not _is_missing(v)}
    data.setdefault("id", str(row))
    try:
        return LoadedRow(row=row, record=JudgeRecord.model_validate(data))
    except ValidationError as exc:
        field, message = first_error(exc)
        if field == "task" and "task" in data:
            message = f"unknown task type {data['task']!r} (expected absolute, classification or pairwise)"
        error = RowError(source=source, row=row, id=str(data.get("id")), field=field, message=message)
        return LoadedRow(row=row, error=error)


def _is_missing(value: Any) -> bool:
    """CSV and Parquet give NaN/None for empty cells; treat those as absent fields."""
    return value is None or (isinstance(value, float) and value != value)


class _BadRow:
    """A row that could not even be decoded, with the field at fault where there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Rows of a JSONL file (gavel.io's reader): a bad line is a row error, the others carry on."""
    for number, row, error in iter_jsonl(path):
        yield number, (_BadRow(error) if error is not None else row)


def _read_table(path: Path) -> Iterator[tuple[int, Any]]:
    import pandas as pd

    if path.suffix == ".csv":  # undecodable bytes become lone surrogates, found per row below
        try:
            frame = pd.read_csv(path, dtype=object, keep_default_na=False, encoding="utf-8-sig",
                                encoding_errors="surrogateescape")
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path}: holds no records (an empty CSV file, not even a header)") from None
    else:
        frame = pd.read_parquet(path)
    for number, row in enumerate(frame.to_dict(orient="records"), start=1):
        yield number, _decode_nested(row)


def _decode_nested(row: dict[str, Any]) -> dict[str, Any] | _BadRow:
    """CSV cells hold strings: decode a JSON rubric object and drop empty cells (an empty response is kept)."""
    out = {}
    wanted = ("response_a", "response_b") if row.get("task") == Task.pairwise.value else ("response",)
    for key, value in row.items():
        if isinstance(value, str) and _has_surrogates(value):
            return _BadRow("not valid UTF-8", field=str(key))
        if isinstance(value, str) and value == "" and key not in wanted:  # the task's responses may be empty
            continue
        if key == "rubric" and isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                return _BadRow(f"starts with '{{' but is not a JSON object (column {exc.colno}: {exc.msg})",
                               field="rubric")
        out[key] = value
    return out


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def _read_hf(spec: str) -> Iterator[tuple[int, Any]]:
    """``hf:NAME[:SPLIT]`` from the hub, or a folder written by ``Dataset.save_to_disk``."""
    import datasets

    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition(":")
        if hub_offline():  # spares the minute of retries datasets makes before it gives up
            raise ValueError(f"{spec}: the hub cannot be reached (or HF_HUB_OFFLINE is set); give a folder saved "
                             "with Dataset.save_to_disk, or a JSONL, CSV or Parquet file")
        dataset = datasets.load_dataset(name, split=split or "test")
    else:
        dataset = datasets.load_from_disk(spec)
        if isinstance(dataset, datasets.DatasetDict):
            split = "test" if "test" in dataset else next(iter(dataset))
            log.warning("%s holds the splits %s: judging %r", spec, ", ".join(dataset), split)
            dataset = dataset[split]
    yield from enumerate(dataset, start=1)


def read_rows(source: str | Path) -> Iterator[LoadedRow]:
    """Read and validate every row of a JSONL/CSV/Parquet file or a Hugging Face dataset."""
    text = str(source)
    path = Path(text)
    saved_dataset = (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
    if text.startswith("hf:") or saved_dataset:
        raw_rows = _read_hf(text)
    elif not path.exists():
        raise FileNotFoundError(f"{text}: no such file")
    elif path.is_dir():
        raise ValueError(f"{text} is a folder but not a dataset saved by `datasets` (no dataset_info.json or "
                         "dataset_dict.json); give a .jsonl, .csv or .parquet file")
    elif path.suffix in (".csv", ".parquet"):
        raw_rows = _read_table(path)
    else:
        raw_rows = _read_jsonl(path)
    for number, raw in raw_rows:
        if isinstance(raw, _BadRow):
            yield LoadedRow(row=number, error=RowError(source=text, row=number, field=raw.field, message=raw.message))
        else:
            yield validate_row(raw, text, number)


def record_to_dict(record: JudgeRecord) -> dict[str, Any]:
    """The record as it appears in output files (rubric back to plain JSON, absent fields dropped)."""
    return record.model_dump(mode="json", exclude_none=True)


__all__ = [
    "DEFAULT_RUBRICS",
    "LABELS",
    "JudgeRecord",
    "LoadedRow",
    "RowError",
    "Rubric",
    "Task",
    "normalise_label",
    "read_rows",
    "record_to_dict",
    "validate_row",
]

