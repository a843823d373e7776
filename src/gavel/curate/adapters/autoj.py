"""Auto-J single-response training data: GPT-4 critiques with 1-10 ratings (mapped to 1-5)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gavel.curate.sources import SourceRow, Yielded, make_item, parse_row, register, row_error, ten_to_five
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import RowError, Task

RUBRIC = "How well does the response serve the user's query: is it helpful, accurate, complete and well written?"
_QUERY = re.compile(r"\[Query\]:\s*(.*?)\n\*\*\*\n\[Response\]:\s*(.*?)\n\*\*\*\n\[END DATA\]", re.DOTALL)
_RATING = re.compile(r"\s*Rating:\s*\[\[\s*\d+(?:\.\d+)?\s*\]\]\s*\.?\s*$")


class AutoJRow(SourceRow):
    usrmsg: str
    pred_score: float | int | str | None = None
    target_output: str | None = None
    scenario: str | None = None


@register("autoj", (Task.absolute,), "Auto-J single-response training data: GPT-4 critiques, 1-10 ratings "
          "(mapped to 1-5)", hub_id="GAIR/autoj-single (not public on the hub; local copy)", critique_author="gpt-4")
def autoj(ctx: LoadContext) -> Iterator[Yielded]:
    path = ctx.benchmarks().path("autoj-train-single", "single_traindata.jsonl")
    for number, raw, error in iter_jsonl(path):
        row = row_error("autoj", path, number, error) if error else parse_row(AutoJRow, "autoj", path, number, raw)
        if isinstance(row, RowError):
            yield row
            continue
        match = _QUERY.search(row.usrmsg)
        if match is None:
            yield row_error("autoj", path, number, "cannot find [Query] and [Response] in the judge input",
                            field="usrmsg")
            continue
        try:
            label = ten_to_five(float(row.pred_score))
        except (TypeError, ValueError):
            yield row_error("autoj", path, number, f"rating {row.pred_score!r} is not a number from 1 to 10",
                            field="pred_score")
            continue
        critique = _RATING.sub("", row.target_output or "").strip()
        yield make_item("autoj", path, number, critique=critique, author="gpt-4", id=f"autoj-{number}",
                        task="absolute", instruction=match.group(1).strip(), response=match.group(2).strip(),
                        rubric=RUBRIC, label=label, scenario=row.scenario)

