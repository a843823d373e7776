"""Helpers shared by the benchmark loaders: file reading, hub fallback, prompt splitting, placement."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from gavel.data import LoadContext
from gavel.judge.records import LoadedRow, RowError, validate_row

#: Stands in for an empty response, which the record schema rejects; judging "nothing" stays possible.
EMPTY_RESPONSE = "(empty response)"


# --- where local copies live ----------------------------------------------------------------------


def local_candidates(ctx: LoadContext, folder: str, stem: str) -> list[Path]:
    """The places a local copy may live: ``<root>/<folder>/<stem>.jsonl|.json|.parquet`` or ``<stem>/``."""
    if ctx.data_root is None:
        return []
    base = ctx.data_root / folder
    return [base / f"{stem}.jsonl", base / f"{stem}.json", base / f"{stem}.parquet", base / stem]


# --- building records ------------------------------------------------------------------------------


def build_records(rows: Iterable[dict[str, Any] | RowError], source: str) -> list[LoadedRow]:
    """Validate prepared rows (numbered from 1 in ``source``): each is a record or the error that stopped it."""
    return [LoadedRow(row=raw.row, error=raw) if isinstance(raw, RowError) else validate_row(raw, source, number)
            for number, raw in enumerate(rows, start=1)]


def convert_rows(raw_rows: Iterable[Any], convert: Callable[[int, Any], dict[str, Any] | None],
                 source: str) -> list[dict[str, Any] | RowError]:
    """``convert(index, raw)`` for each source row: a row dict, None to leave it out, or (when the source row
    lacks a column or holds a value the conversion cannot read) a RowError naming the 1-based row."""
    out: list[dict[str, Any] | RowError] = []
    for index, raw in enumerate(raw_rows):
        try:
            row = convert(index, raw)
        except (KeyError, ValueError, TypeError, AttributeError, StopIteration) as exc:
            reason = f"missing column {exc.args[0]!r}" if isinstance(exc, KeyError) else f"cannot read it: {exc}"
            out.append(RowError(source=source, row=index + 1, message=reason))
            continue
        if row is not None:
            out.append(row)
    return out


def text_or_empty(value: Any) -> str:
    """The text, or a visible placeholder when it is missing or blank."""
    text = "" if value is None else str(value)
    return text if text.strip() else EMPTY_RESPONSE


def mean_score(scores: Sequence[float]) -> float:
    """The mean of a non-empty list of scores."""
    return sum(scores) / len(scores)


def round_score(value: float) -> int:
    """Round half up (Python's round() rounds half to even) and clip to 1..5."""
    return min(5, max(1, math.floor(value + 0.5)))


def slug(text: str) -> str:
    """A lower-case identifier fragment: ``"length bias"`` -> ``"length-bias"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --- Prometheus prompts ----------------------------------------------------------------------------

_HEADERS = ("Task Description", "The instruction to evaluate", "Response to evaluate",
            "Reference Answer (Score 5)", "Score Rubrics", "Feedback")
_HEADER = re.compile(r"^###(" + "|".join(re.escape(h) for h in _HEADERS) + r"):[ \t]*$", re.MULTILINE)
_LEVEL = re.compile(r"^\s*Score\s+([1-5])\s*:\s*(.*)$")


def split_prometheus_prompt(prompt: str) -> dict[str, str]:
    """Map each known ``###Header:`` line of a Prometheus prompt to the stripped text under it."""
    matches = list(_HEADER.finditer(prompt))
    sections = {}
    for current, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(prompt)
        sections[current.group(1).strip()] = prompt[current.end():end].strip()
    return sections


def parse_prometheus_rubric(text: str) -> dict[str, str]:
    """``[criterion]`` followed by ``Score 1: ...`` .. ``Score 5: ...`` lines, as a rubric dict."""
    rubric: dict[str, str] = {}
    objective_lines = []
    current: str | None = None
    for line in text.splitlines():
        level = _LEVEL.match(line)
        if level:
            current = f"score{level.group(1)}"
            rubric[current] = level.group(2).strip()
        elif current is not None and line.strip():
            rubric[current] += "\n" + line.strip()
        elif current is None:
            objective_lines.append(line)
    objective = "\n".join(objective_lines).strip()
    if objective.startswith("[") and objective.endswith("]"):
        objective = objective[1:-1].strip()
    rubric["objective"] = objective
    return rubric


def prometheus_parts(prompt: str) -> dict[str, Any]:
    """Instruction, response, reference and rubric of a Prometheus absolute-grading prompt."""
    sections = split_prometheus_prompt(prompt)
    needed = ("The instruction to evaluate", "Response to evaluate", "Score Rubrics")
    missing = [h for h in needed if h not in sections]
    if missing:
        raise ValueError(f"prompt lacks the section(s) {missing}")
    return {
        "instruction": sections["The instruction to evaluate"],
        "response": text_or_empty(sections["Response to evaluate"]),
        "reference": sections.get("Reference Answer (Score 5)"),
        "rubric": parse_prometheus_rubric(sections["Score Rubrics"]),
    }
