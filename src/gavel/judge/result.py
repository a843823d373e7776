"""Typed judge results and their one-line-per-item output form."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel

from gavel.backends.base import REASONING_TAG, RESULT_TAG
from gavel.judge.records import JudgeRecord, Task, record_to_dict


class Status(str, Enum):
    """How the result was obtained. Only the first four carry a result."""

    ok = "ok"  # the model wrote `**Result:** X` and the strict parser read it
    tolerant = "tolerant"  # the model wrote the result in a non-canonical form that the tolerant parser read
    forced = "forced"  # the model wrote no result; it was read from the label distribution at `**Result:**`
    logits = "logits"  # verdict mode: read from the label distribution at `**Result:**`, nothing generated
    parse_failed = "parse_failed"  # no result could be read; raw output kept
    error = "error"  # the backend failed for this item


SCORED = (Status.ok, Status.tolerant, Status.forced, Status.logits)


class Mode(str, Enum):
    critique = "critique"
    verdict = "verdict"


class JudgeResult(BaseModel):
    """What a judge said about one record."""

    id: str
    task: Task
    result: str | None = None
    critique: str | None = None
    probabilities: dict[str, float] | None = None
    expected_score: float | None = None
    status: Status
    error: str | None = None
    raw_output: str = ""
    model: str
    template: str
    mode: Mode
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    # pairwise, both orders
    orders_agree: bool | None = None
    result_by_order: list[str | None] | None = None
    attempts: int = 1

    @property
    def scored(self) -> bool:
        return self.status in SCORED

    @property
    def p_yes(self) -> float | None:
        return None if self.probabilities is None else self.probabilities.get("Yes")

    @property
    def p_a(self) -> float | None:
        return None if self.probabilities is None else self.probabilities.get("A")


#: Output fields written by the judge; a passthrough input field with one of these names is overwritten.
RESULT_FIELDS = tuple(JudgeResult.model_fields)


def output_row(record: JudgeRecord, result: JudgeResult) -> dict[str, Any]:
    """One output line: the input record (all fields, extras included) followed by the judge's fields."""
    row = record_to_dict(record)
    row.update(result.model_dump(mode="json"))
    return row


def answer_text(label: str, critique: str | None = None) -> str:
    """The assistant text a judge gives: ``**Reasoning:** <critique>\n\n**Result:** X``, or the result alone.

    This is what the local backends' continuation plus the verdict token reproduce at inference, and what
    curated training pairs hold as chosen/rejected answers.
    """
    result = f"{RESULT_TAG} {label}"
    if critique is None:
        return result
    return f"{REASONING_TAG} {critique.strip()}\n\n{result}"


def expected_score(probabilities: dict[str, float]) -> float:
    return sum(int(label) * p for label, p in probabilities.items())
