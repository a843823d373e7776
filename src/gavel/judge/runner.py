"""Batch runs over files: resumable JSONL output, row errors kept apart, a summary at the end.

Output safety: each result is serialised completely and appended with a single write followed by a flush,
so a line is either whole or (after a hard crash mid-write) a torn tail, which the next run cuts off
before appending. Rows that failed (bad input, backend errors) go to ``<output>.errors.jsonl`` instead
of the output, so a re-run retries them; ids already in the output are skipped.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gavel.io import JsonlAppender, repair_jsonl
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, LoadedRow, RowError, read_rows
from gavel.judge.result import JudgeResult, Status, output_row


@dataclass
class RunSummary:
    output: Path
    judged: int = 0
    skipped: int = 0
    row_errors: list[RowError] = field(default_factory=list)
    results: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.row_errors)

    @property
    def judgments_per_s(self) -> float:
        return self.judged / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return (self.prompt_tokens + self.completion_tokens) / self.seconds if self.seconds else 0.0


def errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.jsonl") if output.suffix != ".jsonl" else \
        output.with_suffix(".errors.jsonl")


def run_records(
    judge: Judge,
    rows: Iterable[LoadedRow],
    output: Path,
    *,
    source: str = "input",
    on_result: Callable[[JudgeResult], None] | None = None,
) -> RunSummary:
    """Judge rows into `output`, resuming: ids already there are skipped, row errors logged apart."""
    summary = RunSummary(output=output)
    done = repair_jsonl(output)
    seen: set[str] = set()
    pending: deque[tuple[int, JudgeRecord]] = deque()  # yielded to the judge, result not yet back
    start = time.perf_counter()

    def records() -> Iterator[JudgeRecord]:
        for loaded in rows:
            if loaded.error is not None:
                summary.row_errors.append(loaded.error)
                continue
            record = loaded.record
            assert record is not None
            if record.id in seen:
                summary.row_errors.append(RowError(source=source, row=loaded.row, id=record.id, field="id",
                                                   message=f"duplicate id {record.id!r}"))
                continue
            seen.add(record.id)
            if record.id in done:
                summary.skipped += 1
                continue
            pending.append((loaded.row, record))
            yield record

    writer = JsonlAppender(output)
    try:
        for result in judge.judge_iter(records()):
            row, record = pending.popleft()
            if result.status is Status.error:
                field_name = _longest_field(record) if (result.error or "").startswith("input is") else None
                summary.row_errors.append(RowError(source=source, row=row, id=record.id, field=field_name,
                                                   message=result.error or "backend error"))
            else:
                writer.write(output_row(record, result))
                _count(summary, result)
            if on_result is not None:
                on_result(result)
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - start
    return summary


def _longest_field(record: JudgeRecord) -> str:
    names = ("instruction", "response", "response_a", "response_b", "reference")
    return max(names, key=lambda n: len(getattr(record, n) or ""))


def _count(summary: RunSummary, result: JudgeResult) -> None:
    summary.judged += 1
    summary.results[result.result or "-"] += 1
    summary.statuses[result.status.value] += 1
    summary.prompt_tokens += result.prompt_tokens
    summary.completion_tokens += result.completion_tokens


def write_errors(output: Path, errors: list[RowError]) -> Path | None:
    """Rewrite the error file for this run (removed when there are none)."""
    path = errors_path(output)
    if not errors:
        path.unlink(missing_ok=True)
        return None
    with path.open("w", encoding="utf-8") as handle:
        for error in errors:
            handle.write(error.model_dump_json() + "\n")
    return path


def run_file(judge: Judge, source: str | Path, output: Path, **kwargs) -> RunSummary:
    """Judge every row of a JSONL/CSV/Parquet file (or HF dataset) into `output`."""
    return run_records(judge, read_rows(source), output, source=str(source), **kwargs)
