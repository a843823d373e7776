"""PRMBench test_p2 slice: math solutions with GPT-4o-injected step errors and the reason (label No), and the
original correct solutions (label Yes, no critique; each original once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gavel.curate.sources import SourceRow, Yielded, make_item, parse_row, register, row_error
from gavel.data import LoadContext, place_pair
from gavel.io import iter_jsonl
from gavel.judge.records import RowError, Task
from gavel.labels import swap_label

RUBRIC = {
    "objective": "Is every step of the solution to the math problem correct and necessary?",
    "yes": "Every step is correct and the reasoning is sound.",
    "no": "At least one step is wrong, unjustified or contradicts another.",
}


RUBRIC_PAIR = "Which solution to the math problem is correct, with every step sound and necessary?"


class PRMBenchRow(SourceRow):
    idx: str | int | None = None
    classification: str | None = None
    question: str | None = None
    original_question: str | None = None
    modified_question: str | None = None
    original_process: list[str] | None = None
    modified_process: list[str] | None = None
    error_steps: Any = None
    reason: str | None = None


def _steps(value: list[str] | None) -> str | None:
    if value:
        return "\n".join(f"Step {i}: {s}" for i, s in enumerate(value, start=1))
    return None


def _rows(ctx: LoadContext, name: str) -> Iterator[tuple[Path, int, PRMBenchRow | RowError]]:
    folder = ctx.path("prmbench-step-errors", "mr_eval", "tasks", "prmtest_classified", "data")
    for path in sorted(folder.glob("*.jsonl")):
        for number, raw, error in iter_jsonl(path):
            row = row_error(name, path, number, error) if error else parse_row(PRMBenchRow, name, path, number, raw)
            yield path, number, row


@register("prmbench", (Task.classification,), "PRMBench: math solutions with injected step errors (No) and "
          "their originals (Yes)", hub_id="hitsmy/PRMBench_Preview", critique_author="gpt-4o")
def prmbench(ctx: LoadContext) -> Iterator[Yielded]:
    originals: set[str] = set()
    for path, number, row in _rows(ctx, "prmbench"):
        if isinstance(row, RowError):
            yield row
            continue
        idx, kind = str(row.idx), str(row.classification)
        modified, original = _steps(row.modified_process), _steps(row.original_process)
        if modified is None:
            yield row_error("prmbench", path, number, "no modified solution steps", field="modified_process", id=idx)
            continue
        critique = f"Steps {row.error_steps} are wrong. {row.reason or ''}".strip()
        yield make_item("prmbench", path, number, critique=critique, author="gpt-4o", id=f"{idx}:{kind}",
                        task="classification", instruction=row.modified_question or row.question or "",
                        response=modified, rubric=RUBRIC, label="No", prm_idx=idx, classification=kind)
        if original is not None and idx not in originals:
            originals.add(idx)
            yield make_item("prmbench", path, number, id=f"{idx}:original", task="classification",
                            instruction=row.original_question or row.question or "", response=original,
                            rubric=RUBRIC, label="Yes", prm_idx=idx, classification="original")


@register("prmbench-pairs", (Task.pairwise,), "PRMBench: the original solution against its error-injected "
          "copy (the original wins)", hub_id="hitsmy/PRMBench_Preview", critique_author="gpt-4o")
def prmbench_pairs(ctx: LoadContext) -> Iterator[Yielded]:
    for path, number, row in _rows(ctx, "prmbench-pairs"):
        if isinstance(row, RowError):
            yield row
            continue
        idx, kind = str(row.idx), str(row.classification)
        modified, original = _steps(row.modified_process), _steps(row.original_process)
        question = row.original_question or row.question or ""
        if row.modified_question not in (None, question):
            continue  # the question itself was changed: the two solutions answer different problems
        if modified is None or original is None:
            yield row_error("prmbench-pairs", path, number, "a solution is missing", field="original_process", id=idx)
            continue
        response_a, response_b, label = place_pair(original, modified, f"{idx}:{kind}", ctx.seed)
        critique = (f"Response {swap_label(label)} goes wrong at steps {row.error_steps}: {row.reason or ''} "
                    f"Response {label} avoids this error.").strip()
        yield make_item("prmbench-pairs", path, number, critique=critique, author="gpt-4o",
                        id=f"{idx}:{kind}:pair", task="pairwise", instruction=question,
                        response_a=response_a, response_b=response_b, rubric=RUBRIC_PAIR, label=label,
                        prm_idx=idx, classification=kind)
