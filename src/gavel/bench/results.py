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
from gavel.layout import BenchOutput
from gavel.settings import DEFAULT_SEED, JudgeSettings

Metric = float | None


class SubsetScore(BaseModel):
    """The primary metric over one subset of a benchmark."""

    value: Metric = None
    n: int = 0
    parse_failure_rate: Metric = None


class Absolute(BaseModel):
    """Secondary metrics of an absolute (1-5) benchmark, over the scored, labelled items."""

    spearman: Metric = None  # Spearman rho between judge and gold scores
    kendall: Metric = None  # Kendall tau between judge and gold scores
    exact_agreement: Metric = None  # share of items where the score equals the gold
    pearson_expected: Metric = None  # Pearson r of the expected score (from the probabilities)
    n_correlated: int = 0  # items in the correlations


class Classification(BaseModel):
    """Secondary metrics of a Yes/No benchmark."""

    balanced_accuracy: Metric = None  # mean recall over the gold classes
    accuracy_scored: Metric = None  # accuracy over the scored items only


class Pairwise(BaseModel):
    """Secondary metrics of a pairwise benchmark."""

    accuracy_scored: Metric = None  # accuracy over the scored items only
    tie_items: int = 0  # items with a tie gold, left out of accuracy
    n_evaluated: int = 0  # items with an A/B gold


class BothOrders(BaseModel):
    """``--both-orders``: each order's accuracy, how often the orders agree, and position bias."""

    accuracy_order1: Metric = None  # accuracy of the original order alone
    accuracy_order2: Metric = None  # accuracy of the swapped order alone
    accuracy_order_mean: Metric = None  # mean of the two
    consistency: Metric = None  # share of items where both orders give the same verdict
    position_bias_a: Metric = None  # share of A verdicts as presented (0.5: no bias)
    n_both_orders: int = 0  # items judged in both orders


class LengthBias(BaseModel):
    """Pairwise accuracy split by whether the gold-better response is the longer one (in characters)."""

    acc_gold_longer: Metric = None  # accuracy where the better response is longer
    n_gold_longer: int = 0  # those items
    acc_gold_shorter: Metric = None  # accuracy where the better response is shorter
    n_gold_shorter: int = 0  # those items
    n_equal_length: int = 0  # items with two responses of one length, in neither group


class Injection(BaseModel):
    """``--injection``: a note planted in a response asks the judge for the wrong verdict."""

    follow_rate: Metric = None  # share of scored verdicts that equal the planted one
    follow_rate_clean: Metric = None  # the same share without the note (the baseline)
    accuracy: Metric = None  # the primary metric under injection
    n: int = 0  # items probed


class RewardBench(BaseModel):
    """RewardBench sections: subset accuracies weighted by the official example counts."""

    chat: Metric = None  # the Chat section
    chat_hard: Metric = None  # the Chat Hard section
    safety: Metric = None  # the Safety section
    reasoning: Metric = None  # the Reasoning section
    score: Metric = None  # mean of the four sections (None unless all four are present)


class Summary(BaseModel):
    """One judge on one benchmark: the primary metric with its 95% BCa bootstrap CI, counts, and the
    secondary metrics that apply (the groups that do not apply are None)."""

    model_config = ConfigDict(extra="forbid")

    task: Task
    metric: str  # the primary metric: pearson (absolute) or accuracy
    value: Metric = None
    ci_low: Metric = None
    ci_high: Metric = None
    n: int = 0  # items, one per id
    n_scored: int = 0  # items with a verdict (status ok, tolerant, forced or logits)
    parse_failures: int = 0  # items without a verdict
    errors: int = 0  # backend errors among them
    parse_failure_rate: Metric = None
    absolute: Absolute | None = None
    classification: Classification | None = None
    pairwise: Pairwise | None = None
    ece: Metric = None  # expected calibration error of the label probabilities (10 bins)
    both_orders: BothOrders | None = None
    length_bias: LengthBias | None = None
    injection: Injection | None = None
    rewardbench: RewardBench | None = None
    subsets_field: str | None = None  # the record field that splits the items
    subsets: dict[str, SubsetScore] | None = None  # the primary metric per subset


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
    """How the run was made: the command, the judge settings (each prompt format's template set aside), ..."""

    command: str | None = None
    date: str | None = None
    settings: JudgeSettings = JudgeSettings()
    limit: int | None = None
    seed: int = DEFAULT_SEED
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
        target = BenchOutput(target).results
    return BenchResults.model_validate_json(target.read_text(encoding="utf-8"))


__all__ = ["Absolute", "BenchResults", "BenchmarkResult", "BothOrders", "Classification", "FormatSpread",
           "Injection", "LengthBias", "Overall", "Pairwise", "RewardBench", "RunMeta", "SubsetScore", "Summary",
           "read_results"]
