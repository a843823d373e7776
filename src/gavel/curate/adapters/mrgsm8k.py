"""MR-GSM8K: wrong GSM8K solutions with the human-marked first error step and reason (all labels No)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

from gavel.curate.sources import Yielded, make_item, register, row_error
from gavel.data import LoadContext
from gavel.io import read_json
from gavel.judge.records import Task

RUBRIC_PAIR = "Which solution to the math problem is correct in every step?"
RUBRIC = {
    "objective": "Is every step of the solution to the math problem correct?",
    "yes": "Every step is correct and the final answer follows.",
    "no": "At least one step contains an error.",
}


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
        for number, row in enumerate(rows, start=1):
            uuid = str(row.get("uuid") or "") if isinstance(row, dict) else ""
            if not uuid or uuid in seen:  # the files overlap: each solution once
                if not uuid:
                    yield row_error("mr-gsm8k", path, number, "row has no uuid", field="uuid")
                continue
            seen.add(uuid)
            steps = row.get("model_output_steps")
            if not isinstance(steps, list) or not steps:
                yield row_error("mr-gsm8k", path, number, "no solution steps", field="model_output_steps", id=uuid)
                continue
            step, reason = row.get("model_output_solution_first_error_step"), row.get(
                "model_output_solution_first_error_reason")
            critique = f"The first error is in step {step}. {reason}" if reason else None
            yield make_item("mr-gsm8k", path, number, critique=critique, author="human", id=f"mr-gsm8k-{uuid}",
                            task="classification", instruction=row.get("question") or "",
                            response="\n".join(str(s) for s in steps), rubric=RUBRIC, label="No",
                            reference_solution=_solution(str(row.get("ground_truth_solution") or "")))


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
        wrong_first = zlib.crc32(entry.id.encode()) % 2 == 1
        label, wrong = ("B", "A") if wrong_first else ("A", "B")
        critique = (f"Response {wrong} goes wrong: {entry.critique} Response {label} solves the problem correctly."
                    if entry.critique else None)
        yield make_item("mr-gsm8k-pairs", entry.file, entry.row, critique=critique, author="human",
                        id=entry.id + ":pair", task="pairwise", instruction=entry.record.instruction,
                        response_a=entry.record.response if wrong_first else reference,
                        response_b=reference if wrong_first else entry.record.response,
                        rubric=RUBRIC_PAIR, label=label)


def _solution(text: str) -> str:
    """GSM8K reference solutions: drop the <<calculator>> annotations, keep the '#### answer' line."""
    return re.sub(r"<<[^>]*>>", "", text).strip()
