"""The typed result of a ``gavel bench`` run; ``DIR/results.json`` is ``BenchResults.model_dump_json()``.

Read it back with ``BenchResults.model_validate_json(path.read_text())`` (or :func:`read_results`).
Every metric field is None when it does not apply (another task type, no probabilities, no both-order
run, ...) or is undefined (a correlation over constant scores, an empty set).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gavel.judge.records import RowError
from gavel.labels import Task

Metric = float | None


class SubsetScore(BaseModel):
    """The primary metric over one subset of a benchmark."""

    value: Metric = None
    n: int = 0
    parse_failure_rate: Metric = None


class Summary(BaseModel):
    """One judge on one benchmark: the primary metric with its 95% BCa bootstrap CI, counts, and the
    secondary metrics of the task."""

    model_config = ConfigDict(extra="forbid")

    task: Task
    metric: str  # the primary metric's name: pearson (absolute) or accuracy
    value: Metric = None
    ci_low: Metric = None
    ci_high: Metric = None
    # counts (see gavel.bench.metrics for the rules)
    n: int = 0
    n_scored: int = 0
    parse_failures: int = 0
    errors: int = 0
    parse_failure_rate: Metric = None
    # absolute
    spearman: Metric = None
    kendall: Metric = None
    exact_agreement: Metric = None
    n_correlated: int | None = None
    pearson_expected: Metric = None
    # classification
    balanced_accuracy: Metric = None
    # classification and pairwise
    accuracy_scored: Metric = None
    # pairwise
    tie_items: int | None = None
    n_evaluated: int | None = None
    accuracy_order1: Metric = None
    accuracy_order2: Metric = None
    accuracy_order_mean: Metric = None
    consistency: Metric = None
    position_bias_a: Metric = None
    n_both_orders: int | None = None
    acc_gold_longer: Metric = None
    n_gold_longer: int | None = None
    acc_gold_shorter: Metric = None
    n_gold_shorter: int | None = None
    n_equal_length: int | None = None
    # injection probe
    injection_follow_rate: Metric = None
    injection_follow_rate_clean: Metric = None
    injection_accuracy: Metric = None
    n_injected: int | None = None
    # calibration
    ece: Metric = None
    # RewardBench sections (pairwise benchmarks with RewardBench subsets)
    rb_chat: Metric = None
    rb_chat_hard: Metric = None
    rb_safety: Metric = None
    rb_reasoning: Metric = None
    rewardbench_score: Metric = None
    # per-subset primary metric
    subsets_field: str | None = None
    subsets: dict[str, SubsetScore] | None = None

    def get(self, name: str) -> float | int | None:
        """A metric by name (None for an unknown name), for tables that list metrics by name."""
        value = getattr(self, name, None)
        return value if isinstance(value, (int, float)) or value is None else None


class BenchmarkResult(BaseModel):
    """One benchmark: its task, primary metric, every judge's summary, and the rows that were not scored
    because the data row is invalid or a judge failed on it (each with file, row, field and reason)."""

    task: Task
    metric: str
    judges: dict[str, Summary]
    row_errors: list[RowError] = []


class Overall(BaseModel):
    """One judge over all benchmarks: per-task means of the primary metric and their means."""

    mean_absolute: Metric = None
    mean_classification: Metric = None
    mean_pairwise: Metric = None
    overall_task_mean: Metric = None  # mean over task types of the mean per type
    overall_flat_mean: Metric = None  # mean over benchmarks
    n_benchmarks: int = 0


class FormatSpread(BaseModel):
    """The primary metric under each prompt format and the spread (max - min)."""

    values: dict[str, Metric]
    spread: Metric = None


class RunMeta(BaseModel):
    """How the run was made."""

    command: str | None = None
    date: str | None = None
    mode: str | None = None
    both_orders: bool = False
    limit: int | None = None
    seed: int = 0
    judges: list[str] = []
    formats: list[str] = ["default"]


class BenchResults(BaseModel):
    """Everything ``gavel bench`` measured; written as ``results.json``."""

    meta: RunMeta
    benchmarks: dict[str, BenchmarkResult]
    overall: dict[str, Overall]
    formats: dict[str, dict[str, FormatSpread]] | None = None
    plots: list[str] = []


def read_results(path: str | Path) -> BenchResults:
    """A ``results.json`` (or the folder holding it) as :class:`BenchResults`."""
    target = Path(path)
    if target.is_dir():
        target = target / "results.json"
    return BenchResults.model_validate_json(target.read_text(encoding="utf-8"))


__all__ = ["BenchResults", "BenchmarkResult", "FormatSpread", "Overall", "RunMeta", "SubsetScore", "Summary",
           "read_results"]
