"""Metrics over judged rows (:class:`gavel.judge.result.JudgedRow`: a record and the judge's result).

Counting rules, applied everywhere in this module:

- One result per id: :func:`unique_rows` keeps the first row of each id, so a file that holds an id
  twice (two runs into one output) never counts it twice. :func:`summarise` applies it.
- A row is *scored* when its ``status`` is ok, tolerant, forced or logits and it carries a ``result``.
  Rows that are not scored (parse_failed, error) are *parse failures*; ``parse_failure_rate`` is their
  share of all rows and is always reported beside the primary metric.
- Absolute: correlations use scored, labelled rows only (unscored rows are counted, not correlated).
  The judge score is ``int(result)``, or ``expected_score`` when ``use_expected=True`` and it is present.
  A correlation over fewer than two items or constant scores is undefined and reported as ``None``.
- Classification: accuracy and balanced accuracy over every labelled row; an unscored row is wrong.
- Pairwise: rows whose gold label is ``tie`` are excluded from accuracy and counted as ``tie_items``.
  A judge verdict ``tie`` against an A/B gold scores 0.5; an unscored row scores 0 (wrong).
  ``accuracy_scored`` is the same mean over scored rows only.
- The task metrics return the primary value (named by :data:`gavel.labels.PRIMARY_METRIC`) and the typed
  secondary metrics of :mod:`gavel.bench.results`; the probes return their typed groups.
- Confidence intervals: 95% BCa bootstrap (``scipy.stats.bootstrap``), resampling items (pairs of judge
  and gold scores together for the correlation).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from gavel.bench.results import (
    Absolute,
    BothOrders,
    Classification,
    Injection,
    LengthBias,
    Overall,
    Pairwise,
    RewardBench,
    SubsetScore,
    Summary,
)
from gavel.judge.result import JudgedRow
from gavel.labels import LABELS, PRIMARY_METRIC, REWARDBENCH_SECTIONS, TIE, Status, Task, is_pair_label, swap_label
from gavel.settings import BOOTSTRAP_RESAMPLES, DEFAULT_SEED

Row = JudgedRow
Values = dict[str, Any]
Metric = float | None
#: The secondary metrics of each task type (everything its metric function computes but the primary).
SECONDARY = {Task.absolute: Absolute, Task.classification: Classification, Task.pairwise: Pairwise}

REWARDBENCH_SUBSETS = {name for section in REWARDBENCH_SECTIONS.values() for name in section}


# ---------------------------------------------------------------- row helpers


def as_judged(rows: Iterable[Row | dict[str, Any]]) -> list[Row]:
    """Judged rows; a dict is read as one line of a ``gavel judge``/``gavel bench`` output file."""
    return [r if isinstance(r, JudgedRow) else JudgedRow.from_output(r) for r in rows]


def unique_rows(rows: Iterable[Row]) -> list[Row]:
    """The first row of each id, in order."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row.id not in seen:
            seen.add(row.id)
            out.append(row)
    return out


def _labelled(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.label is not None]


def _clean(value: float | None) -> float | None:
    """NaN and inf become None so that the output is valid JSON."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def failure_counts(rows: Sequence[Row]) -> Values:
    """``n``, ``n_scored``, ``parse_failures`` (all unscored rows), ``errors`` and ``parse_failure_rate``."""
    n = len(rows)
    scored = sum(r.verdict is not None for r in rows)
    return {
        "n": n,
        "n_scored": scored,
        "parse_failures": n - scored,
        "errors": sum(r.result.status is Status.error for r in rows),
        "parse_failure_rate": (n - scored) / n if n else None,
    }


# ---------------------------------------------------------------- absolute


def judge_score(row: Row, use_expected: bool = False) -> float:
    """The numeric judge score of a scored absolute row."""
    if use_expected and row.result.expected_score is not None:
        return float(row.result.expected_score)
    return float(int(row.result.result or 0))


def _scored_labelled(rows: Sequence[Row]) -> list[Row]:
    return [r for r in _labelled(rows) if r.verdict is not None]


def absolute_pairs(rows: Sequence[Row], use_expected: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(judge scores, gold scores) over the scored, labelled rows."""
    kept = _scored_labelled(rows)
    x = np.array([judge_score(r, use_expected) for r in kept], dtype=float)
    y = np.array([float(int(r.label or 0)) for r in kept], dtype=float)
    return x, y


