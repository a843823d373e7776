"""Vicuna-80 GPT-4 (and GPT-3.5) pairwise reviews: two 1-10 scores and an explanation.

The higher score wins; equal scores are ties, which a pairwise A/B judge cannot be trained on (logged).
The reviews call the answers "Assistant 1/2"; they are rewritten to "Response A/B" as gavel's prompt shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gavel.curate.sources import Yielded, make_item, register, row_error
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import Task

_NAMES = {"1": "A", "2": "B"}
_ASSISTANT = re.compile(r"\b[Aa]ssistant ([12])\b")


def rename_assistants(text: str) -> str:
    return _ASSISTANT.sub(lambda m: f"Response {_NAMES[m.group(1)]}", text)


@register("vicuna80", (Task.pairwise,), "Vicuna-80 GPT-4 pairwise reviews (scores + explanation)",
          hub_id="lmsys/vicuna-80-reviews (historical; local copy)", critique_author="gpt-4")
def vicuna80(ctx: LoadContext) -> Iterator[Yielded]:
    table = ctx.path("vicuna80-gpt4-reviews", "fastchat", "eval", "table")
    questions = {str(r["question_id"]): r["text"] for _, r, e in iter_jsonl(table / "question.jsonl") if not e}
    answers = {str(r["answer_id"]): r["text"] for p in sorted((table / "answer").glob("*.jsonl"))
               for _, r, e in iter_jsonl(p) if not e}
    for path in sorted((table / "review").rglob("*.jsonl")):
        author = "gpt-3.5-turbo" if "gpt-3.5-turbo" in path.parent.name else "gpt-4"
        for number, row, error in iter_jsonl(path):
            if error:
                yield row_error("vicuna80", path, number, error)
                continue
            rid = str(row.get("review_id"))
            score = row.get("score")
            a, b = answers.get(str(row.get("answer1_id"))), answers.get(str(row.get("answer2_id")))
            question = questions.get(str(row.get("question_id")))
            if question is None or a is None or b is None:
                yield row_error("vicuna80", path, number, "question or answer id not found", field="answer1_id", id=rid)
                continue
            if not isinstance(score, list) or len(score) != 2 or score[0] == score[1]:
                yield row_error("vicuna80", path, number, f"scores {score!r}: no preference (tie or malformed)",
                                field="score", id=rid)
                continue
            explanation = (row.get("text") or "").split("\n", 1)[-1]
            yield make_item("vicuna80", path, number, critique=rename_assistants(explanation), author=author,
                            id=f"vicuna80-{rid}", task="pairwise", instruction=question, response_a=a, response_b=b,
                            label="A" if score[0] > score[1] else "B", question_id=str(row.get("question_id")))
