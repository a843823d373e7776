"""A benchmark from any labelled record file (JSONL, CSV, Parquet or a saved Hugging Face dataset).

The file uses the ``gavel judge`` record schema (see ``gavel.judge.records``); every row must carry a gold
``label``. The task type comes from each row's ``task`` field.
"""

from __future__ import annotations

from pathlib import Path

from gavel.judge.records import JudgeRecord, RowError, read_rows


def load_labelled_file(path: str | Path) -> tuple[str, list[JudgeRecord]]:
    """(file stem, records) of a labelled record file.

    Raises ValueError listing every bad row (file, row number, field, reason) when any row is invalid or
    has no label, and FileNotFoundError when the file does not exist.
    """
    source = str(path)
    records: list[JudgeRecord] = []
    errors: list[RowError] = []
    for loaded in read_rows(source):
        if loaded.error is not None:
            errors.append(loaded.error)
        elif loaded.record is not None and loaded.record.label is None:
            errors.append(RowError(source=source, row=loaded.row, id=loaded.record.id, field="label",
                                   message="gold label is missing (a benchmark file needs one per row)"))
        elif loaded.record is not None:
            records.append(loaded.record)
    if errors:
        lines = "\n".join(f"  {error}" for error in errors)
        raise ValueError(f"{source}: {len(errors)} invalid row(s):\n{lines}")
    if not records:
        raise ValueError(f"{source}: no rows")
    _check_unique_ids(source, records)
    return Path(source.rstrip("/")).stem, records


def _check_unique_ids(source: str, records: list[JudgeRecord]) -> None:
    seen: set[str] = set()
    duplicates = [r.id for r in records if r.id in seen or seen.add(r.id)]
    if duplicates:
        shown = ", ".join(sorted(set(duplicates))[:10])
        raise ValueError(f"{source}: field 'id': duplicate ids: {shown}")