def _correlation(fn: Callable[..., Any], x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return _clean(fn(x, y)[0])


def _split(task: Task, values: Values) -> tuple[Metric, Any]:
    """(the task's primary metric, its typed secondary metrics) out of everything computed."""
    primary = values.pop(PRIMARY_METRIC[task])
    return primary, SECONDARY[task](**values)


def absolute_metrics(rows: Sequence[Row], use_expected: bool = False) -> tuple[Metric, Absolute]:
    """Pearson r (primary); Spearman rho, Kendall tau and exact agreement between judge and gold scores."""
    x, y = absolute_pairs(rows, use_expected)
    exact = [int(r.verdict or 0) == int(r.label or 0) for r in _scored_labelled(rows)]
    return _split(Task.absolute, {
        "pearson": _correlation(stats.pearsonr, x, y),
        "spearman": _correlation(stats.spearmanr, x, y),
        "kendall": _correlation(stats.kendalltau, x, y),
        "exact_agreement": _mean(exact),
        "n_correlated": len(x),
    })


# ---------------------------------------------------------------- classification


def classification_metrics(rows: Sequence[Row]) -> tuple[Metric, Classification]:
    """Accuracy (primary) and balanced accuracy over all labelled rows (unscored = wrong), ``accuracy_scored``."""
    labelled = _labelled(rows)
    if not labelled:
        return _split(Task.classification, {"accuracy": None, "balanced_accuracy": None, "accuracy_scored": None})
    gold = [str(r.label) for r in labelled]
    pred = [r.verdict or "<none>" for r in labelled]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "<none>" is a predicted class absent from the gold labels
        balanced = balanced_accuracy_score(gold, pred)
    return _split(Task.classification, {
        "accuracy": float(accuracy_score(gold, pred)),
        "balanced_accuracy": _clean(balanced),
        "accuracy_scored": _mean([r.verdict == r.label for r in labelled if r.verdict is not None]),
    })


def _classification_hits(rows: Sequence[Row]) -> np.ndarray:
    return np.array([float(r.verdict == r.label) for r in _labelled(rows)])


# ---------------------------------------------------------------- pairwise


def pair_credit(verdict: str | None, gold: str | None) -> float:
    """Credit for one pairwise verdict against an A/B gold: 1 right, 0.5 for ``tie``, 0 wrong or missing."""
    if verdict is None:
        return 0.0
    if verdict == TIE:
        return 0.5
    return 1.0 if verdict == gold else 0.0


def _ab_rows(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if is_pair_label(r.label)]


def pairwise_credits(rows: Sequence[Row]) -> np.ndarray:
    """Per-item credit over the rows with an A/B gold (unscored rows get 0)."""
    return np.array([pair_credit(r.verdict, r.label) for r in _ab_rows(rows)])


def pairwise_metrics(rows: Sequence[Row]) -> tuple[Metric, Pairwise]:
    """Accuracy (primary: ties excluded, tie verdict 0.5, failure 0), ``accuracy_scored`` and ``tie_items``."""
    credits = pairwise_credits(rows)
    scored = [pair_credit(r.verdict, r.label) for r in _ab_rows(rows) if r.verdict is not None]
    return _split(Task.pairwise, {
        "accuracy": _mean(credits),
        "accuracy_scored": _mean(scored),
        "tie_items": sum(r.label == TIE for r in rows),
        "n_evaluated": len(credits),
    })


def both_order_metrics(rows: Sequence[Row]) -> BothOrders | None:
    """Per-order accuracy, their mean, order consistency and position bias, from ``result_by_order``.

    ``result_by_order[1]`` is in the original labelling, so the verdict *as presented* in the swapped
    order is its swap. Position bias is the share of "A" verdicts as presented over both presentations
    (0.5 = no bias). None when no row has ``result_by_order``.
    """
    both = [(r, r.result.result_by_order) for r in rows if r.result.result_by_order]
    if not both:
        return None
    gold = [(r, orders) for r, orders in both if is_pair_label(r.label)]
    acc = [_mean([pair_credit(orders[i], r.label) for r, orders in gold]) for i in (0, 1)]
    agree = [bool(r.result.orders_agree) if r.result.orders_agree is not None
             else (orders[0] is not None and orders[0] == orders[1]) for r, orders in both]
    presented = [orders[0] for _, orders in both] + [swap_label(orders[1]) for _, orders in both]
    presented = [v for v in presented if is_pair_label(v)]
    first = LABELS[Task.pairwise][0]
    return BothOrders(accuracy_order1=acc[0], accuracy_order2=acc[1], accuracy_order_mean=_mean(acc) if gold else None,
                      consistency=_mean(agree), position_bias_a=_mean([v == first for v in presented]),
                      n_both_orders=len(both))


def length_bias(rows: Sequence[Row]) -> LengthBias:
    """Pairwise accuracy split by whether the gold-better response is the longer one (in characters).

    Items whose two responses have equal length are left out of both groups (``n_equal_length``).
    """
    out: dict[str, list[float]] = {"longer": [], "shorter": []}
    equal = 0
    for row in _ab_rows(rows):
        a, b = row.record.response_a or "", row.record.response_b or ""
        better, worse = (a, b) if row.label == "A" else (b, a)
        if len(better) == len(worse):
            equal += 1
            continue
        out["longer" if len(better) > len(worse) else "shorter"].append(pair_credit(row.verdict, row.label))
    return LengthBias(acc_gold_longer=_mean(out["longer"]), n_gold_longer=len(out["longer"]),
                      acc_gold_shorter=_mean(out["shorter"]), n_gold_shorter=len(out["shorter"]),
                      n_equal_length=equal)


def injection_metrics(rows: Sequence[Row], task: Task = Task.pairwise) -> Injection | None:
    """Prompt-injection probe: share of scored rows whose verdict equals ``injected_target`` (``follow_rate``),
    the primary metric under injection (``accuracy``) and ``n``; None when no row was injected."""
    probed = [r for r in rows if r.field("injected_target") is not None]
    if not probed:
        return None
    follow = [r.verdict == str(r.field("injected_target")) for r in probed if r.verdict is not None]
    return Injection(follow_rate=_mean(follow), accuracy=primary_value(probed, task), n=len(probed))


# ---------------------------------------------------------------- RewardBench


def rewardbench_scores(subset_accuracy: dict[str, float | None]) -> RewardBench:
    """Section scores (example-count-weighted subset means) and ``score`` = mean of the sections.

    A section is computed from the subsets present; the overall score needs all four sections (else None).
    """
    out: Values = {}
    for section, weights in REWARDBENCH_SECTIONS.items():
        present = {k: w for k, w in weights.items() if subset_accuracy.get(k) is not None}
        total = sum(present.values())
        weighted = sum(float(subset_accuracy[k] or 0.0) * w for k, w in present.items())
        out[section] = weighted / total if total else None
    sections = [out[s] for s in REWARDBENCH_SECTIONS]
    out["score"] = _mean(sections) if all(v is not None for v in sections) else None
    return RewardBench(**out)


def rewardbench_from_rows(rows: Sequence[Row], field: str = "subset") -> RewardBench:
    """RewardBench section scores from judged rows split by ``field`` (pairwise accuracy per subset)."""
    per_subset = {name: primary_value(group, Task.pairwise) for name, group in group_rows(rows, field).items()
                  if name in REWARDBENCH_SUBSETS}
    return rewardbench_scores(per_subset)


# ---------------------------------------------------------------- generic


def primary_value(rows: Sequence[Row] | Sequence[dict[str, Any]], task: Task,
                  use_expected: bool = False) -> float | None:
    """The primary metric of the task over ``rows`` (judged rows, or output-file dicts)."""
    return task_metrics(as_judged(rows), Task(task), use_expected)[0]


def task_metrics(rows: Sequence[Row], task: Task, use_expected: bool = False) -> tuple[Metric, Any]:
    """The task's primary metric and its typed secondary metrics (:data:`SECONDARY`)."""
    if task is Task.absolute:
        return absolute_metrics(rows, use_expected)
    return classification_metrics(rows) if task is Task.classification else pairwise_metrics(rows)


def group_rows(rows: Iterable[Row], field: str) -> dict[str, list[Row]]:
    """Rows grouped by the string value of ``field`` (missing values under ``"(none)"``), in sorted order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        value = row.field(field)
        groups.setdefault("(none)" if value is None else str(value), []).append(row)
    return dict(sorted(groups.items()))


def by_subset(rows: Sequence[Row], task: Task, field: str, use_expected: bool = False) -> dict[str, SubsetScore]:
    """The primary metric, count and parse-failure rate per value of ``field``."""
    return {
        name: SubsetScore(value=primary_value(group, task, use_expected), n=len(group),
                          parse_failure_rate=failure_counts(group)["parse_failure_rate"])
        for name, group in group_rows(rows, field).items()
    }


def _vector_pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along ``axis`` (NaN where either side is constant), for vectorised resampling."""
    dx = x - x.mean(axis=axis, keepdims=True)
    dy = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=axis) / np.sqrt((dx * dx).sum(axis=axis) * (dy * dy).sum(axis=axis))


