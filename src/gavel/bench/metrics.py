"""Metrics over judged output rows (one dict per item, as written by ``gavel judge``/``gavel bench``).

Counting rules, applied everywhere in this module:

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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score

Row = dict[str, Any]

SCORED_STATUSES = ("ok", "tolerant", "forced", "logits")
PRIMARY = {"absolute": "pearson", "classification": "accuracy", "pairwise": "accuracy"}

#: RewardBench sections and the official example count of each subset (the section weights).
REWARDBENCH_SECTIONS: dict[str, dict[str, int]] = {
    "chat": {
        "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95,
        "mt-bench-easy": 28, "mt-bench-med": 40,
    },
    "chat_hard": {
        "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
        "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    },
    "safety": {
        "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
        "xstest-should-respond": 250, "donotanswer": 136,
    },
    "reasoning": {
        "math-prm": 984, "hep-cpp": 164, "hep-go": 164, "hep-java": 164,
        "hep-js": 164, "hep-python": 164, "hep-rust": 164,
    },
}
REWARDBENCH_SUBSETS = {name for section in REWARDBENCH_SECTIONS.values() for name in section}


# ---------------------------------------------------------------- row helpers


def task_of(task: Any) -> str:
    """The task name as a plain string (accepts the ``Task`` enum)."""
    return getattr(task, "value", task)


def is_scored(row: Row) -> bool:
    """True when the judge gave a verdict for this row."""
    status = task_of(row.get("status", "ok"))
    return status in SCORED_STATUSES and row.get("result") is not None


def _labelled(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.get("label") is not None]


def _clean(value: float | None) -> float | None:
    """NaN and inf become None so that the output is valid JSON."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def failure_counts(rows: Sequence[Row]) -> dict[str, Any]:
    """``n``, ``n_scored``, ``parse_failures`` (all unscored rows), ``errors`` and ``parse_failure_rate``."""
    n = len(rows)
    scored = sum(is_scored(r) for r in rows)
    errors = sum(task_of(r.get("status")) == "error" for r in rows)
    return {
        "n": n,
        "n_scored": scored,
        "parse_failures": n - scored,
        "errors": errors,
        "parse_failure_rate": (n - scored) / n if n else None,
    }


# ---------------------------------------------------------------- absolute


def judge_score(row: Row, use_expected: bool = False) -> float:
    """The numeric judge score of a scored absolute row."""
    if use_expected and row.get("expected_score") is not None:
        return float(row["expected_score"])
    return float(int(row["result"]))


