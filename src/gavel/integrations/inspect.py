"""gavel's judge as Inspect AI scorers: ``gavel/score``, ``gavel/classify`` and ``gavel/compare``.

gavel registers them through the ``inspect_ai`` entry point (``pyproject.toml``), so with ``gavel[inspect]``
installed they are found by name, in a task or on the command line::

    inspect score LOG --scorer gavel/classify -S rubric="Is the answer correct?"

- ``gavel/score``: the 1-5 verdict (mean and stderr over samples);
- ``gavel/classify``: Yes/No against the criterion (``rubric``) as CORRECT/INCORRECT (accuracy);
- ``gavel/compare``: the output against the target as the reference (or against another answer in the sample's
  metadata field ``against``), as P(the output wins) with both orders averaged (mean = win rate).

The instruction is the sample's input, the response its output; the rubric comes from the argument, else the
sample's ``rubric`` metadata; the target, when there is one, is the reference answer of score and classify.
Each score's explanation is the judge's critique and its metadata the label probabilities, status and model.
A verdict that cannot be read (or an item the judge failed) is unscored (``Score.unscored``: left out of the
metrics), never INCORRECT. Judging runs in a worker thread, off the event loop; one judge per set of arguments
is loaded once and shared by every sample (a local model serves one sample at a time).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

try:
    import anyio
    from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, mean, scorer, stderr
    from inspect_ai.solver import TaskState
except ImportError:
    raise ImportError("gavel's Inspect AI scorers need Inspect AI: pip install 'gavel[inspect]'") from None

from gavel.integrations import both_orders
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord
from gavel.judge.result import JudgeResult
from gavel.judge.reward import reward_from_result
from gavel.labels import LABELS, Task

_LOADING = threading.Lock()


@functools.cache
def _judge(model: str | None, mode: str | None, template: str | None, max_new_tokens: int | None,
           cache_path: str | None, pairwise: bool) -> Judge:
    if pairwise:  # the same loaded model, reading each pair in both orders
        return both_orders(_judge(model, mode, template, max_new_tokens, cache_path, False))
    settings = _present({"mode": mode, "template": template, "max_new_tokens": max_new_tokens})
    return Judge(model, cache=cache_path, **settings)


def shared_judge(model: str | None = None, mode: str | None = None, template: str | None = None,
                 max_new_tokens: int | None = None, cache: str | None = None, pairwise: bool = False) -> Judge:
    """One Judge per set of arguments, loaded on first use and then reused (thread-safe)."""
    with _LOADING:
        return _judge(model, mode, template, max_new_tokens, cache, pairwise)


@scorer(metrics=[mean(), stderr()])
def score(rubric: str | None = None, model: str | None = None, mode: str | None = None,
          template: str | None = None, max_new_tokens: int | None = None, cache: str | None = None):
    """gavel's absolute 1-5 verdict on the output (the target, if any, as the reference answer)."""
    async def run(state: TaskState, target: Target) -> Score:
        record = _record(Task.absolute, state, target, rubric)
        return to_score(await _judged(record, (model, mode, template, max_new_tokens, cache)), int)
    return run


@scorer(metrics=[accuracy(), stderr()])
def classify(rubric: str | None = None, model: str | None = None, mode: str | None = None,
             template: str | None = None, max_new_tokens: int | None = None, cache: str | None = None):
    """gavel's Yes/No verdict: does the output meet the criterion (``rubric``)? Yes is CORRECT."""
    yes = LABELS[Task.classification][0]

    async def run(state: TaskState, target: Target) -> Score:
        record = _record(Task.classification, state, target, rubric)
        return to_score(await _judged(record, (model, mode, template, max_new_tokens, cache)),
                        lambda verdict: CORRECT if verdict == yes else INCORRECT)
    return run


@scorer(metrics=[mean(), stderr()])
def compare(rubric: str | None = None, against: str | None = None, model: str | None = None,
            mode: str | None = None, template: str | None = None, max_new_tokens: int | None = None,
            cache: str | None = None):
    """P(the output beats the target), both orders averaged; ``against``: a metadata field with the other answer."""
    async def run(state: TaskState, target: Target) -> Score:
        other = state.metadata[against] if against else target.text
        fields = {"task": Task.pairwise, "instruction": state.input_text, "response_a": state.output.completion,
                  "response_b": other, "rubric": rubric or state.metadata.get("rubric")}
        record = JudgeRecord.model_validate({"id": str(state.sample_id), **_present(fields)})
        result = await _judged(record, (model, mode, template, max_new_tokens, cache), pairwise=True)
        return to_score(result, lambda _: reward_from_result(result))
    return run


def to_score(result: JudgeResult, value_of) -> Score:
    """An Inspect Score from a judge result: ``value_of(verdict)`` when there is one, else unscored."""
    metadata = {"status": result.status.value, "probabilities": result.probabilities,
                "expected_score": result.expected_score, "model": result.model, "template": result.template,
                "mode": result.mode.value, "orders_agree": result.orders_agree}
    metadata = _present(metadata)
    if not result.scored or result.result is None:
        explanation = result.error or f"no verdict could be read from the judge's output: {result.raw_output!r:.500}"
        return Score.unscored(reason="grader_failed", answer=None, explanation=explanation, metadata=metadata)
    return Score(value=value_of(result.result), answer=result.result, explanation=result.critique, metadata=metadata)


async def _judged(record: JudgeRecord, judge_args: tuple, pairwise: bool = False) -> JudgeResult:
    def work() -> JudgeResult:
        return shared_judge(*judge_args, pairwise=pairwise).judge([record])[0]

    return await anyio.to_thread.run_sync(work)


def _record(task: Task, state: TaskState, target: Target, rubric: str | None) -> JudgeRecord:
    fields = {"task": task, "instruction": state.input_text, "response": state.output.completion,
              "rubric": rubric or state.metadata.get("rubric"), "reference": target.text or None}
    return JudgeRecord.model_validate({"id": str(state.sample_id), **_present(fields)})


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
