"""SummaCoz: summaries judged inconsistent with their document, with a human explanation (all labels No)."""

from __future__ import annotations

from collections.abc import Iterator

from gavel.curate.sources import Yielded, make_item, register, row_error
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import Task

RUBRIC = {
    "objective": "Is the summary factually consistent with the document: is every claim in it supported?",
    "yes": "Every claim in the summary is supported by the document.",
    "no": "The summary contains a claim the document does not support or contradicts.",
}


@register("summacoz", (Task.classification,), "SummaCoz: inconsistent summaries with human explanations",
          hub_id="nkwbtb/SummaCoz", critique_author="human")
def summacoz(ctx: LoadContext) -> Iterator[Yielded]:
    folder = ctx.path("summacoz-explanations", "benchmark", "gpt-4-1106-preview")
    for path in sorted(folder.glob("*.jsonl"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
        for number, row, error in iter_jsonl(path):
            if error:
                yield row_error("summacoz", path, number, error)
                continue
            if str(row.get("label")) != "0":
                yield row_error("summacoz", path, number, f"label {row.get('label')!r}: expected 0", field="label")
                continue
            yield make_item("summacoz", path, number, critique=row.get("human_reason"), author="human",
                            id=f"summacoz-{path.stem}", task="classification",
                            instruction="Summarize the following document.\n\n" + (row.get("document") or ""),
                            response=row.get("claim") or "", rubric=RUBRIC, label="No", dataset=row.get("dataset"))
