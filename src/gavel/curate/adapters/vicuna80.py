"""Vicuna-80 GPT-4 (and GPT-3.5) pairwise reviews: two 1-10 scores and an explanation.

The higher score wins; equal scores are ties, which a pairwise A/B judge cannot be trained on (logged).
The reviews call the answers "Assistant 1/2"; they are rewritten to "Response A/B" as gavel's prompt shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from gavel.curate.sources import SourceRow, Yielded, make_item, parse_row, register, row_error
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import RowError, Task

_NAMES = {"1": "A", "2": "B"}
_ASSISTANT = re.compile(r"\b[Aa]ssistant ([12])\b")


def rename_assistants(text: str) -> str:
    return _ASSISTANT.sub(lambda m: f"Response {_NAMES[m.group(1)]}", text)


class Question(SourceRow):
    question_id: str | int
    text: str


class Answer(SourceRow):
    answer_id: str | int
    text: str


class Review(SourceRow):
    review_id: str | int | None = None
    question_id: str | int | None = None
    answer1_id: str | int | None = None
    answer2_id: str | int | None = None
    score: list[float] | None = None
    text: str | None = None


def _table(model: type[Question] | type[Answer], key: str, paths: list[Path]) -> dict[str, str]:
    """id -> text of the valid rows (a bad one is missing, so the reviews naming it become row errors)."""
    rows = (parse_row(model, "vicuna80", p, n, r) for p in paths for n, r, e in iter_jsonl(p) if not e)
    return {str(getattr(r, key)): r.text for r in rows if not isinstance(r, RowError)}


@register("vicuna80", (Task.pairwise,), "Vicuna-80 GPT-4 pairwise reviews (scores + explanation)",
          hub_id="lmsys/vicuna-80-reviews (historical; local copy)", critique_author="gpt-4")
def vicuna80(ctx: LoadContext) -> Iterator[Yielded]:
    table = ctx.path("vicuna80-gpt4-reviews", "fastchat", "eval", "table")
    questions = _table(Question, "question_id", [table / "question.jsonl"])
    answers = _table(Answer, "answer_id", sorted((table / "answer").glob("*.jsonl")))
    for path in sorted((table / "review").rglob("*.jsonl")):
        author = "gpt-3.5-turbo" if "gpt-3.5-turbo" in path.parent.name else "gpt-4"
        for number, raw, error in iter_jsonl(path):
            row = row_error("vicuna80", path, number, error) if error else parse_row(Review, "vicuna80", path,
                                                                                      number, raw)
            if isinstance(row, RowError):
                yield row
                continue
            rid, score = str(row.review_id), row.score
            a, b = answers.get(str(row.answer1_id)), answers.get(str(row.answer2_id))
            question = questions.get(str(row.question_id))
            if question is None or a is None or b is None:
                yield row_error("vicuna80", path, number, "question or answer id not found", field="answer1_id", id=rid)
                continue
            if score is None or len(score) != 2 or score[0] == score[1]:
                yield row_error("vicuna80", path, number, f"scores {score!r}: no preference (tie or malformed)",
                                field="score", id=rid)
                continue
            explanation = (row.text or "").split("\n", 1)[-1]
            yield make_item("vicuna80", path, number, critique=rename_assistants(explanation), author=author,
                            id=f"vicuna80-{rid}", task="pairwise", instruction=question, response_a=a, response_b=b,
                            label="A" if score[0] > score[1] else "B", question_id=str(row.question_id))
