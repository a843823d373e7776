"""The bench harness in its four steps (plan -> run -> score -> report), without a model: baselines only,
real files, typed results."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from gavel.bench.harness import BenchConfig, Job, load_targets, plan, read_judged, run_bench
from gavel.bench.results import read_results
from gavel.judge.records import JudgeRecord
from gavel.judge.result import JudgeResult, output_row

SRC = Path(__file__).resolve().parents[1] / "src" / "gavel"


def _pairs(n: int) -> list[dict]:
    return [{"id": f"p{i}", "task": "pairwise", "instruction": f"q{i}", "response_a": "a" * (i + 1),
             "response_b": "bbb", "label": "AB"[i % 2]} for i in range(n)]


def _write(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_plan_lists_every_file_grouped_by_judge(tmp_path):
    targets = load_targets([], [_write(tmp_path / "mine.jsonl", _pairs(4))], None, None, seed=0)
    config = BenchConfig(judges=["a.gguf", "b.gguf"], out_dir=tmp_path / "out", formats=("default", "json"),
                         injection=True)
    jobs = plan(config, targets)
    assert [(j.judge, j.fmt, j.injection) for j in jobs] == [
        ("a.gguf", "default", False), ("a.gguf", "default", True), ("a.gguf", "json", False),
        ("b.gguf", "default", False), ("b.gguf", "default", True), ("b.gguf", "json", False)]
    assert jobs[1].path == tmp_path / "out" / "items" / "mine" / "a.gguf" / "default-injection.jsonl"


def test_bad_rows_of_a_data_file_are_counted_and_reported(tmp_path):
    rows = _pairs(6)
    rows[2]["label"] = "C"  # row 3: bad label
    rows[4] = "{broken"  # row 5: not JSON
    data = _write(tmp_path / "mine.jsonl", rows)
    targets = load_targets([], [data], None, None, seed=0)
    assert len(targets[0].records) == 4 and [e.row for e in targets[0].row_errors] == [3, 5]
    results = run_bench(BenchConfig(judges=[], out_dir=tmp_path / "out"), targets)  # baselines: no model
    entry = results.benchmarks["mine"]
    assert entry.judges["baseline:always-a"].n == 4
    assert [(e.row, e.field) for e in entry.row_errors] == [(3, "label"), (5, None)]
    assert read_results(tmp_path / "out") == results  # results.json is the typed results' dump
    report = (tmp_path / "out" / "report.md").read_text()
    assert "mine: 2 row(s) not scored" in report and f"{data}, row 3, field 'label'" in report


def test_limit_below_one_is_refused_before_anything_loads(tmp_path):
    import pytest

    for limit in (0, -1):
        with pytest.raises(ValueError, match="--limit must be at least 1"):
            load_targets(["no-such-benchmark"], [], None, limit, seed=0)


def test_read_judged_keeps_one_row_per_id_and_skips_a_torn_tail(tmp_path):
    records = {r["id"]: JudgeRecord.model_validate(r) for r in _pairs(3)}

    def line(record_id: str, verdict: str) -> dict:
        result = JudgeResult(id=record_id, task="pairwise", result=verdict, status="ok", model="m", template="t",
                             mode="verdict")
        return output_row(records[record_id], result)

    # two runs wrote into one file: every id twice, then a torn last line
    path = _write(tmp_path / "items.jsonl", [line("p0", "A"), line("p1", "B"), line("p0", "B"), line("p1", "A"),
                                             json.dumps(line("p2", "A"))[:30]])
    rows = read_judged(path, records)
    assert [(r.id, r.result.result) for r in rows] == [("p0", "A"), ("p1", "B")]
    assert read_judged(tmp_path / "absent.jsonl", records) == []


def test_job_is_hashable_and_plain():
    job = Job("b", None, "default", False, Path("x.jsonl"))
    assert {job: 1}[Job("b", None, "default", False, Path("x.jsonl"))] == 1


def test_no_print_in_library_code():
    """Library code reports through return values, logging or the CLI's console, never print()."""
    offenders = []
    paths = [p for folder in ("bench", "judge", "backends") for p in (SRC / folder).rglob("*.py")]
    for path in [*paths, SRC / "labels.py", SRC / "io.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
