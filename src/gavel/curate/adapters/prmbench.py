"""PRMBench test_p2 slice: math solutions with GPT-4o-injected step errors and the reason (label No), and the
original correct solutions (label Yes, no critique; each original once)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from gavel.curate.sources import Yielded, make_item, register, row_error
from gavel.data import LoadContext
from gavel.io import iter_jsonl
from gavel.judge.records import Task

RUBRIC = {
    "objective": "Is every step of the solution to the math problem correct and necessary?",
    "yes": "Every step is correct and the reasoning is sound.",
    "no": "At least one step is wrong, unjustified or contradicts another.",
}


RUBRIC_PAIR = "Which solution to the math problem is correct, with every step sound and necessary?"


def _steps(value) -> str | None:
    if isinstance(value, list) and value:
        return "\n".join(f"Step {i}: {s}" for i, s in enumerate(value, start=1))
    return None


@register("prmbench", (Task.classification,), "PRMBench: math solutions with injected step errors (No) and "
          "their originals (Yes)", hub_id="hitsmy/PRMBench_Preview", critique_author="gpt-4o")
def prmbench(ctx: LoadContext) -> Iterator[Yielded]:
    folder = ctx.path("prmbench-step-errors", "mr_eval", "tasks", "prmtest_classified", "data")
    originals: set[str] = set()
    for path in sorted(folder.glob("*.jsonl")):
        for number, row, error in iter_jsonl(path):
            if error:
                yield row_error("prmbench", path, number, error)
                continue
            idx, kind = str(row.get("idx")), str(row.get("classification"))
            modified, original = _steps(row.get("modified_process")), _steps(row.get("original_process"))
            if modified is None:
                yield row_error("prmbench", path, number, "no modified solution steps", field="modified_process",
                                id=idx)
                continue
            critique = f"Steps {row.get('error_steps')} are wrong. {row.get('reason') or ''}".strip()
            yield make_item("prmbench", path, number, critique=critique, author="gpt-4o", id=f"{idx}:{kind}",
                            task="classification", instruction=row.get("modified_question") or row.get("question")
                            or "", response=modified, rubric=RUBRIC, label="No", prm_idx=idx, classification=kind)
            if original is not None and idx not in originals:
                originals.add(idx)
                yield make_item("prmbench", path, number, id=f"{idx}:original", task="classification",
                                instruction=row.get("original_question") or row.get("question") or "",
                                response=original, rubric=RUBRIC, label="Yes", prm_idx=idx,
                                classification="original")


@register("prmbench-pairs", (Task.pairwise,), "PRMBench: the original solution against its error-injected "
          "copy (the original wins)", hub_id="hitsmy/PRMBench_Preview", critique_author="gpt-4o")
def prmbench_pairs(ctx: LoadContext) -> Iterator[Yielded]:
    yield from _pairs(ctx)


def _pairs(ctx: LoadContext) -> Iterator[Yielded]:
    folder = ctx.path("prmbench-step-errors", "mr_eval", "tasks", "prmtest_classified", "data")
    for path in sorted(folder.glob("*.jsonl")):
        for number, row, error in iter_jsonl(path):
            if error:
                yield row_error("prmbench-pairs", path, number, error)
                continue
            idx, kind = str(row.get("idx")), str(row.get("classification"))
            modified, original = _steps(row.get("modified_process")), _steps(row.get("original_process"))
            question = row.get("original_question") or row.get("question") or ""
            if row.get("modified_question") not in (None, question):
                continue  # the question itself was changed: the two solutions answer different problems
            if modified is None or original is None:
                yield row_error("prmbench-pairs", path, number, "a solution is missing", field="original_process",
                                id=idx)
                continue
            wrong_first = zlib.crc32(f"{idx}:{kind}".encode()) % 2 == 1
            label, wrong = ("B", "A") if wrong_first else ("A", "B")
            critique = (f"Response {wrong} goes wrong at steps {row.get('error_steps')}: {row.get('reason') or ''} "
                        f"Response {label} avoids this error.").strip()
            yield make_item("prmbench-pairs", path, number, critique=critique, author="gpt-4o",
                            id=f"{idx}:{kind}:pair", task="pairwise", instruction=question,
                            response_a=modified if wrong_first else original,
                            response_b=original if wrong_first else modified, rubric=RUBRIC_PAIR, label=label,
                            prm_idx=idx, classification=kind)
