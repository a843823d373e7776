"""Shepherd: human critiques of model answers, with the annotators' 1-5 correctness-and-relevance rating.

The rating comes from the raw annotation file (job "Is the candidate output correct and relevant to the
context?", levels 1_COMPLETELY_IRRELEVANT .. 5_ANSWERS_THE_QUESTION); the critique is the human ``feedback``.
"""

from __future__ import annotations

from collections.abc import Iterator

from gavel.curate.sources import Yielded, make_item, register, row_error
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import Task

RUBRIC = {
    "objective": "Is the answer correct and relevant to the question?",
    "score1": "The answer is wrong or unrelated to the question.",
    "score2": "The answer is mostly wrong or barely relevant.",
    "score3": "The answer is partly correct or only somewhat relevant.",
    "score4": "The answer is mostly correct and relevant, with small flaws.",
    "score5": "The answer is correct and fully answers the question.",
}
_JOB = "CLASSIFICATION_JOB_1"


def _rating(raw: dict) -> int | None:
    try:
        name = raw["latestLabel"]["jsonResponse"][_JOB]["categories"][0]["name"]
        return int(name.split("_", 1)[0])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


@register("shepherd", (Task.absolute,), "Shepherd: human critiques with a 1-5 correctness rating",
          hub_id="reciprocate/shepherd (community mirror; local copy preferred)", critique_author="human")
def shepherd(ctx: LoadContext) -> Iterator[Yielded]:
    folder = ctx.path("shepherd", "data")
    raw_path = folder / "human_data_raw.jsonl"
    raw = {str(row["id"]): row for _, row, err in iter_jsonl(raw_path) if not err and "id" in row}
    path = folder / "human_data_for_model.jsonl"
    for number, row, error in iter_jsonl(path):
        if error:
            yield row_error("shepherd", path, number, error)
            continue
        key = str(row.get("id"))
        label = _rating(raw.get(key, {}))
        if label is None or not 1 <= label <= 5:
            yield row_error("shepherd", path, number, f"no 1-5 rating for id {key} in {raw_path.name}", field="id",
                            id=key)
            continue
        reference = raw[key].get("metadata", {}).get("output_correct")
        yield make_item("shepherd", path, number, critique=row.get("feedback"), author="human",
                        id=f"shepherd-{key}", task="absolute", instruction=row.get("question") or "",
                        response=row.get("answer") or "", reference=reference, rubric=RUBRIC, label=label,
                        shepherd_id=key, dataset=row.get("dataset"))
