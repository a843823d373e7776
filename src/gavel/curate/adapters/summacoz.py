"""SummaCoz: summaries judged inconsistent with their document, with a human explanation (all labels No)."""

from __future__ import annotations

from collections.abc import Iterator

from gavel.curate.sources import SourceRow, Yielded, make_item, parse_row, register, row_error
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import RowError, Task

RUBRIC = {
    "objective": "Is the summary factually consistent with the document: is every claim in it supported?",
    "yes": "Every claim in the summary is supported by the document.",
    "no": "The summary contains a claim the document does not support or contradicts.",
}


class SummaCozRow(SourceRow):
    label: str | int | None = None
    document: str | None = None
    claim: str | None = None
    human_reason: str | None = None
    dataset: str | None = None


@register("summacoz", (Task.classification,), "SummaCoz: inconsistent summaries with human explanations",
          hub_id="nkwbtb/SummaCoz", critique_author="human")
def summacoz(ctx: LoadContext) -> Iterator[Yielded]:
    folder = ctx.path("summacoz-explanations", "benchmark", "gpt-4-1106-preview")
    for path in sorted(folder.glob("*.jsonl"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
        for number, raw, error in iter_jsonl(path):
            row = row_error("summacoz", path, number, error) if error else parse_row(SummaCozRow, "summacoz", path,
                                                                                      number, raw)
            if isinstance(row, RowError):
                yield row
                continue
            if str(row.label) != "0":
                yield row_error("summacoz", path, number, f"label {row.label!r}: expected 0", field="label")
                continue
            yield make_item("summacoz", path, number, critique=row.human_reason, author="human",
                            id=f"summacoz-{path.stem}", task="classification",
                            instruction="Summarize the following document.\n\n" + (row.document or ""),
                            response=row.claim or "", rubric=RUBRIC, label="No", dataset=row.dataset)
