"""gavel's judge as a reward function for TRL (``GRPOTrainer(reward_funcs=...)``, ``RLOOTrainer``).

TRL calls a reward function as ``f(prompts=..., completions=..., completion_ids=..., **columns)`` where the
columns are the dataset's other fields plus ``trainer_state``, ``log_extra`` and ``log_metric``, and takes back
one float or None per completion (None: no reward, NaN in its logs, left out of the group's baseline).

>>> from trl import GRPOTrainer
>>> from gavel.integrations.trl import JudgeReward
>>> trainer = GRPOTrainer(model=..., reward_funcs=JudgeReward(rubric="Is the answer correct?"), ...)

- ``task="absolute"``: the expected 1-5 score under the judge's label probabilities, rescaled to [0, 1];
  ``"classification"``: P(Yes); ``"pairwise"``: P(the completion beats the dataset's ``reference_column``),
  both orders averaged (see :mod:`gavel.judge.reward`).
- The instruction is the prompt (for chat data its last user message), the response the completion.
- An unreadable verdict (``parse_failed``) or a failed item gives None, never 0.
- Every completion of one call goes to the backend in one stream of requests (it keeps its batch full);
  critiques (critique mode) go to TRL's completions log through ``log_extra``, the share of unreadable and
  failed verdicts through ``log_metric``.
- :class:`AsyncJudgeReward` is the same as an ``async`` function: GRPO runs it beside other async rewards, the
  judge working in a thread (a local model serves one stream at a time).
TRL itself is not imported here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gavel.integrations import JudgeLike, as_judge, both_orders, message_text
from gavel.judge.cache import JudgmentCache
from gavel.judge.records import JudgeRecord, Rubric
from gavel.judge.result import JudgeResult, Mode, Status
from gavel.judge.reward import reward_from_result
from gavel.labels import Task


class JudgeReward:
    """A TRL reward function judging each completion with gavel (see the module docstring).

    ``judge``: a :class:`~gavel.Judge` or a model spec (None: gavel's default judge), built with ``cache`` and
    ``settings`` (Judge's keyword arguments). ``rubric``: one criterion for every item, or ``rubric_column``: the
    dataset column holding each item's. ``name``: the reward's name in TRL's logs.
    """

    def __init__(self, judge: JudgeLike = None, *, task: Task | str = Task.absolute,
                 rubric: str | dict | Rubric | None = None, rubric_column: str | None = None,
                 reference_column: str | None = None, cache: str | Path | JudgmentCache | None = None,
                 name: str | None = None, **settings: Any) -> None:
        self.task = Task(task)
        if self.task is Task.pairwise and reference_column is None:
            raise ValueError("a pairwise reward compares each completion with a reference: name its reference_column")
        if rubric is not None and rubric_column is not None:
            raise ValueError("give either rubric or rubric_column, not both")
        judge_ = as_judge(judge, cache, **settings)
        self.judge = both_orders(judge_) if self.task is Task.pairwise else judge_
        self.rubric = rubric.model_dump(exclude_none=True) if isinstance(rubric, Rubric) else rubric
        self.rubric_column = rubric_column
        self.reference_column = reference_column
        self.__name__ = name or f"gavel_{self.task.value}"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], *,
                 log_extra: Callable[[str, list], None] | None = None,
                 log_metric: Callable[[str, float], None] | None = None, **columns: Any) -> list[float | None]:
        records = [self.record(i, prompt, completion, columns)
                   for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))]
        results = self.judge.judge(records)  # one stream of requests: the backend keeps its batch full
        self._log(results, log_extra, log_metric)
        return [reward_from_result(r) for r in results]

    def record(self, index: int, prompt: Any, completion: Any, columns: dict[str, Sequence[Any]]) -> JudgeRecord:
        """The item to judge for one completion."""
        fields: dict[str, Any] = {"id": str(index), "task": self.task,
                                  "instruction": message_text(prompt, role=None if isinstance(prompt, str) else "user")}
        response = message_text(completion)
        if self.task is Task.pairwise:
            fields |= {"response_a": response, "response_b": message_text(_column(columns, self.reference_column,
                                                                                   index))}
        else:
            fields["response"] = response
        rubric = _column(columns, self.rubric_column, index) if self.rubric_column else self.rubric
        if rubric is not None:
            fields["rubric"] = rubric
        return JudgeRecord.model_validate(fields)

    def _log(self, results: list[JudgeResult], log_extra, log_metric) -> None:
        if log_extra is not None and self.judge.mode is Mode.critique:
            log_extra(f"{self.__name__}_critique", [r.critique for r in results])
        if log_metric is not None and results:
            for status in (Status.parse_failed, Status.error):
                share = sum(r.status is status for r in results) / len(results)
                log_metric(f"{self.__name__}/{status.value}", share)


class AsyncJudgeReward(JudgeReward):
    """:class:`JudgeReward` as an ``async`` reward function: the judge runs in a worker thread."""

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
                       ) -> list[float | None]:
        return await asyncio.to_thread(super().__call__, prompts, completions, **columns)


def _column(columns: dict[str, Sequence[Any]], name: str | None, index: int) -> Any:
    if name not in columns:
        raise KeyError(f"the dataset has no column {name!r} (columns: {', '.join(sorted(columns)) or 'none'})")
    return columns[name][index]