def bootstrap_ci(arrays: Sequence[np.ndarray], statistic: Callable[..., Any], n_resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = DEFAULT_SEED, level: float = 0.95) -> tuple[float | None, float | None]:
    """BCa bootstrap CI of ``statistic(*arrays)``, resampling items (the same indices in every array).

    A statistic with an ``axis`` parameter is called vectorised; any other is called per resample (it may
    return None, e.g. an undefined correlation). Where some resamples are undefined (a Pearson r over a
    resample of constant scores, common on a handful of items) BCa is undefined too, and the percentile
    interval of the defined resamples is returned. Constant numeric data has a degenerate interval: the
    value itself. Fewer than two items: (None, None).
    """
    if len(arrays[0]) < 2:
        return None, None
    vectorized = "axis" in inspect.signature(statistic).parameters
    if vectorized and all(np.ptp(a) == 0 for a in arrays):
        value = _clean(float(statistic(*arrays, axis=-1)))
        return value, value

    def per_resample(*samples: np.ndarray) -> float:
        value = statistic(*samples)
        return np.nan if value is None else float(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa is undefined when resamples are (a correlation of constant scores)
        result = stats.bootstrap(tuple(arrays), statistic if vectorized else per_resample, paired=len(arrays) > 1,
                                 vectorized=vectorized, confidence_level=level, n_resamples=n_resamples,
                                 method="BCa", batch=200, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)) and np.isfinite(result.bootstrap_distribution).any():
        tail = (1 - level) / 2 * 100  # BCa undefined: the percentile interval of the defined resamples
        low, high = np.nanpercentile(result.bootstrap_distribution, [tail, 100 - tail])
    return _clean(low), _clean(high)


