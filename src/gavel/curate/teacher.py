"""Synthetic critiques: the teacher is asked for a critique that reaches a given verdict.

Calls go through the judge engine (`Judge.judge_iter`, batched) and the runner (`run_records`): results are
appended to a JSONL cache, one line per call id, so a killed run resumes without repeating finished calls.
The prompt is the engine's own judge prompt (critique mode) for the item, followed by a note naming the
verdict to reach; the teacher is asked for it on the item's gold verdict (chosen) or a plausible wrong
verdict (rejected).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gavel.io import repair_jsonl_rows
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, LoadedRow, Task
from gavel.judge.runner import run_records, write_errors
from gavel.judge.templates import Template, TemplateSet, load_templates
from gavel.labels import Mode, opposite
from gavel.settings import JudgeSettings

TARGET_FIELD = "teacher_target"

_NOTE = {
    Task.absolute: "score {target}",
    Task.classification: "{target}",
    Task.pairwise: "Response {target}",
}


def teacher_note(task: Task, target: str) -> str:
    verdict = _NOTE[task].format(target=target)
    return (f"\n\nThe verdict for this item has already been decided: {verdict}. Write your assessment in two or "
            f"three short sentences that give the concrete reasons for this verdict, then state it.")


class TeacherTemplates(TemplateSet):
    """A judge template set whose prompts end with the verdict the teacher must argue for."""

    def __init__(self, base: TemplateSet) -> None:
        super().__init__(name=f"teacher:{base.name}", templates=dict(base.templates), fallback=base.fallback)

    def render(self, record: JudgeRecord, mode: Mode) -> tuple[str, Template]:
        text, template = super().render(record, mode)
        target = (record.extra_fields() or {}).get(TARGET_FIELD)
        if target is None:
            raise ValueError(f"teacher record {record.id} has no {TARGET_FIELD}")
        return text + teacher_note(record.task, str(target)), template


def wrong_label(task: Task, gold: str, rng: random.Random) -> str:
    """A plausible wrong verdict: the other label (Yes/No, A/B), or the score two steps away (1-5).

    1 -> 3, 2 -> 4, 4 -> 2, 5 -> 3, and 3 -> 1 or 5 at random: clearly wrong, yet not absurd.
    """
    if task is not Task.absolute:
        return opposite(task, gold)
    score = int(gold)
    if score == 3:
        return rng.choice(("1", "5"))
    return str(score + 2 if score <= 2 else score - 2)


@dataclass(frozen=True)
class TeacherCall:
    id: str  # "<item id>#chosen" or "<item id>#rejected"
    item_id: str
    role: str  # chosen | rejected
    target: str
    record: JudgeRecord


def make_call(item_id: str, record: JudgeRecord, role: str, target: str) -> TeacherCall:
    call_id = f"{item_id}#{role}"
    data = record.model_dump(mode="json", exclude_none=True) | {"id": call_id, TARGET_FIELD: target}
    return TeacherCall(id=call_id, item_id=item_id, role=role, target=target, record=JudgeRecord.model_validate(data))


def build_judge(model: str | None, settings: JudgeSettings) -> Judge:
    """The teacher: a judge in critique mode whose prompts name the verdict to reach."""
    critique = JudgeSettings.of(settings, mode=Mode.critique)
    return Judge(model, critique, templates=TeacherTemplates(load_templates(critique.template)))


def run_teacher(calls: list[TeacherCall], cache: Path, judge_factory: Callable[[], Judge],
                on_result: Callable | None = None) -> dict[str, dict]:
    """Run the calls not yet in `cache` and return every cached output row by call id.

    The judge is built only when some call is still to run, so a finished stage costs no model load.
    """
    # a torn last line from a killed run is cut off before reading
    cached = {row["id"]: row for row in repair_jsonl_rows(cache) if "id" in row}
    todo = [c for c in calls if c.id not in cached]
    if todo:
        judge = judge_factory()
        rows = (LoadedRow(row=i, record=c.record) for i, c in enumerate(todo, start=1))
        summary = run_records(judge, rows, cache, source="teacher", on_result=on_result)
        write_errors(cache, summary.row_errors)
        cached = {row["id"]: row for row in repair_jsonl_rows(cache) if "id" in row}
    return {c.id: cached[c.id] for c in calls if c.id in cached}
