"""gavel's judge as DeepEval metrics: ``assert_test(test_case, [GavelMetric(...)])`` in pytest.

The verdict is read from the judge model's label probabilities, never from JSON the model must write, so a small
local judge cannot fail a test by writing malformed output; a verdict that cannot be read at all fails the test
with gavel's reason (``error`` set, ``success`` false), it is never scored as 0 or 1.

- ``task="absolute"``: the expected 1-5 score rescaled to [0, 1]; ``"classification"``: P(Yes); both on the test
  case's ``input`` and ``actual_output``, with ``expected_output`` as the reference answer when given;
- ``task="pairwise"``: P(``actual_output`` beats ``expected_output``), both orders averaged.

``reason`` is the judge's critique (critique mode), ``score`` is in [0, 1] and passes at ``score >= threshold``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

try:
    from deepeval.metrics import BaseMetric
    from deepeval.test_case import LLMTestCase
except ImportError:
    raise ImportError("gavel's DeepEval metrics need DeepEval: pip install 'gavel[deepeval]'") from None

from gavel.integrations import JudgeLike, as_judge, both_orders
from gavel.judge.cache import JudgmentCache
from gavel.judge.records import JudgeRecord, Rubric
from gavel.judge.result import JudgeResult
from gavel.judge.reward import reward_from_result
from gavel.labels import Task


class GavelMetric(BaseMetric):
    """A DeepEval metric judged by gavel (see the module docstring).

    ``judge``: a :class:`~gavel.Judge` or a model spec (None: gavel's default judge), built with ``cache`` and
    ``settings`` (Judge's keyword arguments); the judge is loaded once and shared by DeepEval's copies of the metric.
    """

    def __init__(self, judge: JudgeLike = None, task: Task | str = Task.absolute,
                 rubric: str | dict | Rubric | None = None, threshold: float = 0.5, strict_mode: bool = False,
                 async_mode: bool = True, cache: str | Path | JudgmentCache | None = None, **settings: Any) -> None:
        self.task = Task(task)
        judge_ = as_judge(judge, cache, **settings)
        self.judge = both_orders(judge_) if self.task is Task.pairwise else judge_
        self.rubric = rubric.model_dump(exclude_none=True) if isinstance(rubric, Rubric) else rubric
        self.threshold = 1.0 if strict_mode else threshold
        self.strict_mode = strict_mode
        self.async_mode = async_mode
        self.include_reason = True
        self.evaluation_model = self.judge.model_name

    def record(self, test_case: LLMTestCase) -> JudgeRecord:
        fields = {"id": "0", "task": self.task, "instruction": test_case.input, "rubric": self.rubric}
        if self.task is Task.pairwise:
            if test_case.expected_output is None:
                raise ValueError("a pairwise GavelMetric compares actual_output with expected_output: set it")
            fields |= {"response_a": test_case.actual_output or "", "response_b": test_case.expected_output}
        else:
            fields |= {"response": test_case.actual_output or "", "reference": test_case.expected_output}
        return JudgeRecord.model_validate({k: v for k, v in fields.items() if v is not None})

    def measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float | None:
        self._read(self.judge.judge([self.record(test_case)])[0])
        return self.score

    async def a_measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float | None:
        return await asyncio.to_thread(self.measure, test_case)

    def is_successful(self) -> bool:
        self.success = self.error is None and self.score is not None and self.score >= self.threshold
        return self.success

    @property
    def __name__(self) -> str:
        return f"gavel {self.task.value}"

    def _read(self, result: JudgeResult) -> None:
        self.score = reward_from_result(result)
        self.reason = result.critique
        self.error = None
        if self.score is None:
            self.error = unread_reason(result)
            self.reason = self.error
        self.is_successful()


def unread_reason(result: JudgeResult) -> str:
    """Why a result has no verdict, in gavel's words (for a failing test's message)."""
    if result.error:
        return f"gavel: the judge failed ({result.error})"
    return (f"gavel: no verdict could be read from the judge's output (status {result.status.value}); "
            f"it wrote: {result.raw_output!r:.300}")
