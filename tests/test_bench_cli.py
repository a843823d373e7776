"""`gavel bench` end to end with the real embedded model (``model``) on real benchmark rows (a few items cut from
the real files: tests/fixtures/bench/local)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gavel.backends.threads import THREADS_ENV
from gavel.cli import app

runner = CliRunner()
FIXTURE = Path(__file__).parent / "fixtures" / "bench" / "generic" / "mini_bench.jsonl"
LOCAL_DATA = Path(__file__).parent / "fixtures" / "bench" / "local"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "1")


def _bench(*args: str):
    result = runner.invoke(app, ["bench", *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.model
def test_bench_local_data_writes_report_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ("-b", "llmbar-natural,mt-bench", "--data-root", str(LOCAL_DATA), "--limit", "3", "--both-orders")
    _bench(*args, "-o", str(out))
    results = json.loads((out / "results.json").read_text())
    judges = results["benchmarks"]["llmbar-natural"]["judges"]
    judge = judges["default"]
    assert judge["metric"] == "accuracy" and judge["n"] == 3
    assert 0.0 <= judge["value"] <= 1.0
    assert judge["both_orders"]["consistency"] is not None and judge["both_orders"]["position_bias_a"] is not None
    assert {"baseline:random", "baseline:always-a", "baseline:longer-wins"} <= set(judges)
    report = (out / "report.md").read_text()
    assert "llmbar-natural" in report and "mt-bench" in report and "Both orders" in report
    assert (out / "bars.png").stat().st_size > 0
    items = out / "items" / "llmbar-natural" / "default" / "default.jsonl"
    lines = items.read_text().splitlines()
    assert len(lines) == 3 and all(len(json.loads(line)["result_by_order"]) == 2 for line in lines)
    before = items.stat().st_mtime_ns, items.read_bytes()
    _bench(*args, "-o", str(out))
    assert items.read_bytes() == before[1]  # resumed: nothing judged again


@pytest.mark.model
def test_bench_generic_file_formats_and_injection(tmp_path):
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    pairwise = tmp_path / "mine.jsonl"
    pairwise.write_text("".join(json.dumps({**r, "id": f"{r['id']}-{i}"}) + "\n"
                                for i in range(2) for r in records if r["task"] == "pairwise"))
    out = tmp_path / "run"
    _bench("--data", str(pairwise), "--formats", "default,json", "--injection", "-o", str(out))
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    assert "mine" in text and results["benchmarks"]["mine"]["judges"]["default"]["injection"]["n"] == 2
    assert (out / "items" / "mine" / "default" / "json.jsonl").exists()
    assert (out / "items" / "mine" / "default" / "default-injection.jsonl").exists()
    assert "json" in (out / "report.md").read_text()


def test_bench_rejects_unknown_benchmark_and_bad_spec(tmp_path):
    assert runner.invoke(app, ["bench", "-b", "no-such-bench", "-o", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["bench", "-j", "ollama", "-b", "hhh", "-o", str(tmp_path)]).exit_code == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--limit", "0"], "--limit must be at least 1 (got 0)"),
    (["--limit", "-1"], "--limit must be at least 1 (got -1)"),
    (["--suite", "nosuch"], "unknown suite 'nosuch'; known: local, paper"),
])
def test_bench_usage_errors_are_one_line_before_the_model_loads(tmp_path, args, message):
    # the judge names a server where nothing listens: had it been loaded, the error would be about the server
    dead = "openai:m@http://127.0.0.1:9/v1"
    result = runner.invoke(app, ["bench", "-j", dead, "-b", "hhh", *args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {message}"
    assert not (tmp_path / "out").exists()


def test_bench_stops_with_one_error_when_the_server_is_down(tmp_path):
    dead = "openai:m@http://127.0.0.1:9/v1"
    data = _labelled_pairs(tmp_path / "mine.jsonl", bad_row=False)
    result = runner.invoke(app, ["bench", "-j", dead, "--data", str(data), "-o", str(tmp_path / "out")],
                           catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "no server answers at http://127.0.0.1:9/v1" in result.output and "Traceback" not in result.output


def _labelled_pairs(path: Path, bad_row: bool) -> Path:
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines() if '"pairwise"' in line]
    rows = [json.dumps({**records[0], "id": f"p{i}", "label": "AB"[i % 2]}) for i in range(4)]
    if bad_row:
        rows[2] = json.dumps({**records[0], "id": "p2", "label": "maybe"})
    path.write_text("\n".join(rows) + "\n")
    return path


def test_two_data_files_or_a_data_file_and_a_benchmark_of_one_name_are_refused(tmp_path):
    """Benchmarks are named by file name: a second `x.jsonl` would silently overwrite the first one's items."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first, second = (_labelled_pairs(tmp_path / folder / "x.jsonl", bad_row=False) for folder in ("a", "b"))
    hhh = _labelled_pairs(tmp_path / "hhh.jsonl", bad_row=False)
    cases = [(["--data", str(first), "--data", str(second)], f"is also the name of --data {first}"),
             (["-b", "hhh", "--data", str(hhh)], "is also a registered benchmark")]
    for args, clash in cases:
        out = tmp_path / "out"
        result = runner.invoke(app, ["bench", *args, "-o", str(out)])
        assert result.exit_code == 2 and clash in result.output and "rename one of them" in result.output
        assert not out.exists()


@pytest.mark.model
def test_bench_data_carries_on_past_bad_rows_and_strict_refuses(tmp_path):
    data = _labelled_pairs(tmp_path / "mine.jsonl", bad_row=True)
    refused = runner.invoke(app, ["bench", "--data", str(data), "--strict", "-o", str(tmp_path / "strict")])
    assert refused.exit_code == 2 and f"{data}: 1 invalid row(s) (--strict)" in refused.output
    assert f"{data}, row 3, field 'label'" in refused.output

    out = tmp_path / "run"
    result = _bench("--data", str(data), "-o", str(out))
    assert "1 bad row(s) left out" in result.output
    entry = json.loads((out / "results.json").read_text())["benchmarks"]["mine"]
    assert entry["judges"]["default"]["n"] == 3
    assert [(e["row"], e["field"]) for e in entry["row_errors"]] == [(3, "label")]
    assert f"{data}, row 3, field 'label'" in (out / "report.md").read_text()


@pytest.mark.model
def test_bench_counts_one_result_per_id_whatever_is_on_disk(tmp_path):
    data = _labelled_pairs(tmp_path / "mine.jsonl", bad_row=False)
    out = tmp_path / "run"
    _bench("--data", str(data), "-o", str(out))
    first = json.loads((out / "results.json").read_text())["benchmarks"]["mine"]["judges"]["default"]
    items = out / "items" / "mine" / "default" / "default.jsonl"
    lines = items.read_text().splitlines()
    items.write_text("\n".join(lines + lines) + "\n")  # as if two runs had written into one output
    _bench("--data", str(data), "-o", str(out))
    again = json.loads((out / "results.json").read_text())["benchmarks"]["mine"]["judges"]["default"]
    assert first["n"] == again["n"] == 4
    assert (again["value"], again["ci_low"], again["ci_high"]) == (first["value"], first["ci_low"], first["ci_high"])


def test_bench_list_shows_registry():
    result = runner.invoke(app, ["bench", "--list"])
    assert result.exit_code == 0
    for name in ("rewardbench", "evalbiasbench", "auto-j", "infobench", "llm-aggrefact", "mt-bench", "flask"):
        assert name in result.output
