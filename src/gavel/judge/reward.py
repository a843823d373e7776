"""A verdict as a reward for RL: one number in [0, 1] per judged item, or None when there is no verdict.

- absolute: the expected score over the label distribution (the verdict itself without one), mapped from 1-5
  to 0-1 as ``(score - 1) / 4``;
- classification: P(Yes) (1 or 0 without a distribution);
- pairwise: P(A), the reward of ``response_a`` (1 or 0 without a distribution, 0.5 for a tie of the two orders).

An unreadable verdict (``parse_failed``) or a failed item is None, never a made-up number: TRL ignores a None
reward and the reward endpoint of ``gavel serve`` returns it as ``null``.
"""

from __future__ import annotations

from gavel.judge.result import JudgeResult, expected_score
from gavel.labels import TIE, Task

#: The label whose probability is the reward, for the tasks read that way.
_REWARDED_LABEL = {Task.classification: "Yes", Task.pairwise: "A"}


def reward_from_result(result: JudgeResult) -> float | None:
    """The reward of one judged item (see the module docstring)."""
    if not result.scored or result.result is None:
        return None
    if result.task is Task.absolute:
        score = expected_score(result.probabilities) if result.probabilities else float(result.result)
        return (score - 1.0) / 4.0
    label = _REWARDED_LABEL[result.task]
    if result.probabilities:
        return result.probabilities[label]
    if result.result == TIE:  # the two orders disagreed and there is no distribution to weigh them
        return 0.5
    return 1.0 if result.result == label else 0.0
