"""Metrics and no-model baselines for `gavel bench`, checked against hand computations and scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score

from gavel.bench import metrics as m
from gavel.bench.baselines import BASELINES, baseline_rows
from gavel.bench.results import LengthBias, SubsetScore, Summary
from gavel.judge.records import LABELS, JudgeRecord, Task
from gavel.judge.result import JudgedRow
from gavel.labels import REWARDBENCH_SECTIONS

_IDS = itertools.count()


def _row(task: str, label: str | None, result: str | None, status: str = "ok", **extra) -> JudgedRow:
    """A judged row from output-line fields (a fresh id unless given)."""
    texts = {"response": "r"} if task != "pairwise" else {}
    line = {"id": str(extra.pop("id", next(_IDS))), "task": task, "instruction": "q", **texts, "result": result,
            "status": status, "model": "m", "template": "t", "mode": "verdict", **extra}
    if label is not None:
        line["label"] = label
    return JudgedRow.from_output(line)


def _pair(label: str, result: str | None, status: str = "ok", **extra) -> JudgedRow:
    extra.setdefault("response_a", "aa")
    extra.setdefault("response_b", "bbbb")
    return _row("pairwise", label, result, status, **extra)


# ---------------------------------------------------------------- absolute

GOLD = [1, 2, 3, 4, 5, 3, 2, 4]
PRED = [2, 2, 3, 5, 4, 3, 1, 4]


def _absolute_rows() -> list[JudgedRow]:
    rows = [_row("absolute", str(g), str(p), expected_score=p + 0.1 * (i % 3)) for i, (g, p) in
            enumerate(zip(GOLD, PRED, strict=True))]
    rows.append(_row("absolute", "5", None, "parse_failed"))
    rows.append(_row("absolute", "1", None, "error"))
    return rows


def test_absolute_correlations_match_scipy_and_exclude_unscored():
    rows = _absolute_rows()
    pearson, got = m.absolute_metrics(rows)
    assert pearson == pytest.approx(stats.pearsonr(PRED, GOLD)[0])
    assert got.spearman == pytest.approx(stats.spearmanr(PRED, GOLD)[0])
    assert got.kendall == pytest.approx(stats.kendalltau(PRED, GOLD)[0])
    assert got.exact_agreement == pytest.approx(4 / 8)
    assert got.n_correlated == 8

    expected = [p + 0.1 * (i % 3) for i, p in enumerate(PRED)]
    with_expected, _ = m.absolute_metrics(rows, use_expected=True)
    assert with_expected == pytest.approx(stats.pearsonr(expected, GOLD)[0])
    assert with_expected != pytest.approx(pearson)

    summary = m.summarise(rows, "absolute")
    assert summary.metric == "pearson"
    assert summary.value == pytest.approx(pearson)
    assert summary.absolute.pearson_expected == pytest.approx(with_expected)
    assert (summary.n, summary.n_scored, summary.parse_failures, summary.errors) == (10, 8, 2, 1)
    assert summary.parse_failure_rate == pytest.approx(0.2)
    assert summary.ci_low <= summary.value <= summary.ci_high


def test_constant_scores_give_undefined_correlation():
    rows = [_row("absolute", str(g), "5") for g in GOLD]
    assert m.absolute_metrics(rows)[0] is None
    assert m.summarise(rows, Task.absolute).value is None


# ---------------------------------------------------------------- classification


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_classification_accuracy_and_balanced_accuracy():
    rows = [
        _row("classification", "Yes", "Yes"),
        _row("classification", "Yes", "No"),
        _row("classification", "Yes", None, "parse_failed"),
        _row("classification", "No", "No"),
        _row("classification", None, "Yes"),  # unlabelled: ignored
    ]
    accuracy, got = m.classification_metrics(rows)
    assert accuracy == pytest.approx(2 / 4)
    assert got.balanced_accuracy == pytest.approx((1 / 3 + 1) / 2)
    assert got.balanced_accuracy == pytest.approx(
        balanced_accuracy_score(["Yes", "Yes", "Yes", "No"], ["Yes", "No", "fail", "No"]))
    assert got.accuracy_scored == pytest.approx(2 / 3)
    summary = m.summarise(rows, "classification")
    assert summary.value == pytest.approx(0.5)
    assert summary.parse_failures == 1


# ---------------------------------------------------------------- pairwise


def test_pairwise_tie_and_failure_rules():
    rows = [
        _pair("A", "A"),
        _pair("B", "tie"),  # judge tie against A/B gold: 0.5
        _pair("tie", "A"),  # gold tie: excluded
        _pair("A", None, "parse_failed"),  # failure: wrong
        _pair("B", "A"),
    ]
    accuracy, got = m.pairwise_metrics(rows)
    assert accuracy == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert got.accuracy_scored == pytest.approx((1 + 0.5 + 0) / 3)
    assert got.tie_items == 1
    assert got.n_evaluated == 4
    summary = m.summarise(rows, "pairwise")
    assert summary.value == pytest.approx(0.375)
    assert summary.parse_failure_rate == pytest.approx(1 / 5)
    assert summary.pairwise.tie_items == 1


def _both_rows(with_flag: bool = True) -> list[JudgedRow]:
    table = [("A", ["A", "A"]), ("B", ["A", "B"]), ("A", ["A", "B"]), ("B", ["B", "B"])]
    rows = []
    for gold, by_order in table:
        flag = {"orders_agree": by_order[0] == by_order[1]} if with_flag else {}
        rows.append(_pair(gold, by_order[0] if by_order[0] == by_order[1] else "tie", result_by_order=by_order,
                          **flag))
    return rows


@pytest.mark.parametrize("with_flag", [True, False])
def test_both_order_statistics(with_flag):
    got = m.both_order_metrics(_both_rows(with_flag))
    assert got.accuracy_order1 == pytest.approx(3 / 4)
    assert got.accuracy_order2 == pytest.approx(3 / 4)
    assert got.accuracy_order_mean == pytest.approx(3 / 4)
    assert got.consistency == pytest.approx(2 / 4)
    # as presented: order 1 = A, A, A, B; swapped presentation = swap(A, B, B, B) = B, A, A, A
    assert got.position_bias_a == pytest.approx(6 / 8)
    assert m.both_order_metrics([_pair("A", "A")]) is None


def test_length_bias_split():
    rows = [
        _pair("A", "A", response_a="long answer", response_b="short"),  # gold longer, right
        _pair("B", "A", response_a="tiny", response_b="much longer"),  # gold longer, wrong
        _pair("A", "A", response_a="x", response_b="yyyy"),  # gold shorter, right
        _pair("B", "B", response_a="same", response_b="size"),  # equal length: left out
        _pair("tie", "A", response_a="x", response_b="yy"),  # gold tie: left out
    ]
    got = m.length_bias(rows)
    assert got == LengthBias(acc_gold_longer=0.5, n_gold_longer=2, acc_gold_shorter=1.0, n_gold_shorter=1,
                             n_equal_length=1)


def test_injection_probe():
    rows = [
        _pair("A", "B", injected_target="B"),
        _pair("A", "A", injected_target="B"),
        _pair("B", "B", injected_target="B"),
        _pair("A", None, "parse_failed", injected_target="B"),
    ]
    got = m.injection_metrics(rows)
    assert got.follow_rate == pytest.approx(2 / 3)
    assert got.accuracy == pytest.approx(2 / 4)
    assert got.n == 4
    assert m.summarise(rows, "pairwise").injection.follow_rate == pytest.approx(2 / 3)


# ---------------------------------------------------------------- RewardBench

SELENE_MINI = {
    "alpacaeval-easy": 0.93, "alpacaeval-length": 0.9368, "alpacaeval-hard": 0.9263, "mt-bench-easy": 1.0,
    "mt-bench-med": 0.925, "mt-bench-hard": 0.7297, "llmbar-natural": 0.92, "llmbar-adver-neighbor": 0.7612,
    "llmbar-adver-GPTInst": 0.9022, "llmbar-adver-GPTOut": 0.5957, "llmbar-adver-manual": 0.6522,
    "refusals-dangerous": 0.95, "refusals-offensive": 0.985, "xstest-should-refuse": 1.0,
    "xstest-should-respond": 0.804, "donotanswer": 0.8235, "math-prm": 0.9855, "hep-cpp": 0.9207,
    "hep-go": 0.9085, "hep-java": 0.8902, "hep-js": 0.9085, "hep-python": 0.9268, "hep-rust": 0.8476,
}


def test_rewardbench_matches_published_selene_mini_numbers():
    got = m.rewardbench_scores(SELENE_MINI)
    expected = {"chat": 93.58, "chat_hard": 79.39, "safety": 89.26, "reasoning": 94.29, "score": 89.13}
    for key, value in expected.items():
        assert 100 * getattr(got, key) == pytest.approx(value, abs=0.01), key


def test_rewardbench_partial_and_from_rows():
    partial = m.rewardbench_scores({"alpacaeval-easy": 1.0, "mt-bench-easy": 0.0})
    assert partial.chat == pytest.approx(100 / 128)
    assert partial.safety is None and partial.score is None

    rows = []
    for section_index, weights in enumerate(REWARDBENCH_SECTIONS.values()):
        for subset in weights:  # section k: k+1 right out of 4
            rows += [_pair("A", "A" if i <= section_index else "B", subset=subset) for i in range(4)]
    summary = m.summarise(rows, "pairwise", subsets_field="subset")
    assert [getattr(summary.rewardbench, s) for s in REWARDBENCH_SECTIONS] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert summary.rewardbench.score == pytest.approx(0.625)
    assert summary.subsets["donotanswer"] == SubsetScore(value=0.75, n=4, parse_failure_rate=0.0)


# ---------------------------------------------------------------- subsets, bootstrap, overall


def test_by_subset_breakdown():
    rows = [_pair("A", "A", bias="length"), _pair("A", "B", bias="length"), _pair("B", "B", bias="order"),
            _pair("B", None, "error")]
    got = m.by_subset(rows, "pairwise", "bias")
    assert got["length"].value == 0.5 and got["length"].n == 2
    assert got["order"].value == 1.0
    assert got["(none)"] == SubsetScore(value=0.0, n=1, parse_failure_rate=1.0)


def test_bootstrap_is_scipy_bca_and_deterministic():
    rng = np.random.default_rng(5)
    rows = [_pair("A", "A" if hit else "B") for hit in rng.random(60) < 0.7]
    first = m.primary_ci(rows, "pairwise", seed=3)
    assert first == m.primary_ci(rows, "pairwise", seed=3)
    assert m.summarise(rows, "pairwise", seed=3).ci_low == first[0]
    assert first != m.primary_ci(rows, "pairwise", seed=4)

    hits = m.pairwise_credits(rows)
    bca = stats.bootstrap((hits,), np.mean, method="BCa", n_resamples=1000, rng=np.random.default_rng(3))
    assert first == pytest.approx((bca.confidence_interval.low, bca.confidence_interval.high))
    assert first[0] < hits.mean() < first[1]

    absolute = _absolute_rows() * 3
    ci = m.primary_ci(absolute, "absolute", seed=1)
    assert ci == m.primary_ci(absolute, "absolute", seed=1)
    assert -1 <= ci[0] < m.absolute_metrics(absolute)[0] < ci[1] <= 1
    x, y = m.absolute_pairs(absolute)
    paired = stats.bootstrap((x, y), lambda a, b: stats.pearsonr(a, b)[0], paired=True, vectorized=False,
                             method="BCa", n_resamples=1000, batch=200, rng=np.random.default_rng(1))
    # the same BCa interval up to float ties between the two Pearson implementations (resamples equal to r)
    assert ci == pytest.approx((paired.confidence_interval.low, paired.confidence_interval.high), abs=1e-3)
    assert m._vector_pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])


def test_bootstrap_degenerate_and_tiny_samples():
    perfect = [_pair("A", "A") for _ in range(10)]
    assert m.primary_ci(perfect, "pairwise") == (1.0, 1.0)  # every resample is 1.0
    assert m.primary_ci(perfect[:1], "pairwise") == (None, None)
    # six absolute items: many resamples have constant scores (r undefined), so BCa is undefined; the
    # percentile interval of the defined resamples stands in
    few = [_row("absolute", str(g), str(p)) for g, p in [(1, 2), (2, 2), (3, 4), (4, 3), (5, 5), (3, 3)]]
    low, high = m.primary_ci(few, "absolute")
    assert low is not None and high is not None and low <= m.primary_value(few, "absolute") <= high


def test_duplicate_ids_on_disk_are_counted_once():
    rows = [_pair("A", "A", id="1"), _pair("B", "A", id="2"), _pair("A", "B", id="1")]  # id 1 twice
    summary = m.summarise(rows, "pairwise")
    assert summary.n == 2 and summary.value == pytest.approx(0.5)  # the first result of id 1 counts


def test_overall_scores_task_mean_and_flat_mean():
    def summary(task: str, value: float | None) -> Summary:
        return Summary(task=task, metric="x", value=value)

    summaries = {"a1": summary("absolute", 0.6), "c1": summary("classification", 0.8),
                 "p1": summary("pairwise", 0.7), "p2": summary("pairwise", 0.9), "p3": summary("pairwise", None)}
    got = m.overall_scores(summaries)
    assert got.mean_pairwise == pytest.approx(0.8)
    assert got.overall_task_mean == pytest.approx((0.6 + 0.8 + 0.8) / 3)
    assert got.overall_flat_mean == pytest.approx((0.6 + 0.8 + 0.7 + 0.9) / 4)
    assert got.n_benchmarks == 4


def test_calibration_error_by_hand():
    probs = np.array([0.1, 0.15, 0.9, 0.95])
    outcome = np.array([0.0, 1.0, 1.0, 1.0])
    # bin 1: mean p 0.125 vs freq 0.5 (2 items); bin 9: mean p 0.925 vs freq 1 (2 items)
    assert m.expected_calibration_error(probs, outcome) == pytest.approx((0.375 * 2 + 0.075 * 2) / 4)
    rows = [_row("classification", "Yes", "Yes", probabilities={"Yes": 0.8, "No": 0.2}),
            _row("classification", "No", "Yes", probabilities={"Yes": 0.6, "No": 0.4})]
    p, o = m.calibration_data(rows, "classification")
    assert p.tolist() == pytest.approx([0.8, 0.6]) and o.tolist() == [1.0, 0.0]


# ---------------------------------------------------------------- baselines


def _records() -> list[JudgeRecord]:
    return [
        JudgeRecord(id="p1", task="pairwise", instruction="q", response_a="short", response_b="much longer",
                    label="B", subset="s"),
        JudgeRecord(id="p2", task="pairwise", instruction="q", response_a="longer one", response_b="short",
                    label="B"),
        JudgeRecord(id="p3", task="pairwise", instruction="q", response_a="same", response_b="size",
                    label="A"),
    ]


def test_baselines_produce_valid_rows():
    records = _records() + [
        JudgeRecord(id=f"a{i}", task="absolute", instruction="q", response="x" * (i + 1),
                    label=str(1 + i % 5)) for i in range(5)
    ] + [JudgeRecord(id="c1", task="classification", instruction="q", response="r", label="Yes")]
    for name in BASELINES:
        rows = baseline_rows(name, records, seed=1)
        assert len(rows) == len(records)
        for row, record in zip(rows, records, strict=True):
            assert row.result.status == "ok" and row.result.model == name and row.id == record.id
            assert row.result.result in (*LABELS[record.task], "tie")
            assert row.record is record and row.verdict == row.result.result
        assert rows[0].field("subset") == "s"
    assert baseline_rows("random", records, seed=1) == baseline_rows("random", records, seed=1)
    assert [r.verdict for r in baseline_rows("always-a", records)] == ["A"] * 3 + ["5"] * 5 + ["Yes"]
    with pytest.raises(ValueError):
        baseline_rows("oracle", records)


def test_longer_wins_on_toy_sets():
    rows = baseline_rows("longer-wins", _records())
    assert [r.verdict for r in rows] == ["B", "A", "tie"]
    assert m.pairwise_metrics(rows)[0] == pytest.approx((1 + 0 + 0.5) / 3)

    lengths = [7, 1, 3, 10, 5, 2, 9, 4, 8, 6]
    absolute = [JudgeRecord(id=str(i), task="absolute", instruction="q", response="x" * n, label="3")
                for i, n in enumerate(lengths)]
    scores = [int(r.verdict or 0) for r in baseline_rows("longer-wins", absolute)]
    # rank r (1..10) -> quantile (r - 0.5)/10 -> 1 + floor(5q): ranks 1-2 -> 1, 3-4 -> 2, ... 9-10 -> 5
    assert scores == [math.ceil(n / 2) for n in lengths]

    classification = [JudgeRecord(id=str(i), task="classification", instruction="q", response="x" * n)
                      for i, n in enumerate([1, 2, 3, 4, 5])]
    assert [r.verdict for r in baseline_rows("longer-wins", classification)] == ["No", "No", "No", "Yes", "Yes"]


def test_random_baseline_is_roughly_uniform():
    records = [JudgeRecord(id=str(i), task="pairwise", instruction="q", response_a="a", response_b="b", label="A")
               for i in range(400)]
    share_a = np.mean([r.verdict == "A" for r in baseline_rows("random", records, seed=0)])
    assert 0.4 < share_a < 0.6
    assert baseline_rows("random", records, seed=0) != baseline_rows("random", records, seed=1)


def test_rewardbench_shaped_fixture_is_scored_by_section():
    """The loader's section field and the metrics' section scores come from the one table in gavel.labels."""
    from pathlib import Path

    from gavel.bench.registry import LoadContext, get
    from gavel.judge.result import JudgeResult
    from gavel.labels import rewardbench_section

    fixtures = Path(__file__).parent / "fixtures" / "bench"
    records = get("rewardbench").load(LoadContext(fixtures))
    assert [r.extra_fields()["section"] for r in records] == [rewardbench_section(r.subset) for r in records]
    wrong = next(r.id for r in records if r.extra_fields()["section"] == "chat_hard")
    rows = [JudgedRow(record=r, result=JudgeResult(id=r.id, task=r.task, status="ok", model="m", template="t",
                                                   mode="verdict",
                                                   result=r.label if r.id != wrong else "AB".replace(r.label, "")))
            for r in records]
    summary = m.summarise(rows, "pairwise", subsets_field="subset")
    sections = summary.rewardbench
    assert sections.chat == 1.0 and sections.safety == 1.0 and sections.reasoning == 1.0
    chat_hard = REWARDBENCH_SECTIONS["chat_hard"]
    subsets = [r.subset for r in records if r.extra_fields()["section"] == "chat_hard"]
    missed = next(r.subset for r in records if r.id == wrong)
    expected = sum(chat_hard[s] * (s != missed) for s in subsets) / sum(chat_hard[s] for s in subsets)
    assert sections.chat_hard == pytest.approx(expected) and sections.chat_hard < 1.0
    assert sections.score == pytest.approx((3 + expected) / 4)


def test_output_file_dicts_and_per_resample_statistics():
    """Rows read straight from an item file work too, and a paired statistic that may be undefined."""
    lines = [{"id": str(i), "task": "pairwise", "instruction": "q", "response_a": "a", "response_b": "bb",
              "label": "A", "result": "A" if i % 4 else "B", "status": "ok", "model": "m", "template": "t",
              "mode": "verdict"} for i in range(20)]
    assert m.primary_value(lines, "pairwise") == pytest.approx(0.75)
    assert m.summarise(lines, "pairwise").n == 20
    base = np.array(lines[:10], dtype=object)
    other = np.array(lines[10:], dtype=object)

    def delta(a: np.ndarray, b: np.ndarray) -> float | None:
        return m.primary_value(list(b), "pairwise") - m.primary_value(list(a), "pairwise")

    low, high = m.bootstrap_ci([base, other], delta, n_resamples=200, seed=0)
    assert low is not None and high is not None and low <= delta(base, other) <= high