def absolute_pairs(rows: Sequence[Row], use_expected: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(judge scores, gold scores) over the scored, labelled rows."""
    kept = [r for r in _labelled(rows) if is_scored(r)]
    x = np.array([judge_score(r, use_expected) for r in kept], dtype=float)
    y = np.array([float(int(r["label"])) for r in kept], dtype=float)
    return x, y


def _correlation(fn: Callable[..., Any], x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return _clean(fn(x, y)[0])


def absolute_metrics(rows: Sequence[Row], use_expected: bool = False) -> dict[str, float | None]:
    """Pearson r, Spearman rho, Kendall tau and exact agreement between judge and gold scores."""
    x, y = absolute_pairs(rows, use_expected)
    exact = [int(r["result"]) == int(r["label"]) for r in _labelled(rows) if is_scored(r)]
    return {
        "pearson": _correlation(stats.pearsonr, x, y),
        "spearman": _correlation(stats.spearmanr, x, y),
        "kendall": _correlation(stats.kendalltau, x, y),
        "exact_agreement": float(np.mean(exact)) if exact else None,
        "n_correlated": len(x),
    }


# ---------------------------------------------------------------- classification


def classification_metrics(rows: Sequence[Row]) -> dict[str, float | None]:
    """Accuracy and balanced accuracy over all labelled rows (unscored = wrong), plus ``accuracy_scored``."""
    labelled = _labelled(rows)
    if not labelled:
        return {"accuracy": None, "balanced_accuracy": None, "accuracy_scored": None}
    gold = [str(r["label"]) for r in labelled]
    pred = [str(r["result"]) if is_scored(r) else "<none>" for r in labelled]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "<none>" is a predicted class absent from the gold labels
        balanced = balanced_accuracy_score(gold, pred)
    scored = [(g, p) for g, p, r in zip(gold, pred, labelled, strict=True) if is_scored(r)]
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "balanced_accuracy": _clean(balanced),
        "accuracy_scored": float(np.mean([g == p for g, p in scored])) if scored else None,
    }


# ---------------------------------------------------------------- pairwise


def pair_credit(verdict: str | None, gold: str) -> float:
    """Credit for one pairwise verdict against an A/B gold: 1 right, 0.5 for ``tie``, 0 wrong or missing."""
    if verdict is None:
        return 0.0
    if verdict == "tie":
        return 0.5
    return 1.0 if verdict == gold else 0.0


def _ab_rows(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.get("label") in ("A", "B")]


def pairwise_credits(rows: Sequence[Row]) -> np.ndarray:
    """Per-item credit over the rows with an A/B gold (unscored rows get 0)."""
    return np.array([pair_credit(r["result"] if is_scored(r) else None, r["label"]) for r in _ab_rows(rows)])


def pairwise_metrics(rows: Sequence[Row]) -> dict[str, float | int | None]:
    """Accuracy (ties excluded, tie verdict 0.5, failure 0), ``accuracy_scored`` and ``tie_items``."""
    credits = pairwise_credits(rows)
    scored = [pair_credit(r["result"], r["label"]) for r in _ab_rows(rows) if is_scored(r)]
    return {
        "accuracy": float(credits.mean()) if len(credits) else None,
        "accuracy_scored": float(np.mean(scored)) if scored else None,
        "tie_items": sum(r.get("label") == "tie" for r in rows),
        "n_evaluated": len(credits),
    }


def _swap(verdict: str | None) -> str | None:
    return {"A": "B", "B": "A"}.get(verdict or "", verdict)


def both_order_metrics(rows: Sequence[Row]) -> dict[str, float | None]:
    """Per-order accuracy, their mean, order consistency and position bias, from ``result_by_order``.

    ``result_by_order[1]`` is in the original labelling, so the verdict *as presented* in the swapped
    order is its swap. Position bias is the share of "A" verdicts as presented over both presentations
    (0.5 = no bias). Empty when no row has ``result_by_order``.
    """
    both = [r for r in rows if r.get("result_by_order")]
    if not both:
        return {}
    gold = _ab_rows(both)
    acc = [float(np.mean([pair_credit(r["result_by_order"][i], r["label"]) for r in gold])) if gold else None
           for i in (0, 1)]
    agree = [bool(r["orders_agree"]) if r.get("orders_agree") is not None
             else (r["result_by_order"][0] is not None and r["result_by_order"][0] == r["result_by_order"][1])
             for r in both]
    presented = [r["result_by_order"][0] for r in both] + [_swap(r["result_by_order"][1]) for r in both]
    presented = [v for v in presented if v in ("A", "B")]
    return {
        "accuracy_order1": acc[0],
        "accuracy_order2": acc[1],
        "accuracy_order_mean": float(np.mean(acc)) if gold else None,
        "consistency": float(np.mean(agree)),
        "position_bias_a": float(np.mean([v == "A" for v in presented])) if presented else None,
        "n_both_orders": len(both),
    }


def length_bias(rows: Sequence[Row]) -> dict[str, float | int | None]:
    """Pairwise accuracy split by whether the gold-better response is the longer one (in characters).

    Items whose two responses have equal length are left out of both groups (``n_equal_length``).
    """
    out: dict[str, list[float]] = {"longer": [], "shorter": []}
    equal = 0
    for row in _ab_rows(rows):
        better, worse = (row["response_a"], row["response_b"])[:: 1 if row["label"] == "A" else -1]
        if len(better) == len(worse):
            equal += 1
            continue
        group = "longer" if len(better) > len(worse) else "shorter"
        out[group].append(pair_credit(row["result"] if is_scored(row) else None, row["label"]))
    return {
        "acc_gold_longer": float(np.mean(out["longer"])) if out["longer"] else None,
        "n_gold_longer": len(out["longer"]),
        "acc_gold_shorter": float(np.mean(out["shorter"])) if out["shorter"] else None,
        "n_gold_shorter": len(out["shorter"]),
        "n_equal_length": equal,
    }


def injection_metrics(rows: Sequence[Row], task: Any = "pairwise") -> dict[str, float | int | None]:
    """Prompt-injection probe: share of scored rows whose verdict equals ``injected_target``, and accuracy."""
    probed = [r for r in rows if r.get("injected_target") is not None]
    if not probed:
        return {}
    scored = [r for r in probed if is_scored(r)]
    follow = [str(r["result"]) == str(r["injected_target"]) for r in scored]
    return {
        "injection_follow_rate": float(np.mean(follow)) if follow else None,
        "injection_accuracy": primary_value(probed, task),
        "n_injected": len(probed),
    }


# ---------------------------------------------------------------- RewardBench


def rewardbench_scores(subset_accuracy: dict[str, float]) -> dict[str, float | None]:
    """Section scores (example-count-weighted subset means) and ``rewardbench_score`` = mean of sections.

    A section is computed from the subsets present; the overall score needs all four sections (else None).
    """
    out: dict[str, float | None] = {}
    for section, weights in REWARDBENCH_SECTIONS.items():
        present = {k: w for k, w in weights.items() if subset_accuracy.get(k) is not None}
        total = sum(present.values())
        weighted = sum(subset_accuracy[k] * w for k, w in present.items())
        out[f"rb_{section}"] = weighted / total if total else None
    sections = [out[f"rb_{s}"] for s in REWARDBENCH_SECTIONS]
    out["rewardbench_score"] = float(np.mean(sections)) if all(v is not None for v in sections) else None
    return out


def rewardbench_from_rows(rows: Sequence[Row], field: str = "subset") -> dict[str, float | None]:
    """RewardBench section scores from judged rows split by ``field`` (pairwise accuracy per subset)."""
    groups = group_rows(rows, field)
    per_subset = {name: pairwise_metrics(group)["accuracy"] for name, group in groups.items()}
    return rewardbench_scores({k: v for k, v in per_subset.items() if k in REWARDBENCH_SUBSETS})


# ---------------------------------------------------------------- generic


def primary_value(rows: Sequence[Row], task: Any, use_expected: bool = False) -> float | None:
    """The primary metric of the task over ``rows``."""
    name = task_of(task)
    if name == "absolute":
        return absolute_metrics(rows, use_expected)["pearson"]
    if name == "classification":
        return classification_metrics(rows)["accuracy"]
    return pairwise_metrics(rows)["accuracy"]


def group_rows(rows: Iterable[Row], field: str) -> dict[str, list[Row]]:
    """Rows grouped by the string value of ``field`` (missing values under ``"(none)"``), in sorted order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        value = row.get(field)
        groups.setdefault("(none)" if value is None else str(value), []).append(row)
    return dict(sorted(groups.items()))


def by_subset(rows: Sequence[Row], task: Any, field: str, use_expected: bool = False) -> dict[str, dict]:
    """``{subset: {"value", "n", "parse_failure_rate"}}`` of the primary metric per value of ``field``."""
    return {
        name: {
            "value": primary_value(group, task, use_expected),
            "n": len(group),
            "parse_failure_rate": failure_counts(group)["parse_failure_rate"],
        }
        for name, group in group_rows(rows, field).items()
    }


def bootstrap_ci(
    arrays: Sequence[np.ndarray],
    statistic: Callable[..., float | None],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI, resampling items (the same indices across ``arrays``) with replacement."""
    n = len(arrays[0])
    if n < 2:
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        value = statistic(*(a[idx] for a in arrays))
        values.append(np.nan if value is None else value)
    values_arr = np.asarray(values, dtype=float)
    if np.isnan(values_arr).all():
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values_arr, [tail, 100 - tail])
    return _clean(low), _clean(high)


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    return _correlation(stats.pearsonr, x, y)


def primary_ci(rows: Sequence[Row], task: Any, seed: int = 0, use_expected: bool = False,
               n_resamples: int = 1000) -> tuple[float | None, float | None]:
    """95% percentile-bootstrap CI of the task's primary metric over the items it is computed on."""
    name = task_of(task)
    if name == "absolute":
        x, y = absolute_pairs(rows, use_expected)
        return bootstrap_ci([x, y], _pearson, n_resamples, seed)
    if name == "classification":
        labelled = _labelled(rows)
        hits = np.array([float(is_scored(r) and str(r["result"]) == str(r["label"])) for r in labelled])
    else:
        hits = pairwise_credits(rows)
    return bootstrap_ci([hits], lambda a: float(a.mean()), n_resamples, seed)


def calibration_data(rows: Sequence[Row], task: Any) -> tuple[np.ndarray, np.ndarray]:
    """(predicted probability, observed outcome) pairs from ``probabilities`` for a reliability plot.

    Classification: P(Yes) vs gold Yes. Pairwise: P(A) vs gold A (tie gold left out). Absolute: the
    probability of the judge's verdict vs whether it equals the gold score (confidence calibration).
    """
    name = task_of(task)
    probs, outcome = [], []
    for row in _labelled(rows):
        p = row.get("probabilities")
        if not p or not is_scored(row):
            continue
        if name == "classification" and "Yes" in p:
            probs.append(p["Yes"] / (sum(p.values()) or 1.0))
            outcome.append(row["label"] == "Yes")
        elif name == "pairwise" and "A" in p and row["label"] in ("A", "B"):
            probs.append(p["A"] / (sum(p.values()) or 1.0))
            outcome.append(row["label"] == "A")
        elif name == "absolute" and str(row["result"]) in p:
            probs.append(p[str(row["result"])] / (sum(p.values()) or 1.0))
            outcome.append(str(row["result"]) == str(row["label"]))
    return np.asarray(probs, dtype=float), np.asarray(outcome, dtype=float)


def expected_calibration_error(probs: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> float | None:
    """ECE: bin-size-weighted mean |mean predicted - observed frequency| over equal-width bins."""
    if len(probs) == 0:
        return None
    bins = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    gaps = [abs(probs[bins == b].mean() - outcome[bins == b].mean()) * (bins == b).sum()
            for b in range(n_bins) if (bins == b).any()]
    return float(sum(gaps) / len(probs))


# ---------------------------------------------------------------- summary


def summarise(rows: Sequence[Row], task: Any, subsets_field: str | None = None, seed: int = 0,
              use_expected: bool = False) -> dict[str, Any]:
    """One benchmark for one judge as a JSON-able dict.

    Flat scalars: ``task``, ``metric``, ``value``, ``ci_low``, ``ci_high``, counts from
    :func:`failure_counts` and the task's secondary metrics (both-order, length-bias, injection, ECE and
    RewardBench keys when they apply). With ``subsets_field`` one nested key is added: ``subsets``
    (``{name: {"value", "n", "parse_failure_rate"}}``) and ``subsets_field``.
    """
    name = task_of(task)
    out: dict[str, Any] = {"task": name, "metric": PRIMARY[name]}
    if name == "absolute":
        secondary: dict[str, Any] = absolute_metrics(rows, use_expected)
        if not use_expected and any(r.get("expected_score") is not None for r in rows):
            secondary["pearson_expected"] = absolute_metrics(rows, True)["pearson"]
    elif name == "classification":
        secondary = classification_metrics(rows)
    else:
        secondary = {**pairwise_metrics(rows), **both_order_metrics(rows), **length_bias(rows)}
    out["value"] = secondary.pop(PRIMARY[name])
    out["ci_low"], out["ci_high"] = primary_ci(rows, name, seed, use_expected)
    out.update(failure_counts(rows))
    out.update(secondary)
    out.update(injection_metrics(rows, name))
    if any(r.get("probabilities") for r in rows):
        out["ece"] = expected_calibration_error(*calibration_data(rows, name))
    if subsets_field:
        out["subsets_field"] = subsets_field
        out["subsets"] = by_subset(rows, name, subsets_field, use_expected)
        if name == "pairwise" and any(k in REWARDBENCH_SUBSETS for k in out["subsets"]):
            out.update(rewardbench_from_rows(rows, subsets_field))
    return out


def overall_scores(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Aggregate one judge's benchmark summaries (``{benchmark: summary}``).

    ``overall_task_mean`` = mean over task types of (mean primary metric of that type's benchmarks);
    ``overall_flat_mean`` = mean over benchmarks. Benchmarks with an undefined value are left out.
    Also ``mean_<task>`` per task type and ``n_benchmarks``.
    """
    by_task: dict[str, list[float]] = {}
    for summary in summaries.values():
        if summary.get("value") is not None:
            by_task.setdefault(summary["task"], []).append(float(summary["value"]))
    task_means = {task: float(np.mean(values)) for task, values in sorted(by_task.items())}
    flat = [v for values in by_task.values() for v in values]
    return {
        **{f"mean_{task}": mean for task, mean in task_means.items()},
        "overall_task_mean": float(np.mean(list(task_means.values()))) if task_means else None,
        "overall_flat_mean": float(np.mean(flat)) if flat else None,
        "n_benchmarks": len(flat),
    }


__all__ = [
    "PRIMARY",
    "REWARDBENCH_SECTIONS",
    "SCORED_STATUSES",
    "absolute_metrics",
    "bootstrap_ci",
    "both_order_metrics",
    "by_subset",
    "calibration_data",
    "classification_metrics",
    "expected_calibration_error",
    "failure_counts",
    "injection_metrics",
    "is_scored",
    "length_bias",
    "overall_scores",
    "pair_credit",
    "pairwise_metrics",
    "primary_ci",
    "primary_value",
    "rewardbench_from_rows",
    "rewardbench_scores",
    "summarise",
]
