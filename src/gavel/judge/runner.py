"""Batch runs over files: resumable JSONL output, row errors kept apart, a summary at the end.

Output safety: each result is serialised completely and appended with a single write as soon as it is
back, so a line is either whole or (after a hard crash mid-write) a torn tail, which the next run cuts off
before appending. Rows that failed (bad input, backend errors) go to ``<output>.errors.jsonl`` instead
of the output, so a re-run retries them; ids already in the output are skipped (one result per id).

One writer at a time: the output is locked while a run writes it; a second run is refused, naming the
first. The run's settings (model and its identity by content, mode, template, both orders, critique length)
are stored beside the output in ``<output>.run.json``; a run with other settings is refused unless forced,
and a file that gavel did not write (no settings file, lines that are not results) is never repaired or
appended to. Each result keeps the hash of the item it judged (``input_hash``): an item edited under the
same id is judged again, its old result dropped. A run that writes no result leaves no output behind.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gavel import io
from gavel.backends.identity import ModelIdentity
from gavel.io import (
    JsonlAppender,
    OutputError,
    check_output_path,
    iter_jsonl,
    repair_jsonl_rows,
    write_text_atomic,
)
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, LoadedRow, RowError, read_rows
from gavel.judge.result import JudgeResult, Status, output_row
from gavel.layout import ERRORS_SUFFIX, SETTINGS_SUFFIX, sidecar


@dataclass
class RunSummary:
    output: Path
    judged: int = 0
    skipped: int = 0
    rejudged: int = 0  # items edited since their result was written, judged again
    row_errors: list[RowError] = field(default_factory=list)
    results: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return len(self.row_errors)

    @property
    def judgments_per_s(self) -> float:
        return self.judged / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return (self.prompt_tokens + self.completion_tokens) / self.seconds if self.seconds else 0.0


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; carries the summary of what was finished (all of it already on disk)."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__()
        self.summary = summary


def errors_path(output: Path) -> Path:
    return sidecar(output, ERRORS_SUFFIX)


def settings_path(output: Path) -> Path:
    """Where the settings of the run that wrote `output` are kept."""
    return sidecar(output, SETTINGS_SUFFIX)


def run_settings(judge: Judge, extra: dict | None = None) -> dict:
    """What makes results comparable: a resumed run must use the same."""
    settings = {"model": judge.model_name, "template": judge.templates.name} | judge.settings.run_identity()
    if judge.model_identity is not None:
        settings[IDENTITY] = judge.model_identity.model_dump(mode="json")
    return settings | (extra or {})


#: The run setting that holds the model's identity (gavel.backends.identity), compared by content.
IDENTITY = "model_identity"
#: The run setting that names the input judged: results of another input are not mixed in (ids would clash).
INPUT = "input"


def input_settings(source: str | Path) -> dict[str, str]:
    """The input's run setting: a local file or folder by its resolved path, a dataset (hf:NAME) by its name."""
    path = Path(source)
    return {INPUT: str(path.resolve()) if path.exists() else str(source)}


def read_results(output: Path) -> list[dict]:
    """The result lines of an output, one per id (the first one written), torn tail and junk left out."""
    rows, seen = [], set()
    for _, row, _error in iter_jsonl(output, complete_only=True) if output.exists() else []:
        if row is not None and "id" in row and str(row["id"]) not in seen:
            seen.add(str(row["id"]))
            rows.append(row)
    return rows


def check_output(output: Path, inputs: Iterable[str | Path] = ()) -> None:
    """Everything about `output` that can be checked before a model loads; OutputError (one line) if bad.

    The path can be written and is not an input; no other run holds it; an existing file is gavel's.
    """
    check_output_path(output, list(inputs))
    if output.is_file() and output.stat().st_size and not settings_path(output).exists():
        _legacy_settings(output)


class SettingsChanged(OutputError):
    """The output was written with other settings (`gavel judge` adds its --force to the advice)."""


def open_output(output: Path, settings: dict, *, force: bool = False, inputs: Iterable[str | Path] = (),
                current: dict[str, str] | None = None) -> tuple[JsonlAppender, set[str], int]:
    """Lock `output`, check it is gavel's and was written with `settings`, repair it; the writer, the done ids
    and how many results were dropped because their item changed (`current`: id -> content hash now).

    Raises OutputError (one line for the user) when it cannot or must not be written.
    """
    check_output_path(output, list(inputs))
    try:
        writer = JsonlAppender(output, lock=True)
    except OSError as exc:
        raise OutputError(f"output {output} cannot be written: {exc.strerror or exc}") from None
    try:
        _check_ours(output, settings, force)
        rows = repair_jsonl_rows(output)
        stale = _stale_ids(rows, current or {})
        if stale:
            writer.rewrite([row for row in rows if str(row.get("id")) not in stale])
        done = {str(row["id"]) for row in rows if "id" in row} - stale
        write_text_atomic(settings_path(output), json.dumps({"gavel_output": 1, "settings": settings}, indent=1))
    except BaseException:
        writer.close()
        raise
    return writer, done, len(stale)


