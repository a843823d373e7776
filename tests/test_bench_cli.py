"""`gavel bench` end to end with the real embedded model on real benchmark data (a few items)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gavel.cli import app

runner = CliRunner()
FIXTURE = Path(__file__).parent / "fixtures" / "bench" / "generic" / "mini_bench.jsonl"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("GAVEL_THREADS", "1")


def _bench(*args: str):
    result = runner.invoke(app, ["bench", *args])
    assert result.exit_code == 0, result.output
    return result


def test_bench_local_data_writes_report_and_resumes(tmp_path):
    out = tmp_path / "run"
    _bench("-b", "llmbar-natural,mt-bench", "--limit", "3", "--both-orders", "-o", str(out))
    results = json.loads((out / "results.json").read_text())
    judges = results["benchmarks"]["llmbar-natural"]["judges"]
    judge = judges["smollm2 (default)"]
    assert judge["metric"] == "accuracy" and judge["n"] == 3
    assert 0.0 <= judge["value"] <= 1.0
    assert "consistency" in judge and "position_bias_a" in judge
    assert {"baseline:random", "baseline:always-a", "baseline:longer-wins"} <= set(judges)
    report = (out / "report.md").read_text()
    assert "llmbar-natural" in report and "mt-bench" in report and "Both orders" in report
    assert (out / "bars.png").stat().st_size > 0
    items = out / "items" / "llmbar-natural" / "smollm2_default" / "default.jsonl"
    lines = items.read_text().splitlines()
    assert len(lines) == 3 and all(len(json.loads(line)["result_by_order"]) == 2 for line in lines)
    before = items.stat().st_mtime_ns, items.read_bytes()
    _bench("-b", "llmbar-natural,mt-bench", "--limit", "3", "--both-orders", "-o", str(out))
    assert items.read_bytes() == before[1]  # resumed: nothing judged again


def test_bench_generic_file_formats_and_injection(tmp_path):
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    pairwise = tmp_path / "mine.jsonl"
    pairwise.write_text("".join(json.dumps({**r, "id": f"{r['id']}-{i}"}) + "\n"
                                for i in range(2) for r in records if r["task"] == "pairwise"))
    out = tmp_path / "run"
    _bench("--data", str(pairwise), "--formats", "default,json", "--injection", "-o", str(out))
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    assert "mine" in text and "injection_follow_rate" in text
    assert (out / "items" / "mine" / "smollm2_default" / "json.jsonl").exists()
    assert (out / "items" / "mine" / "smollm2_default" / "default-injection.jsonl").exists()
    assert "json" in (out / "report.md").read_text()


def test_bench_rejects_unknown_benchmark_and_bad_spec(tmp_path):
    assert runner.invoke(app, ["bench", "-b", "no-such-bench", "-o", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["bench", "-j", "ollama", "-b", "hhh", "-o", str(tmp_path)]).exit_code == 2


def test_bench_list_shows_registry():
    result = runner.invoke(app, ["bench", "--list"])
    assert result.exit_code == 0
    for name in ("rewardbench", "evalbiasbench", "auto-j", "infobench", "llm-aggrefact", "mt-bench", "flask"):
        assert name in result.output
