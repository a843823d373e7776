"""Typed judge results and their one-line-per-item output form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gavel.judge.records import JudgeRecord, Task, record_to_dict
from gavel.labels import SCORED, Mode, Status


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
    input_hash: str | None = None  # JudgeRecord.content_hash of the item judged: an edited item is judged again

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


def expected_score(probabilities: dict[str, float]) -> float:
    return sum(int(label) * p for label, p in probabilities.items())


class JudgedRow(BaseModel):
    """One judged item, typed: the input record and what the judge said (one line of an output file)."""

    record: JudgeRecord
    result: JudgeResult

    @classmethod
    def from_output(cls, row: dict[str, Any]) -> JudgedRow:
        """Split an output line back into record and result (raises ValidationError on a malformed line)."""
        result = JudgeResult.model_validate({k: v for k, v in row.items() if k in RESULT_FIELDS})
        record = JudgeRecord.model_validate({k: v for k, v in row.items() if k not in RESULT_FIELDS or k in _SHARED})
        return cls(record=record, result=result)

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def label(self) -> str | None:
        return self.record.label

    @property
    def verdict(self) -> str | None:
        """The judge's result when it counts as a verdict (a scored status), else None."""
        return self.result.result if self.result.scored else None

    def field(self, name: str) -> Any:
        """A record field or passthrough extra by name (None when absent)."""
        if name in JudgeRecord.model_fields:
            return getattr(self.record, name)
        return (self.record.model_extra or {}).get(name)


_SHARED = ("id", "task")