def _mean_axis(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def primary_ci(rows: Sequence[Row], task: Task, seed: int = DEFAULT_SEED, use_expected: bool = False,
               n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float | None, float | None]:
    """95% BCa bootstrap CI of the task's primary metric over the items it is computed on."""
    task = Task(task)
    if task is Task.absolute:
        x, y = absolute_pairs(rows, use_expected)
        if _correlation(stats.pearsonr, x, y) is None:
            return None, None
        return bootstrap_ci([x, y], _vector_pearson, n_resamples, seed)
    hits = _classification_hits(rows) if task is Task.classification else pairwise_credits(rows)
    return bootstrap_ci([hits], _mean_axis, n_resamples, seed)


# ---------------------------------------------------------------- calibration


def calibration_data(rows: Sequence[Row], task: Task) -> tuple[np.ndarray, np.ndarray]:
    """(predicted probability, observed outcome) pairs from ``probabilities`` for a reliability plot.

    Classification: P(Yes) vs gold Yes. Pairwise: P(A) vs gold A (tie gold left out). Absolute: the
    probability of the judge's verdict vs whether it equals the gold score (confidence calibration).
    """
    task = Task(task)
    event = {Task.classification: "Yes", Task.pairwise: "A"}.get(task)
    probs, outcome = [], []
    for row in _labelled(rows):
        p = row.result.probabilities
        if not p or row.verdict is None:
            continue
        total = sum(p.values()) or 1.0
        if event is not None and event in p and (task is Task.classification or is_pair_label(row.label)):
            probs.append(p[event] / total)
            outcome.append(row.label == event)
        elif task is Task.absolute and row.verdict in p:
            probs.append(p[row.verdict] / total)
            outcome.append(row.verdict == row.label)
    return np.asarray(probs, dtype=float), np.asarray(outcome, dtype=float)


def reliability_points(probs: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, ...]:
    """(mean predicted probability, observed frequency, count) per non-empty equal-width bin."""
    bins = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    used = [b for b in range(n_bins) if (bins == b).any()]
    mean_p = np.array([probs[bins == b].mean() for b in used])
    freq = np.array([outcome[bins == b].mean() for b in used])
    return mean_p, freq, np.array([(bins == b).sum() for b in used])


def expected_calibration_error(probs: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> float | None:
    """ECE: bin-size-weighted mean |mean predicted - observed frequency| over equal-width bins."""
    if len(probs) == 0:
        return None
    mean_p, freq, counts = reliability_points(probs, outcome, n_bins)
    return float((np.abs(mean_p - freq) * counts).sum() / len(probs))


# ---------------------------------------------------------------- summary


def summarise(rows: Sequence[Row] | Sequence[dict[str, Any]], task: Task, subsets_field: str | None = None,
              seed: int = DEFAULT_SEED, use_expected: bool = False) -> Summary:
    """One benchmark for one judge (one row per id: duplicates on disk are counted once); ``rows`` are
    judged rows, or output-file dicts."""
    task = Task(task)
    rows = unique_rows(as_judged(rows))
    ci_low, ci_high = primary_ci(rows, task, seed, use_expected)
    value, secondary = task_metrics(rows, task, use_expected)
    summary = Summary(task=task, metric=PRIMARY_METRIC[task], value=value, ci_low=ci_low, ci_high=ci_high,
                      **failure_counts(rows), **{task.value: secondary})
    if any(r.result.probabilities for r in rows):
        summary.ece = expected_calibration_error(*calibration_data(rows, task))
    if task is Task.absolute and not use_expected and any(r.result.expected_score is not None for r in rows):
        secondary.pearson_expected = absolute_metrics(rows, True)[0]
    if task is Task.pairwise:
        summary.both_orders = both_order_metrics(rows)
        summary.length_bias = length_bias(rows)
    summary.injection = injection_metrics(rows, task)
    if subsets_field and any(r.field(subsets_field) is not None for r in rows):
        summary.subsets_field = subsets_field
        summary.subsets = by_subset(rows, task, subsets_field, use_expected)
        if task is Task.pairwise and any(k in REWARDBENCH_SUBSETS for k in summary.subsets):
            summary.rewardbench = rewardbench_from_rows(rows, subsets_field)
    return summary


def overall_scores(summaries: dict[str, Summary]) -> Overall:
    """Aggregate one judge's benchmark summaries (``{benchmark: summary}``).

    ``overall_task_mean`` = mean over task types of (mean primary metric of that type's benchmarks);
    ``overall_flat_mean`` = mean over benchmarks. Benchmarks with an undefined value are left out.
    """
    by_task: dict[Task, list[float]] = {}
    for summary in summaries.values():
        if summary.value is not None:
            by_task.setdefault(summary.task, []).append(summary.value)
    task_means = {task: float(np.mean(values)) for task, values in by_task.items()}
    flat = [v for values in by_task.values() for v in values]
    return Overall(
        **{f"mean_{task.value}": mean for task, mean in task_means.items()},
        overall_task_mean=_mean(list(task_means.values())),
        overall_flat_mean=_mean(flat),
        n_benchmarks=len(flat),
    )


__all__ = [
    "absolute_metrics",
    "as_judged",
    "bootstrap_ci",
    "both_order_metrics",
    "by_subset",
    "calibration_data",
    "classification_metrics",
    "expected_calibration_error",
    "failure_counts",
    "injection_metrics",
    "length_bias",
    "overall_scores",
    "pair_credit",
    "pairwise_metrics",
    "primary_ci",
    "primary_value",
    "reliability_points",
    "rewardbench_from_rows",
    "rewardbench_scores",
    "summarise",
    "task_metrics",
    "unique_rows",
]
