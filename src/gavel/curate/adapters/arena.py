"""Arena-Bench v1 GPT-4 single-answer judgments: critique + 1-10 rating against a GPT-4 reference.

Absolute items map the rating to 1-5 with :func:`ten_to_five`. Pairwise items are derived honestly: two
judged answers to the same question whose mapped gold ratings differ by at least ``PAIR_GAP`` become one
pair (the higher-rated answer wins); no critique is trusted for them (the two single-answer critiques
do not compare), so the teacher writes both.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from gavel.curate.sources import SourceRow, Yielded, make_item, parse_row, register, row_error, ten_to_five
from gavel.data import LoadContext, place_pair
from gavel.io import iter_jsonl
from gavel.judge.records import RowError, Task

FOLDER = ("arena-bench-v1-gpt4-judgments", "data", "arena-bench-v1")
RUBRIC = ("Is the response correct and helpful for the user's question, judged against the reference answer "
          "(mistakes compared with the reference count against it)?")
PAIR_GAP = 2  # minimum difference of mapped 1-5 ratings for a derived pair
PAIRS_PER_QUESTION = 2
_BLOCK = re.compile(r"\[The Start of {}\]\n(.*?)\n\[The End of {}\]", re.DOTALL)
_RATING = re.compile(r"\s*Rating:\s*\[\[\s*\d+(?:\.\d+)?\s*\]\]\s*\.?\s*$")


def _block(text: str, name: str) -> str | None:
    match = re.search(_BLOCK.pattern.format(re.escape(name), re.escape(name)), text, re.DOTALL)
    return match.group(1).strip() if match else None


def _question(text: str) -> str | None:
    match = re.search(r"\[Question\]\n(.*?)\n\n\[The Start of", text, re.DOTALL)
    return match.group(1).strip() if match else None


def _judgments(ctx: LoadContext) -> Iterator[tuple[Path, int, dict | None, str | None]]:
    folder = ctx.path(*FOLDER, "model_judgment")
    for path in sorted(folder.glob("*.jsonl")):
        for number, row, error in iter_jsonl(path):
            yield path, number, row, error


class ArenaJudgment(SourceRow):
    user_prompt: str
    judgment: str | None = None
    score: float | int | str | None = None
    question_id: str | int
    model: str


def _absolute(name: str, path: Path, number: int, raw: dict) -> Yielded:
    row = parse_row(ArenaJudgment, name, path, number, raw)
    if isinstance(row, RowError):
        return row
    prompt = row.user_prompt
    question, reference = _question(prompt), _block(prompt, "Reference Answer")
    answer = _block(prompt, "Assistant's Answer")
    if question is None or answer is None:
        return row_error(name, path, number, "cannot find the question or the answer block", field="user_prompt")
    score = row.score
    try:
        label = ten_to_five(float(score))
    except (TypeError, ValueError):
        return row_error(name, path, number, f"rating {score!r} is not a number from 1 to 10", field="score")
    critique = _RATING.sub("", row.judgment or "").strip()
    return make_item(name, path, number, critique=critique, author="gpt-4",
                     id=f"{row.question_id}:{row.model}", task="absolute", instruction=question,
                     response=answer, reference=reference, rubric=RUBRIC, label=label,
                     question_id=row.question_id)


@register("arena-gpt4", (Task.absolute,), "Arena-Bench v1: GPT-4 critiques with 1-10 ratings (mapped to 1-5), "
          "reference-guided", critique_author="gpt-4")
def arena_absolute(ctx: LoadContext) -> Iterator[Yielded]:
    for path, number, row, error in _judgments(ctx):
        yield row_error("arena-gpt4", path, number, error) if error else _absolute("arena-gpt4", path, number, row)


@register("arena-gpt4-pairs", (Task.pairwise,), "Arena-Bench v1: pairs of answers to one question whose GPT-4 "
          "ratings differ by 2+ on the 1-5 scale")
def arena_pairs(ctx: LoadContext) -> Iterator[Yielded]:
    by_question: dict[str, list] = defaultdict(list)
    for path, number, row, error in _judgments(ctx):
        if error:
            yield row_error("arena-gpt4-pairs", path, number, error)
            continue
        item = _absolute("arena-gpt4-pairs", path, number, row)
        if not hasattr(item, "record"):
            yield item
            continue
        by_question[str(item.record.extra_fields().get("question_id"))].append(item)
    rng = random.Random(ctx.seed)
    for question_id in sorted(by_question):
        items = by_question[question_id]
        candidates = [(a, b) for i, a in enumerate(items) for b in items[i + 1:]
                      if abs(int(a.record.label) - int(b.record.label)) >= PAIR_GAP]
        rng.shuffle(candidates)
        for one, other in candidates[:PAIRS_PER_QUESTION]:
            better, worse = sorted((one, other), key=lambda item: int(item.record.label), reverse=True)
            a, b, label = place_pair(better, worse, f"{better.id}|{worse.id}", ctx.seed)
            pair_id = f"{a.id}|{b.id.split(':', 1)[1]}"
            yield make_item("arena-gpt4-pairs", a.file, a.row, id=pair_id, task="pairwise",
                            instruction=a.record.instruction,
                            response_a=a.record.response, response_b=b.record.response,
                            reference=a.record.reference, rubric=RUBRIC, label=label)
