"""Shepherd: human critiques of model answers, with the annotators' 1-5 correctness-and-relevance rating.

The rating comes from the raw annotation file (job "Is the candidate output correct and relevant to the
context?", levels 1_COMPLETELY_IRRELEVANT .. 5_ANSWERS_THE_QUESTION); the critique is the human ``feedback``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gavel.curate.sources import SourceRow, Yielded, make_item, parse_row, register, row_error
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import RowError, Task

RUBRIC = {
    "objective": "Is the answer correct and relevant to the question?",
    "score1": "The answer is wrong or unrelated to the question.",
    "score2": "The answer is mostly wrong or barely relevant.",
    "score3": "The answer is partly correct or only somewhat relevant.",
    "score4": "The answer is mostly correct and relevant, with small flaws.",
    "score5": "The answer is correct and fully answers the question.",
}
_JOB = "CLASSIFICATION_JOB_1"


class ShepherdRow(SourceRow):
    id: str | int
    question: str | None = None
    answer: str | None = None
    feedback: str | None = None
    dataset: str | None = None


class ShepherdMetadata(SourceRow):
    output_correct: str | None = None


class ShepherdAnnotation(SourceRow):
    """A row of the raw annotation file: the rating sits deep in ``latestLabel``, the reference in ``metadata``."""

    latestLabel: Any = None
    metadata: ShepherdMetadata = ShepherdMetadata()

    def rating(self) -> int | None:
        try:
            name = self.latestLabel["jsonResponse"][_JOB]["categories"][0]["name"]
            return int(name.split("_", 1)[0])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return None


@register("shepherd", (Task.absolute,), "Shepherd: human critiques with a 1-5 correctness rating",
          hub_id="reciprocate/shepherd (community mirror; local copy preferred)", critique_author="human")
def shepherd(ctx: LoadContext) -> Iterator[Yielded]:
    folder = ctx.path("shepherd", "data")
    raw_path = folder / "human_data_raw.jsonl"
    raw = {str(row["id"]): (number, row) for number, row, err in iter_jsonl(raw_path) if not err and "id" in row}
    path = folder / "human_data_for_model.jsonl"
    for number, data, error in iter_jsonl(path):
        row = row_error("shepherd", path, number, error) if error else parse_row(ShepherdRow, "shepherd", path,
                                                                                  number, data)
        if isinstance(row, RowError):
            yield row
            continue
        key = str(row.id)
        raw_number, raw_row = raw.get(key, (0, {}))
        annotation = parse_row(ShepherdAnnotation, "shepherd", raw_path, raw_number, raw_row)
        if isinstance(annotation, RowError):
            yield annotation.model_copy(update={"id": key})
            continue
        label = annotation.rating()
        if label is None or not 1 <= label <= 5:
            yield row_error("shepherd", path, number, f"no 1-5 rating for id {key} in {raw_path.name}", field="id",
                            id=key)
            continue
        yield make_item("shepherd", path, number, critique=row.feedback, author="human",
                        id=f"shepherd-{key}", task="absolute", instruction=row.question or "",
                        response=row.answer or "", reference=annotation.metadata.output_correct, rubric=RUBRIC,
                        label=label, shepherd_id=key, dataset=row.dataset)
