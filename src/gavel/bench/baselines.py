"""Judges that need no model, giving floor numbers for every benchmark.

Each gives judged rows in the judge's format (``status`` ok, ``mode`` verdict, ``model`` = the baseline
name, no probabilities) so :mod:`gavel.bench.metrics` applies unchanged.

- ``random``: seeded, uniform over the task's labels (absolute 1-5, Yes/No, A/B).
- ``always-a``: a constant verdict — pairwise ``A`` (the first-presented response), classification
  ``Yes``, absolute ``5``. Constant scores make the absolute Pearson r undefined (reported as None).
- ``longer-wins``: pairwise, the longer response in characters (``tie`` when equal); absolute, the
  response's length quantile within the rows given, mapped to 1-5 in equal fifths; classification,
  ``Yes`` when the response is longer than the median response length of the rows given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from gavel.judge.records import JudgeRecord
from gavel.judge.result import JudgedRow, JudgeResult, Mode
from gavel.labels import LABELS, TIE, Status, Task
from gavel.settings import DEFAULT_SEED

BASELINES: tuple[str, ...] = ("random", "always-a", "longer-wins")

_CONSTANT = {Task.absolute: "5", Task.classification: "Yes", Task.pairwise: "A"}


def _random_verdicts(records: Sequence[JudgeRecord], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(rng.choice(LABELS[r.task])) for r in records]


def _length_scores(lengths: np.ndarray) -> list[str]:
    """Length quantile (mid-rank) mapped to 1-5 in equal fifths."""
    quantile = (rankdata(lengths) - 0.5) / len(lengths)
    return [str(int(min(5, 1 + q * 5))) for q in quantile]


def _longer_verdicts(records: Sequence[JudgeRecord]) -> list[str]:
    verdicts = [""] * len(records)
    for task in Task:
        idx = [i for i, r in enumerate(records) if r.task is task]
        if not idx:
            continue
        if task is Task.pairwise:
            for i in idx:
                a, b = len(records[i].response_a or ""), len(records[i].response_b or "")
                verdicts[i] = "A" if a > b else "B" if b > a else TIE
            continue
        lengths = np.array([len(records[i].response or "") for i in idx], dtype=float)
        if task is Task.absolute:
            scores = _length_scores(lengths)
        else:
            median = float(np.median(lengths))
            scores = ["Yes" if n > median else "No" for n in lengths]
        for i, score in zip(idx, scores, strict=True):
            verdicts[i] = score
    return verdicts


def baseline_verdicts(name: str, records: Sequence[JudgeRecord], seed: int = DEFAULT_SEED) -> list[str]:
    """The verdict of baseline ``name`` for each record."""
    if name == "random":
        return _random_verdicts(records, seed)
    if name == "always-a":
        return [_CONSTANT[r.task] for r in records]
    if name == "longer-wins":
        return _longer_verdicts(records)
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")


def baseline_rows(name: str, records: Sequence[JudgeRecord], seed: int = DEFAULT_SEED) -> list[JudgedRow]:
    """Judge every record with baseline ``name``; returns judged rows like a model's."""
    return [
        JudgedRow(record=record, result=JudgeResult(id=record.id, task=record.task, result=verdict,
                                                    status=Status.ok, model=name, template="baseline",
                                                    mode=Mode.verdict))
        for record, verdict in zip(records, baseline_verdicts(name, records, seed), strict=True)
    ]


__all__ = ["BASELINES", "baseline_rows", "baseline_verdicts"]
