"""The `gavel bench` report writer: results.json, report.md and PNG plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gavel.bench.baselines import baseline_rows
from gavel.bench.metrics import reliability_points, summarise
from gavel.bench.report import confusion_counts, safe_name, write_report
from gavel.bench.results import BenchmarkResult, BenchResults, FormatSpread, RunMeta, read_results
from gavel.judge.records import RowError
from gavel.judge.result import JudgedRow
from gavel.labels import PRIMARY_METRIC, Task


def _judged(line: dict) -> JudgedRow:
    return JudgedRow.from_output({"model": "m", "template": "t", "mode": "verdict", **line})


def _pairwise_rows() -> list[JudgedRow]:
    rows = []
    for i in range(12):
        gold = "A" if i % 2 else "B"
        verdict = gold if i % 3 else ("A" if gold == "B" else "B")
        p_a = 0.8 if verdict == "A" else 0.2
        rows.append(_judged({"id": str(i), "task": "pairwise", "instruction": "q", "response_a": "a" * (i + 1),
                             "response_b": "bbbbbb", "label": gold, "result": verdict, "status": "ok",
                             "probabilities": {"A": p_a, "B": 1 - p_a}, "result_by_order": [verdict, verdict],
                             "orders_agree": True, "subset": "easy" if i < 6 else "hard"}))
    return rows


def _classification_rows() -> list[JudgedRow]:
    table = [("Yes", "Yes"), ("Yes", "No"), ("No", "No"), ("No", None), ("Yes", "Yes")]
    return [_judged({"id": str(i), "task": "classification", "instruction": "q", "response": "r" * (i + 1),
                     "label": gold, "result": verdict, "status": "ok" if verdict else "parse_failed"})
            for i, (gold, verdict) in enumerate(table)]


def _absolute_rows() -> list[JudgedRow]:
    pairs = [(1, 1), (2, 3), (3, 3), (4, 5), (5, 4), (3, 2)]
    return [_judged({"id": str(i), "task": "absolute", "instruction": "q", "response": "r" * (i + 1),
                     "label": str(gold), "result": str(pred), "status": "ok"}) for i, (gold, pred) in enumerate(pairs)]


@pytest.fixture
def bench_inputs():
    judge = "org/selene mini:q4"
    sources = {"toy-pair": (Task.pairwise, _pairwise_rows(), "subset"),
               "toy-class": (Task.classification, _classification_rows(), None),
               "toy-abs": (Task.absolute, _absolute_rows(), None)}
    rows, benchmarks = {}, {}
    for bench, (task, judged, field) in sources.items():
        rows[bench] = {judge: judged,
                       "longer-wins": baseline_rows("longer-wins", [r.record for r in judged])}
        benchmarks[bench] = BenchmarkResult(
            task=task, metric=PRIMARY_METRIC[task],
            judges={j: summarise(r, task, subsets_field=field) for j, r in rows[bench].items()})
    benchmarks["toy-class"].row_errors = [RowError(source="toy.jsonl", row=7, field="label", message="bad label")]
    results = BenchResults(
        meta=RunMeta(command="gavel bench --suite toy", seed=0, limit=12, date="2025-01-01"),
        benchmarks=benchmarks, overall={},
        formats={"toy-pair": {judge: FormatSpread(values={"selene": 0.75, "plain": 0.5, "json": 0.625},
                                                  spread=0.25)}})
    return judge, results, rows


def test_write_report_files(tmp_path, bench_inputs):
    judge, results, rows = bench_inputs
    written = write_report(tmp_path / "out", results, rows)

    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert read_results(tmp_path / "out") == written  # results.json is the typed results' dump
    assert set(data) >= {"meta", "benchmarks", "overall", "plots", "formats"}
    pair = data["benchmarks"]["toy-pair"]
    assert pair["task"] == "pairwise" and pair["metric"] == "accuracy"
    entry = pair["judges"][judge]
    for key in ("metric", "value", "ci_low", "ci_high", "n", "parse_failures", "parse_failure_rate"):
        assert key in entry
    assert entry["both_orders"]["consistency"] == 1.0 and entry["length_bias"]["n_gold_longer"] == 6
    assert entry["absolute"] is None and data["benchmarks"]["toy-abs"]["judges"][judge]["absolute"]["n_correlated"] == 6
    assert entry["value"] == pytest.approx(8 / 12)
    assert data["benchmarks"]["toy-class"]["judges"][judge]["parse_failure_rate"] == pytest.approx(0.2)
    assert data["benchmarks"]["toy-class"]["row_errors"][0]["row"] == 7
    overall = data["overall"][judge]
    values = [entry.judges[judge].value for entry in results.benchmarks.values()]
    assert overall["overall_flat_mean"] == pytest.approx(np.mean(values))
    assert "overall_task_mean" in overall
    assert data["formats"]["toy-pair"][judge]["spread"] == pytest.approx(0.25)

    report = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## Absolute — pearson", "## Classification — accuracy", "## Pairwise — accuracy",
                    "## Overall", "## Both orders", "## Length bias", "## Prompt formats", "## Subsets",
                    "## Rows not scored"):
        assert heading in report, heading
    assert "overall_task_mean" in report and "overall_flat_mean" in report
    assert f"| toy-pair | 12 | {results.benchmarks['toy-pair'].judges[judge].value:.3f} (" in report
    assert "pf 20.0%" in report
    assert "toy.jsonl, row 7, field 'label': bad label" in report
    assert f"| benchmark | n | {judge} | longer-wins |" in report  # models before baselines

    names = set(written.plots)
    judge_file = safe_name(judge)
    assert {"bars.png", f"confusion_toy-class_{judge_file}.png", f"confusion_toy-abs_{judge_file}.png",
            "confusion_toy-class_longer-wins.png", "calibration_toy-pair.png"} <= names
    assert not any(n.startswith("confusion_toy-pair") for n in names)
    for name in names:
        path = tmp_path / "out" / name
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_write_report_without_rows(tmp_path, bench_inputs):
    _, results, _ = bench_inputs
    written = write_report(tmp_path, results)
    assert written.plots == ["bars.png"]
    assert json.loads((tmp_path / "results.json").read_text())["benchmarks"]["toy-abs"]["metric"] == "pearson"


def test_confusion_counts_and_helpers():
    gold, pred, matrix = confusion_counts(_classification_rows(), "classification")
    assert gold == ["Yes", "No"] and pred == ["Yes", "No", "fail"]
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1]]
    assert safe_name("org/selene mini:q4") == "org_selene_mini_q4"
    mean_p, freq, count = reliability_points(np.array([0.05, 0.15, 0.12, 0.95]), np.array([0, 1, 0, 1.0]))
    assert mean_p.tolist() == pytest.approx([0.05, 0.135, 0.95])
    assert freq.tolist() == [0.0, 0.5, 1.0] and count.tolist() == [1, 2, 1]
