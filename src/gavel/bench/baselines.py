"""Judges that need no model, giving floor numbers for every benchmark.

Each writes output rows in the judge's format (``status`` ok, ``mode`` verdict, ``model`` = the baseline
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
from typing import Any

import numpy as np
from scipy.stats import rankdata

from gavel.judge.records import LABELS, JudgeRecord, Task, record_to_dict
from gavel.judge.result import RESULT_FIELDS, JudgeResult, Mode, Status

BASELINES: tuple[str, ...] = ("random", "always-a", "longer-wins")

_CONSTANT = {Task.absolute: "5", Task.classification: "Yes", Task.pairwise: "A"}
_KEEP = ("id", "task")


def _as_row(item: JudgeRecord | dict[str, Any]) -> dict[str, Any]:
    """An input record as a plain dict, with any earlier judge fields removed."""
    row = record_to_dict(item) if isinstance(item, JudgeRecord) else dict(item)
    return {k: v for k, v in row.items() if k in _KEEP or k not in RESULT_FIELDS}


def _random_verdicts(rows: list[dict[str, Any]], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(rng.choice(LABELS[Task(r["task"])])) for r in rows]


def _length_scores(lengths: np.ndarray) -> list[str]:
    """Length quantile (mid-rank) mapped to 1-5 in equal fifths."""
    quantile = (rankdata(lengths) - 0.5) / len(lengths)
    return [str(int(min(5, 1 + q * 5))) for q in quantile]


def _longer_verdicts(rows: list[dict[str, Any]]) -> list[str]:
    verdicts = [""] * len(rows)
    for task in Task:
        idx = [i for i, r in enumerate(rows) if Task(r["task"]) is task]
        if not idx:
            continue
        if task is Task.pairwise:
            for i in idx:
                a, b = len(rows[i]["response_a"]), len(rows[i]["response_b"])
                verdicts[i] = "A" if a > b else "B" if b > a else "tie"
            continue
        lengths = np.array([len(rows[i]["response"]) for i in idx], dtype=float)
        if task is Task.absolute:
            scores = _length_scores(lengths)
        else:
            median = float(np.median(lengths))
            scores = ["Yes" if n > median else "No" for n in lengths]
        for i, score in zip(idx, scores, strict=True):
            verdicts[i] = score
    return verdicts


def baseline_verdicts(name: str, rows: list[dict[str, Any]], seed: int = 0) -> list[str]:
    """The verdict of baseline ``name`` for each row."""
    if name == "random":
        return _random_verdicts(rows, seed)
    if name == "always-a":
        return [_CONSTANT[Task(r["task"])] for r in rows]
    if name == "longer-wins":
        return _longer_verdicts(rows)
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")


def baseline_rows(name: str, records_or_rows: Sequence[JudgeRecord | dict[str, Any]],
                  seed: int = 0) -> list[dict[str, Any]]:
    """Judge every record with baseline ``name``; returns output rows in the judge's format."""
    rows = [_as_row(item) for item in records_or_rows]
    out = []
    for row, verdict in zip(rows, baseline_verdicts(name, rows, seed), strict=True):
        result = JudgeResult(id=str(row["id"]), task=Task(row["task"]), result=verdict, status=Status.ok,
                             model=name, template="baseline", mode=Mode.verdict)
        out.append({**row, **result.model_dump(mode="json")})
    return out


__all__ = ["BASELINES", "baseline_rows", "baseline_verdicts"]
