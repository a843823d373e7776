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
- An unreadable verdict (``parse_failed``) or a failed item gives None, never 0; so does a row that cannot be
  judged (an empty prompt, a missing reference), with a warning naming the row and field.
- Every completion of one call goes to the backend in one stream of requests (it keeps its batch full);
  critiques (critique mode) go to TRL's completions log through ``log_extra``, the share of unreadable and
  failed verdicts through ``log_metric``.
- :class:`AsyncJudgeReward` is the same as an ``async`` function: GRPO runs it beside other async rewards, the
  judge working in a thread (a local model serves one stream at a time).
TRL itself is not imported here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gavel.integrations import JudgeLike, as_judge, both_orders, message_text
from gavel.judge.cache import JudgmentCache
from gavel.judge.records import LoadedRow, RowError, Rubric, validate_row
from gavel.judge.result import JudgeResult, Mode, Status
from gavel.judge.reward import reward_from_result
from gavel.labels import Task

log = logging.getLogger(__name__)


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
        loaded = [self.loaded(i, prompt, completion, columns)
                  for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))]
        for row in loaded:
            if row.error is not None:
                log.warning("%s: %s: no reward", self.__name__, row.error)
        judged = iter(self.judge.judge([r.record for r in loaded if r.record is not None]))  # one stream
        results = [next(judged) if r.record is not None else None for r in loaded]
        self._log(results, log_extra, log_metric)
        return [None if r is None else reward_from_result(r) for r in results]

    def loaded(self, index: int, prompt: Any, completion: Any, columns: dict[str, Sequence[Any]]) -> LoadedRow:
        """The item to judge for one completion, or the row error (row ``index + 1``, naming the field) that
        leaves it without a reward: an empty prompt, a missing reference, a rubric of the wrong shape."""
        fields: dict[str, Any] = {"id": str(index), "task": self.task}
        reference = _column(columns, self.reference_column, index) if self.task is Task.pairwise else None
        rubric = _column(columns, self.rubric_column, index) if self.rubric_column else self.rubric
        try:
            fields["instruction"] = message_text(prompt, role=None if isinstance(prompt, str) else "user")
            response = message_text(completion)
            if self.task is Task.pairwise:
                fields |= {"response_a": response, "response_b": None if reference is None else message_text(reference)}
            else:
                fields["response"] = response
        except (ValueError, TypeError, AttributeError) as exc:
            return LoadedRow(row=index + 1, error=RowError(source=self.__name__, row=index + 1, message=str(exc)))
        if rubric is not None:
            fields["rubric"] = rubric
        row = validate_row(fields, self.__name__, index + 1)
        if row.error is not None and row.error.field == "response_b":  # the reference: name its column
            row.error.field = self.reference_column
        return row

    def _log(self, results: list[JudgeResult | None], log_extra, log_metric) -> None:
        if log_extra is not None and self.judge.mode is Mode.critique:
            log_extra(f"{self.__name__}_critique", [r.critique if r is not None else None for r in results])
        if log_metric is not None and results:
            for status in (Status.parse_failed, Status.error):  # a row not judged counts as an error
                found = sum((r.status if r is not None else Status.error) is status for r in results)
                log_metric(f"{self.__name__}/{status.value}", found / len(results))


class AsyncJudgeReward(JudgeReward):
    """:class:`JudgeReward` as an ``async`` reward function: the judge runs in a worker thread."""

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
                       ) -> list[float | None]:
        return await asyncio.to_thread(super().__call__, prompts, completions, **columns)


def _column(columns: dict[str, Sequence[Any]], name: str | None, index: int) -> Any:
    if name not in columns:
        raise KeyError(f"the dataset has no column {name!r} (columns: {', '.join(sorted(columns)) or 'none'})")
    if index >= len(columns[name]):
        raise ValueError(f"column {name!r} holds {len(columns[name])} values, fewer than the completions")
    return columns[name][index]
