"""MR-GSM8K: wrong GSM8K solutions with the human-marked first error step and reason (all labels No)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gavel.curate.sources import SourceRow, Yielded, make_item, parse_row, register, row_error
from gavel.data import LoadContext, place_pair
from gavel.io import read_json
from gavel.judge.records import RowError, Task
from gavel.labels import swap_label

RUBRIC_PAIR = "Which solution to the math problem is correct in every step?"
RUBRIC = {
    "objective": "Is every step of the solution to the math problem correct?",
    "yes": "Every step is correct and the final answer follows.",
    "no": "At least one step contains an error.",
}


class MrGsm8kRow(SourceRow):
    uuid: str | int | None = None
    question: str | None = None
    model_output_steps: list[str | int | float] | None = None
    model_output_solution_first_error_step: str | int | None = None
    model_output_solution_first_error_reason: str | None = None
    ground_truth_solution: str | None = None


@register("mr-gsm8k", (Task.classification,), "MR-GSM8K: wrong math solutions with human error reasons",
          hub_id="Randolphzeng/Mr-GSM8K", critique_author="human")
def mr_gsm8k(ctx: LoadContext) -> Iterator[Yielded]:
    folder = ctx.path("mr-gsm8k-error-reasons", "eval_results", "gpt4-grading")
    seen: set[str] = set()
    for path in sorted(folder.glob("*_eval_results.json")):
        try:
            rows = read_json(path)
        except ValueError as exc:
            yield row_error("mr-gsm8k", path, 0, f"invalid JSON: {exc}")
            continue
        if not isinstance(rows, list):
            yield row_error("mr-gsm8k", path, 0, "expected a JSON array of rows")
            continue
        for number, raw in enumerate(rows, start=1):
            row = parse_row(MrGsm8kRow, "mr-gsm8k", path, number, raw)
            if isinstance(row, RowError):
                yield row
                continue
            uuid = str(row.uuid or "")
            if not uuid or uuid in seen:  # the files overlap: each solution once
                if not uuid:
                    yield row_error("mr-gsm8k", path, number, "row has no uuid", field="uuid")
                continue
            seen.add(uuid)
            steps = row.model_output_steps
            if not steps:
                yield row_error("mr-gsm8k", path, number, "no solution steps", field="model_output_steps", id=uuid)
                continue
            step, reason = row.model_output_solution_first_error_step, row.model_output_solution_first_error_reason
            critique = f"The first error is in step {step}. {reason}" if reason else None
            yield make_item("mr-gsm8k", path, number, critique=critique, author="human", id=f"mr-gsm8k-{uuid}",
                            task="classification", instruction=row.question or "",
                            response="\n".join(str(s) for s in steps), rubric=RUBRIC, label="No",
                            reference_solution=_solution(row.ground_truth_solution or ""))


@register("mr-gsm8k-pairs", (Task.pairwise,), "MR-GSM8K: the reference solution against a wrong solution with a "
          "human error reason (the reference wins)", hub_id="Randolphzeng/Mr-GSM8K", critique_author="human")
def mr_gsm8k_pairs(ctx: LoadContext) -> Iterator[Yielded]:
    for entry in mr_gsm8k(ctx):
        if not hasattr(entry, "record"):
            yield entry
            continue
        extra = entry.record.extra_fields()
        reference = extra.get("reference_solution")
        if not reference:
            yield row_error("mr-gsm8k-pairs", entry.file, entry.row, "no reference solution",
                            field="ground_truth_solution", id=entry.id)
            continue
        response_a, response_b, label = place_pair(reference, entry.record.response, entry.id, ctx.seed)
        critique = (f"Response {swap_label(label)} goes wrong: {entry.critique} Response {label} solves the problem "
                    "correctly." if entry.critique else None)
        yield make_item("mr-gsm8k-pairs", entry.file, entry.row, critique=critique, author="human",
                        id=entry.id + ":pair", task="pairwise", instruction=entry.record.instruction,
                        response_a=response_a, response_b=response_b, rubric=RUBRIC_PAIR, label=label)


def _solution(text: str) -> str:
    """GSM8K reference solutions: drop the <<calculator>> annotations, keep the '#### answer' line."""
    return re.sub(r"<<[^>]*>>", "", text).strip()