def _stale_ids(rows: list[dict], current: dict[str, str]) -> set[str]:
    """Ids whose result was written for other content than the item now has (results without a hash stay)."""
    return {str(row["id"]) for row in rows if "id" in row and row.get("input_hash")
            and current.get(str(row["id"]), row["input_hash"]) != row["input_hash"]}


def _check_ours(output: Path, settings: dict, force: bool) -> None:
    """Refuse a non-empty output gavel did not write, or one written with other settings (unless forced)."""
    if output.stat().st_size == 0:
        return
    stored_file = settings_path(output)
    if stored_file.exists():
        try:
            stored = json.loads(stored_file.read_text(encoding="utf-8"))["settings"]
        except (OSError, ValueError, KeyError, TypeError):
            raise OutputError(f"{stored_file} is damaged; remove it to resume {output}") from None
    else:
        stored = _legacy_settings(output)
    by_content = IDENTITY in stored and IDENTITY in settings  # then the model's display name may differ
    changed = [change for key in settings if key in stored and not (by_content and key == "model")
               for change in _changes(key, stored[key], settings[key])]
    if changed and not force:
        raise SettingsChanged(f"{output} holds results from a run with other settings ({'; '.join(changed)}); "
                              "use another --output")


def _changes(key: str, then: object, now: object) -> list[str]:
    """How one setting changed ([] when it did not); the model identity by content, part by part."""
    if key == IDENTITY and then != now:
        try:
            return ModelIdentity.model_validate(now).changes(ModelIdentity.model_validate(then))
        except ValueError:
            pass
    return [] if then == now else [f"{key}: {then!r} then, {now!r} now"]


def _legacy_settings(output: Path) -> dict:
    """An output without a settings file: accepted only when every complete line is a gavel result."""
    rows = []
    for number, row, _error in iter_jsonl(output, complete_only=True):
        if not (row is not None and {"id", "status", "model", "mode", "template"} <= row.keys()):
            raise OutputError(f"{output} exists and is not a gavel output (line {number} is not a result); "
                              "choose another --output")
        rows.append(row)
    if not rows:
        raise OutputError(f"{output} exists and is not a gavel output; choose another --output")
    return {key: rows[0][key] for key in ("model", "mode")}  # a row names the task's template, not the set


def run_records(
    judge: Judge,
    rows: Iterable[LoadedRow],
    output: Path,
    *,
    source: str = "input",
    on_result: Callable[[JudgeResult], None] | None = None,
    settings: dict | None = None,
    force: bool = False,
) -> RunSummary:
    """Judge rows into `output`, resuming: ids already there are skipped, row errors logged apart.

    `settings` adds to the run settings stored with the output (`run_settings`); `force` resumes an output
    written with other settings. A result whose item has changed since (another content hash) is dropped
    and the item judged again. Raises OutputError when the output cannot or must not be written, and
    RunInterrupted (a KeyboardInterrupt) on Ctrl-C, after every finished row is on disk.
    """
    summary = RunSummary(output=output)
    rows = list(rows)
    current: dict[str, str] = {}
    for loaded in rows:
        if loaded.record is not None:
            current.setdefault(loaded.record.id, loaded.record.content_hash)
    created = not output.exists()
    writer, done, summary.rejudged = open_output(output, run_settings(judge, settings), force=force, current=current)
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
    except KeyboardInterrupt:
        summary.interrupted = True
        raise RunInterrupted(summary) from None
    finally:
        if created and output.stat().st_size == 0:  # nothing was judged: leave nothing behind
            output.unlink()
            settings_path(output).unlink(missing_ok=True)
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
    """Rewrite the error file of `output` for this run (removed when there are none)."""
    return io.write_errors(errors_path(output), errors)


def run_file(judge: Judge, source: str | Path, output: Path, **kwargs) -> RunSummary:
    """Judge every row of a JSONL/CSV/Parquet file (or HF dataset) into `output` (never the input itself)."""
    check_output(output, [source])
    kwargs["settings"] = input_settings(source) | (kwargs.get("settings") or {})
    return run_records(judge, read_rows(source), output, source=str(source), **kwargs)
