"""Batch runs into JSONL: resume by id, torn-line repair, errors kept apart, safe interruption."""

from __future__ import annotations

import json

import pytest

from gavel.backends.base import Backend, BackendInfo, Reply
from gavel.io import repair_jsonl
from gavel.judge.engine import Judge
from gavel.judge.result import Status
from gavel.judge.runner import errors_path, run_file, write_errors


class CountingBackend(Backend):
    """Scores every absolute item 4 (verdict distribution); fails prompts containing a marker."""

    batch_size = 3

    def __init__(self, fail_marker: str | None = None) -> None:
        self.info = BackendInfo(name="counting", kind="fake")
        self.fail_marker = fail_marker
        self.prompts: list[str] = []

    def run(self, requests):
        replies = []
        for request in requests:
            prompt = request.messages[0]["content"]
            self.prompts.append(prompt)
            if self.fail_marker and self.fail_marker in prompt:
                replies.append(Reply(error="server said 500"))
            else:
                probs = {label: (0.6 if label == "4" else 0.1) for label in request.labels}
                replies.append(Reply(label_probs=probs, prompt_tokens=50, completion_tokens=1))
        return replies


def _rows(n: int, **extra) -> list[dict]:
    return [{"id": f"r{i}", "task": "absolute", "instruction": f"question number {i}", "response": f"answer {i}",
             **extra} for i in range(1, n + 1)]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _lines(path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_output_rows_hold_input_and_result(tmp_path):
    source = _write(tmp_path / "in.jsonl", _rows(2, origin="unit"))
    out = tmp_path / "out.jsonl"
    summary = run_file(Judge(CountingBackend(), mode="verdict"), source, out)
    assert summary.judged == 2 and summary.skipped == 0 and summary.failed == 0
    assert summary.statuses == {"logits": 2} and summary.results == {"4": 2}
    assert summary.prompt_tokens == 100
    rows = _lines(out)
    assert [r["id"] for r in rows] == ["r1", "r2"]
    assert rows[0]["origin"] == "unit" and rows[0]["instruction"] == "question number 1"
    assert rows[0]["result"] == "4" and rows[0]["status"] == "logits" and rows[0]["model"] == "counting"
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0)


def test_resume_skips_done_ids(tmp_path):
    source = _write(tmp_path / "in.jsonl", _rows(5))
    out = tmp_path / "out.jsonl"
    backend = CountingBackend()
    first = run_file(Judge(backend, mode="verdict"), source, out)
    assert first.judged == 5
    calls = len(backend.prompts)
    second = run_file(Judge(backend, mode="verdict"), source, out)
    assert second.judged == 0 and second.skipped == 5
    assert len(backend.prompts) == calls  # nothing sent to the model
    assert len(_lines(out)) == 5

    _write(source, _rows(7))  # new rows appended to the input: only they are judged
    third = run_file(Judge(backend, mode="verdict"), source, out)
    assert third.judged == 2 and third.skipped == 5
    assert [r["id"] for r in _lines(out)] == [f"r{i}" for i in range(1, 8)]


def test_torn_last_line_is_repaired_and_rejudged(tmp_path):
    source = _write(tmp_path / "in.jsonl", _rows(4))
    out = tmp_path / "out.jsonl"
    run_file(Judge(CountingBackend(), mode="verdict"), source, out)
    data = out.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    out.write_bytes(data[:last_start + 25])  # a crash in the middle of writing r4's line

    assert repair_jsonl(out) == {"r1", "r2", "r3"}
    assert out.read_bytes() == data[:last_start]  # the torn tail was cut off

    out.write_bytes(data[:last_start + 25])
    backend = CountingBackend()
    summary = run_file(Judge(backend, mode="verdict"), source, out)
    assert summary.judged == 1 and summary.skipped == 3
    assert len(backend.prompts) == 1 and "question number 4" in backend.prompts[0]
    rows = _lines(out)  # every line parses
    assert [r["id"] for r in rows] == ["r1", "r2", "r3", "r4"]


def test_repair_of_missing_and_clean_files(tmp_path):
    assert repair_jsonl(tmp_path / "absent.jsonl") == set()
    clean = _write(tmp_path / "clean.jsonl", [{"id": 1}, {"id": "b"}, {"no_id": True}])
    before = clean.read_bytes()
    assert repair_jsonl(clean) == {"1", "b"}
    assert clean.read_bytes() == before


def test_errors_kept_apart_from_output(tmp_path):
    rows = _rows(4)
    rows[1] = {"id": "r2", "task": "absolute", "instruction": "q"}  # no response
    rows[2]["response"] = "FAIL-ME please"
    source = _write(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    summary = run_file(Judge(CountingBackend(fail_marker="FAIL-ME"), mode="verdict"), source, out)
    assert summary.judged == 2 and summary.failed == 2
    assert [r["id"] for r in _lines(out)] == ["r1", "r4"]
    assert all(r["status"] != Status.error.value for r in _lines(out))

    path = write_errors(out, summary.row_errors)
    assert path == errors_path(out) == tmp_path / "out.errors.jsonl"
    errors = _lines(path)
    assert [(e["row"], e["id"], e["field"]) for e in errors] == [(2, "r2", "response"), (3, "r3", None)]
    assert errors[0]["source"] == str(source)
    assert errors[1]["message"] == "server said 500"
    assert str(summary.row_errors[0]) == f"{source}, row 2, field 'response': required for task 'absolute'"

    # a re-run retries the failed row once the backend works, and the error file goes away
    again = run_file(Judge(CountingBackend(), mode="verdict"), source, out)
    assert again.judged == 1 and again.skipped == 2 and again.failed == 1  # r2 is still invalid input
    assert [r["id"] for r in _lines(out)] == ["r1", "r4", "r3"]
    assert write_errors(out, []) is None
    assert not errors_path(out).exists()


def test_duplicate_ids_reported(tmp_path):
    rows = _rows(3)
    rows.append({**rows[0], "response": "a different answer"})
    source = _write(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    summary = run_file(Judge(CountingBackend(), mode="verdict"), source, out)
    assert summary.judged == 3
    assert len(summary.row_errors) == 1
    error = summary.row_errors[0]
    assert (error.row, error.id, error.field) == (4, "r1", "id")
    assert "duplicate id 'r1'" in str(error) and str(error).startswith(f"{source}, row 4, field 'id'")
    assert [r["id"] for r in _lines(out)] == ["r1", "r2", "r3"]
    assert _lines(out)[0]["response"] == "answer 1"  # the first occurrence is the one judged


def test_interrupted_run_leaves_whole_lines_and_resumes(tmp_path):
    source = _write(tmp_path / "in.jsonl", _rows(7))
    out = tmp_path / "out.jsonl"
    seen = []

    def stop_after_two(result):
        seen.append(result.id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_file(Judge(CountingBackend(), mode="verdict"), source, out, on_result=stop_after_two)
    assert out.read_bytes().count(b"\n") == 2
    assert [r["id"] for r in _lines(out)] == ["r1", "r2"]

    backend = CountingBackend()
    summary = run_file(Judge(backend, mode="verdict"), source, out)
    assert summary.judged == 5 and summary.skipped == 2
    assert len(backend.prompts) == 5
    assert not any("question number 1\n" in p or "question number 2\n" in p for p in backend.prompts)
    rows = _lines(out)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(1, 8)]
    assert len({r["id"] for r in rows}) == 7
