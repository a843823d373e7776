"""A benchmark from any labelled record file (JSONL, CSV, Parquet or a saved Hugging Face dataset).

The file uses the ``gavel judge`` record schema (see ``gavel.judge.records``); every row must carry a gold
``label``. The task type comes from each row's ``task`` field. As in ``gavel judge``, a bad row (invalid,
unlabelled, a repeated id) is a :class:`RowError` that the report counts and lists; the other rows are used.
"""

from __future__ import annotations

from pathlib import Path

from gavel.bench.registry import BenchData
from gavel.judge.records import JudgeRecord, RowError, read_rows


def load_labelled_file(path: str | Path) -> tuple[str, BenchData]:
    """(file stem, records and row errors) of a labelled record file.

    Raises FileNotFoundError when the file does not exist and ValueError when no row is usable.
    """
    source = str(path)
    records: list[JudgeRecord] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for loaded in read_rows(source):
        record = loaded.record
        if loaded.error is not None:
            errors.append(loaded.error)
        elif record is None:
            continue
        elif record.label is None:
            errors.append(RowError(source=source, row=loaded.row, id=record.id, field="label",
                                   message="gold label is missing (a benchmark file needs one per row)"))
        elif record.id in seen:
            errors.append(RowError(source=source, row=loaded.row, id=record.id, field="id",
                                   message=f"duplicate id {record.id!r}"))
        else:
            seen.add(record.id)
            records.append(record)
    if not records:
        shown = "".join(f"\n  {error}" for error in errors[:10])
        raise ValueError(f"{source}: no usable rows{shown}")
    return Path(source.rstrip("/")).stem, BenchData(records=records, errors=errors)
