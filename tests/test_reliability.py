"""Issue 7: what `gavel judge` does with hostile input and faults. One test (or more) per numbered case.

Real files throughout; the real embedded model (llama.cpp) where a case needs a model, the real loopback
llama.cpp server where it needs an HTTP backend. docs/reliability.md lists the cases and the behaviour.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import one_error_line

from gavel.backends.base import Backend, BackendInfo, Reply, Request
from gavel.backends.threads import THREADS_ENV
from gavel.io import OutputError, OutputLocked, read_jsonl
from gavel.judge.engine import Judge, _verdict
from gavel.judge.parsing import parse_output
from gavel.judge.records import LABELS, Task, read_rows
from gavel.judge.result import Mode, Status
from gavel.judge.runner import RunInterrupted, read_results, run_file, settings_path
from gavel.settings import DEFAULTS, JudgeSettings

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


# -- helpers ----------------------------------------------------------------------------------------

class FourBackend(Backend):
    """Scores every item with the first label's complement: a distribution peaked on '4' (or the last label)."""

    batch_size = 2

    def __init__(self, name: str = "four") -> None:
        self.info = BackendInfo(name=name, kind="fake")
        self.calls = 0

    def run(self, requests):
        self.calls += len(requests)
        return [Reply(label_probs={label: (0.7 if label in ("4", "No", "B") else 0.3 / (len(r.labels) - 1))
                                   for label in r.labels}) for r in requests]


def _rows(n: int, **extra) -> list[dict]:
    return [{"id": f"r{i}", "task": "absolute", "instruction": f"What is {i} + {i}?", "response": str(2 * i),
             **extra} for i in range(1, n + 1)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]




def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, THREADS_ENV: "1"}


# -- 1. one writer per output; one result per id ----------------------------------------------------

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gavel.io import JsonlAppender
    writer = JsonlAppender(Path(sys.argv[1]), lock=True)
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def lock_holder(tmp_path):
    """A separate process holding the output lock, as a running `gavel judge` does."""
    processes = []

    def hold(path: Path) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], env=_env(),
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "locked"
        processes.append(process)
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


def test_1_second_writer_is_refused_naming_the_first(tmp_path, lock_holder, gavel):
    source = _write(tmp_path / "in.jsonl", _rows(3))
    out = tmp_path / "out.jsonl"
    holder = lock_holder(out)
    with pytest.raises(OutputLocked, match=f"pid {holder.pid}"):
        run_file(Judge(FourBackend(), mode="verdict"), source, out)
    result = gavel("judge", source, "-o", out, "--mode", "verdict", "-q")  # refused before the model loads
    assert result.exit_code == 2
    line = one_error_line(result.output)
    assert f"is being written by pid {holder.pid}" in line and str(out) in line
    assert out.read_text() == ""  # nothing written by either refused run
    holder.kill()
    holder.wait()
    summary = run_file(Judge(FourBackend(), mode="verdict"), source, out)  # the lock died with its holder
    assert summary.judged == 3


def test_1_two_processes_at_once_write_each_id_once(tmp_path):
    """Two real runs on the same output started together: one runs, the other is refused; no id twice."""
    source = _write(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out.jsonl"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from gavel.io import OutputError
        from gavel.judge.engine import Judge
        from gavel.judge.runner import run_file
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_reliability import FourBackend
        try:
            print(run_file(Judge(FourBackend(), mode="verdict"), Path(sys.argv[1]), Path(sys.argv[2])).judged)
        except OutputError as exc:
            print("refused:", exc)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(source), str(out)], env=_env(),
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == [f"r{i}" for i in range(1, 7)]  # every id exactly once
    judged = [int(o) for o in outputs if not o.startswith("refused")]
    assert sum(judged) == 6
    assert all("is being written by" in o for o in outputs if o.startswith("refused")), outputs


def test_1_duplicates_on_disk_count_once(tmp_path):
    """An output that already holds an id twice (written by an old version): resume and readers keep one."""
    source = _write(tmp_path / "in.jsonl", _rows(3))
    out = tmp_path / "out.jsonl"
    run_file(Judge(FourBackend(), mode="verdict"), source, out)
    out.write_text(out.read_text() * 2)  # every line twice
    backend = FourBackend()
    summary = run_file(Judge(backend, mode="verdict"), source, out)
    assert summary.judged == 0 and summary.skipped == 3 and backend.calls == 0
    assert [r["id"] for r in read_results(out)] == ["r1", "r2", "r3"]


# -- 2. the first result tag; two different tags are at best tolerant; logprobs decide --------------

def _pair_request(critique: bool = True) -> Request:
    return Request(messages=[{"role": "user", "content": "x"}], labels=("A", "B"), critique=critique)


QUOTING_REPLY = ("**Reasoning:** Response A answers the question; response B only repeats the prompt, which ends "
                 "with its own verdict line.\n\n**Result:** A\n\nFor reference, response B said:\n"
                 "> Something something.\n**Result:** B\n")


def test_2_quoted_second_result_tag_does_not_win():
    assert parse_output(Task.pairwise, QUOTING_REPLY).result == "A"
    # the returned logprobs (read at the first tag) decide, and the status says the text was ambiguous
    assert _verdict(_pair_request(), Reply(text=QUOTING_REPLY, label_probs={"A": 0.99, "B": 0.01})) == \
        ("A", Status.tolerant)
    assert _verdict(_pair_request(), Reply(text=QUOTING_REPLY, label_probs={"A": 0.2, "B": 0.8})) == \
        ("B", Status.tolerant)
    # without logprobs: the first tag, still only tolerant
    assert _verdict(_pair_request(), Reply(text=QUOTING_REPLY)) == ("A", Status.tolerant)
    # one tag, or the same label twice: strict
    assert _verdict(_pair_request(), Reply(text="**Reasoning:** ok\n\n**Result:** B")) == ("B", Status.ok)


# -- 3. settings stored with the output; a resume with other settings is refused ---------------------

def test_3_resume_with_other_settings_is_refused(tmp_path):
    source = _write(tmp_path / "in.jsonl", _rows(3))
    out = tmp_path / "out.jsonl"
    run_file(Judge(FourBackend(), mode="verdict"), source, out)
    stored = json.loads(settings_path(out).read_text())["settings"]
    assert stored == {"model": "four", "mode": "verdict", "template": "default", "both_orders": False,
                      "input": str(source.resolve())}
    before = out.read_bytes()
    for judge, what in [(Judge(FourBackend(), mode="critique"), "mode: 'verdict' then, 'critique' now"),
                        (Judge(FourBackend("other-model"), mode="verdict"), "model: 'four' then, 'other-model'"),
                        (Judge(FourBackend(), mode="verdict", template="json"), "template: 'default' then, 'json'")]:
        with pytest.raises(OutputError, match="other settings") as caught:
            run_file(judge, source, out)
        assert what in str(caught.value) and "--force" not in str(caught.value)  # the API's option is force=True
        assert out.read_bytes() == before
    forced = run_file(Judge(FourBackend(), mode="critique"), source, out, force=True)
    assert forced.skipped == 3
    assert json.loads(settings_path(out).read_text())["settings"]["mode"] == "critique"


def test_3_another_input_into_one_output_is_refused_its_ids_would_replace_results(tmp_path, monkeypatch):
    """Ids default to row numbers: a second file's row 1 would pass for an edit of the first file's row 1."""
    first = _write(tmp_path / "a.jsonl", _rows(2))
    other = _write(tmp_path / "b.jsonl", [{**row, "instruction": row["instruction"] + "?"} for row in _rows(2)])
    out = tmp_path / "out.jsonl"
    run_file(Judge(FourBackend(), mode="verdict"), first, out)
    before = out.read_bytes()
    with pytest.raises(OutputError, match="other settings") as caught:
        run_file(Judge(FourBackend(), mode="verdict"), other, out)
    assert f"input: '{first.resolve()}' then, '{other.resolve()}' now" in str(caught.value)
    assert out.read_bytes() == before
    monkeypatch.chdir(tmp_path)  # the same file named another way: the same input, resumed
    assert run_file(Judge(FourBackend(), mode="verdict"), Path("a.jsonl"), out).skipped == 2


def test_3_critique_resume_with_other_repetition_penalty_is_refused(tmp_path):
    source = _write(tmp_path / "in.jsonl", _rows(2))
    out = tmp_path / "out.jsonl"
    run_file(Judge(FourBackend(), mode="critique"), source, out)
    assert json.loads(settings_path(out).read_text())["settings"]["repetition_penalty"] == DEFAULTS.repetition_penalty
    with pytest.raises(OutputError, match="other settings") as caught:
        run_file(Judge(FourBackend(), mode="critique", repetition_penalty=1.0), source, out)
    assert f"repetition_penalty: {DEFAULTS.repetition_penalty} then, 1.0 now" in str(caught.value)


@pytest.mark.model
def test_3_cli_refuses_other_mode_and_bench_inherits_it(tmp_path, gavel):
    from gavel.bench.harness import BenchConfig, BenchTarget, run_bench
    from gavel.judge.records import JudgeRecord

    source = _write(tmp_path / "in.jsonl", _rows(2))
    out = tmp_path / "out.jsonl"
    assert gavel("judge", source, "-o", out, "--mode", "verdict", "-q").exit_code == 0
    again = gavel("judge", source, "-o", out, "--mode", "critique", "-q")
    assert again.exit_code == 2
    assert "mode: 'verdict' then, 'critique' now" in one_error_line(again.output)
    assert "or --force to add to it anyway" in one_error_line(again.output)  # gavel judge has --force
    forced = gavel("judge", source, "-o", out, "--mode", "critique", "--force", "-q")
    assert forced.exit_code == 0, forced.output

    records = [JudgeRecord.model_validate({**r, "label": 4}) for r in _rows(2)]
    target = BenchTarget("tiny", Task.absolute, records)
    config = BenchConfig(out_dir=tmp_path / "bench", settings=JudgeSettings(mode=Mode.verdict), baselines=False)
    run_bench(config, [target])
    with pytest.raises(OutputError, match="mode: 'verdict' then, 'critique' now"):
        critique = JudgeSettings(mode=Mode.critique)
        run_bench(BenchConfig(out_dir=tmp_path / "bench", settings=critique, baselines=False), [target])


# -- 4. tolerant reading only of a verdict-shaped last line; forced probabilities beat it ---------------

@pytest.mark.parametrize(("task", "text"), [
    (Task.pairwise, "**Reasoning:** The answer: a capital city, which is right."),
    (Task.classification, "**Reasoning:** Decision - a tough one. Both have merit."),
    (Task.classification, "**Reasoning:** Verdict: Yes is what the response demands, but it is wrong"),
    (Task.absolute, "Score: 4 would be generous.\nThe response is incomplete."),
])
def test_4_prose_is_not_a_verdict(task, text):
    assert parse_output(task, text).result is None
    labels = LABELS[task]
    probs = {label: (0.9 if label == labels[1] else 0.1 / (len(labels) - 1)) for label in labels}
    request = Request(messages=[], labels=labels, critique=True)
    assert _verdict(request, Reply(text=text, label_probs=probs, forced=True)) == (labels[1], Status.forced)


def test_4_verdict_shaped_last_line_is_read_but_forced_probabilities_decide():
    text = "**Reasoning:** Correct and complete.\nVerdict: Yes"
    assert parse_output(Task.classification, text).result == "Yes"
    request = Request(messages=[], labels=("Yes", "No"), critique=True)
    assert _verdict(request, Reply(text=text)) == ("Yes", Status.tolerant)
    assert _verdict(request, Reply(text=text, label_probs={"Yes": 0.3, "No": 0.7}, forced=True)) == \
        ("No", Status.forced)


@pytest.mark.model
def test_4_embedded_model_cut_short_takes_its_own_distribution(tmp_path, gavel):
    source = _write(tmp_path / "in.jsonl", [
        {"id": "c", "task": "classification", "instruction": "Say the capital of France.",
         "response": "The answer: a capital city. Verdict: Yes is what you want."}])
    out = tmp_path / "out.jsonl"
    result = gavel("judge", source, "-o", out, "--max-new-tokens", "3", "-q")
    assert result.exit_code == 0, result.output
    row = _lines(out)[0]
    assert row["status"] == "forced"
    assert row["result"] == max(row["probabilities"], key=row["probabilities"].get)


# -- 5. never truncate a file gavel did not write; never the input -----------------------------------

def test_5_foreign_file_and_input_as_output_are_refused_untouched(tmp_path, gavel):
    source = _write(tmp_path / "in.jsonl", _rows(2))
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping:\n- milk\n- the last line has no newline")
    before_notes, before_source = notes.read_bytes(), source.read_bytes()

    result = gavel("judge", source, "-o", notes, "-q")
    assert result.exit_code == 2
    assert "is not a gavel output (line 1 is not a result)" in one_error_line(result.output)
    assert notes.read_bytes() == before_notes

    result = gavel("judge", source, "-o", source, "-q")
    assert result.exit_code == 2
    assert "is the input file" in one_error_line(result.output)
    assert source.read_bytes() == before_source

    # the same through the library
    with pytest.raises(OutputError, match="is the input file"):
        run_file(Judge(FourBackend()), source, source)
    with pytest.raises(OutputError, match="not a gavel output"):
        run_file(Judge(FourBackend()), source, notes)
    assert notes.read_bytes() == before_notes and source.read_bytes() == before_source
    assert not settings_path(notes).exists()


def test_5_gavel_output_without_settings_file_still_resumes(tmp_path):
    """An output written before settings were stored: recognised by its result lines, its tail repaired."""
    source = _write(tmp_path / "in.jsonl", _rows(3))
    out = tmp_path / "out.jsonl"
    run_file(Judge(FourBackend(), mode="verdict"), source, out)
    settings_path(out).unlink()
    out.write_bytes(out.read_bytes()[:-10])  # torn last line
    summary = run_file(Judge(FourBackend(), mode="verdict"), source, out)
    assert summary.judged == 1 and summary.skipped == 2
    assert [r["id"] for r in _lines(out)] == ["r1", "r2", "r3"]


# -- 6. invalid UTF-8 is a row error --------------------------------------------------------------------

@pytest.mark.model
def test_6_invalid_utf8_line_is_a_row_error(tmp_path, gavel):
    source = tmp_path / "in.jsonl"
    lines = [json.dumps(r).encode() for r in _rows(3)]
    lines[1] = lines[1].replace(b"What", b"Wh\xe9t")  # latin-1, not UTF-8
    source.write_bytes(b"\n".join(lines) + b"\n")
    errors = [r.error for r in read_rows(source) if r.error]
    at = lines[1].index(b"\xe9") + 1
    assert [str(e) for e in errors] == [f"{source}, row 2: not valid UTF-8 (byte 0xe9 at byte {at})"]
    out = tmp_path / "out.jsonl"
    result = gavel("judge", source, "-o", out, "--mode", "verdict", "-q")
    assert result.exit_code == 1
    assert [r["id"] for r in _lines(out)] == ["r1", "r3"]
    assert f"row error: {source}, row 2: not valid UTF-8" in result.output

    csv = tmp_path / "in.csv"
    csv.write_bytes(b"id,task,instruction,response\na,absolute,Hi,Hello\nb,absolute,Caf\xe9?,Yes\n")
    rows = list(read_rows(csv))
    assert rows[0].record is not None
    assert str(rows[1].error) == f"{csv}, row 2, field 'instruction': not valid UTF-8"


# -- 8. empty responses are judged; missing or non-string ones are not -------------------------------

@pytest.mark.model
def test_8_empty_responses_are_judged(tmp_path, gavel):
    source = _write(tmp_path / "in.jsonl", [
        {"id": "abs", "task": "absolute", "instruction": "Name a prime number.", "response": ""},
        {"id": "pair", "task": "pairwise", "instruction": "Name a prime number.", "response_a": "7",
         "response_b": ""},
        {"id": "missing", "task": "absolute", "instruction": "Name a prime number."},
        {"id": "number", "task": "absolute", "instruction": "Name a prime number.", "response": 7},
    ])
    out = tmp_path / "out.jsonl"
    result = gavel("judge", source, "-o", out, "--mode", "verdict", "-q")
    assert result.exit_code == 1  # the two bad rows
    rows = {r["id"]: r for r in _lines(out)}
    assert set(rows) == {"abs", "pair"}
    assert rows["abs"]["response"] == "" and rows["abs"]["status"] == "logits" and rows["abs"]["result"] in "12345"
    assert rows["pair"]["response_b"] == "" and rows["pair"]["result"] in ("A", "B")
    assert "row 3, field 'response': required for task 'absolute'" in result.output
    assert "row 4, field 'response': Input should be a valid string" in result.output


# -- 9. outputs that cannot be written; an input folder that is not a dataset ---------------------------

def test_9_unwritable_outputs_fail_before_the_model_loads(tmp_path, gavel, monkeypatch):
    import gavel.judge.engine as engine

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(engine.Judge, "__init__", no_model)
    source = _write(tmp_path / "in.jsonl", _rows(1))
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    (tmp_path / "folder").mkdir()
    cases = {
        tmp_path / "folder": "is a folder",
        a_file / "out.jsonl": "is a file, not a folder",
        a_file / "deeper" / "out.jsonl": "is a file, not a folder",
        Path("/proc/sys/gavel-out.jsonl"): "cannot be written: permission denied",
    }
    for out, message in cases.items():
        result = gavel("judge", source, "-o", out, "-q")
        assert result.exit_code == 2, (out, result.output)
        assert message in one_error_line(result.output), out
    labelled = _write(tmp_path / "labelled.jsonl", [{**row, "label": "4"} for row in _rows(2)])
    for out in (a_file, a_file / "bench"):  # gavel bench writes a folder
        result = gavel("bench", "--data", labelled, "-o", out)
        assert result.exit_code == 2 and "is a file, not a folder" in one_error_line(result.output), result.output


def test_9_read_only_file_system(tmp_path, gavel):
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a read-only file system needs root")
    try:
        source = _write(tmp_path / "in.jsonl", _rows(1))
        result = gavel("judge", source, "-o", mount_point / "out.jsonl", "-q")
        assert result.exit_code == 2
        assert "the file system is read-only" in one_error_line(result.output)
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_9_input_folder_not_saved_by_datasets(tmp_path, gavel):
    folder = tmp_path / "records"
    folder.mkdir()
    _write(folder / "a.jsonl", _rows(1))
    result = gavel("judge", folder, "-q")
    assert result.exit_code == 2
    assert "is a folder but not a dataset saved by `datasets`" in one_error_line(result.output)


# -- 11. models that cannot load fail fast with a plain message -----------------------------------------

def test_11_hub_id_without_network_and_empty_model_folder(tmp_path, gavel, monkeypatch):
    source = _write(tmp_path / "in.jsonl", _rows(1))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    result = gavel("judge", source, "-m", "nobody/nomodel", "-o", tmp_path / "o.jsonl", "-q")
    assert time.perf_counter() - start < 20
    assert result.exit_code == 2
    assert "nobody/nomodel: not a local folder and the hub is unreachable" in one_error_line(result.output)

    empty = tmp_path / "empty-model"
    empty.mkdir()
    result = gavel("judge", source, "-m", empty, "-o", tmp_path / "o.jsonl", "-q")
    assert result.exit_code == 2
    assert f"no model files in {empty}" in one_error_line(result.output)


def test_11_hub_really_unreachable_fails_fast(tmp_path, monkeypatch):
    """No HF_HUB_OFFLINE: the host cannot be reached (no network here; a blackhole endpoint elsewhere)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    source = _write(tmp_path / "in.jsonl", _rows(1))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "gavel.cli", "judge", str(source), "-m", "nobody/nomodel",
                             "-o", str(tmp_path / "o.jsonl"), "-q"], env=_env() | {"HF_ENDPOINT": "https://hub.invalid"},
                            capture_output=True, text=True, timeout=120)
    assert time.perf_counter() - start < 60
    assert result.returncode == 2
    assert "not a local folder and the hub is unreachable" in one_error_line(result.stderr)


# -- 13. the context check counts every token the context will hold -----------------------------------

def _largest_prompts(count, limit: int, max_new: int) -> tuple[Request, Request]:
    """(the largest prompt the old check passed, the largest the full count passes) for a 'count' function."""
    from gavel.labels import REASONING_TAG, RESULT_TAG

    def request(words: int) -> Request:
        return Request(messages=[{"role": "user", "content": "Judge this. " + "apple " * words}],
                       labels=("Yes", "No"), critique=True, max_new_tokens=max_new)

    old = max(w for w in range(200, limit) if count(request(w), "") + max_new <= limit)
    new = max(w for w in range(200, old + 1) if count(request(w), REASONING_TAG + "\n\n" + RESULT_TAG)
              + max_new + 1 <= limit)
    assert new < old  # the tags and the verdict token take room the old check did not count
    return request(old), request(new)


@pytest.mark.model
def test_13_critique_context_check_counts_the_tags():
    from gavel.backends.embedded import embedded_gguf
    from gavel.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(embedded_gguf(), n_ctx=512, n_threads=1)
    try:
        old_ok, fits = _largest_prompts(
            lambda req, tail: len(backend._encode(backend.render(req.messages) + tail)), 512, 64)
        reply = backend.run([old_ok])[0]
        assert reply.input_error and reply.error.startswith("input is")  # refused at once, not mid-decode
        reply = backend.run([fits])[0]
        assert reply.error is None and reply.label_probs is not None  # the largest that passes runs through
    finally:
        backend.close()


@pytest.mark.model
def test_13_transformers_counts_the_tags_too():
    import torch

    from gavel.backends import load_backend

    torch.set_num_threads(1)
    backend = load_backend("hf:smollm2", batch_size=1)
    backend.context_length = 400
    try:
        def count(req, tail):
            return len(backend.tokenizer.encode(backend.render(req.messages) + tail, add_special_tokens=False))

        old_ok, fits = _largest_prompts(count, 400, 16)
        reply = backend.run([old_ok])[0]
        assert reply.input_error and reply.error.startswith("input is")
        reply = backend.run([fits])[0]
        assert reply.error is None and reply.label_probs is not None
    finally:
        backend.close()


# -- 14. a CSV rubric cell that starts with '{' must be JSON ------------------------------------------

def test_14_broken_json_rubric_cell_is_a_row_error(tmp_path):
    import pandas as pd

    path = tmp_path / "items.csv"
    pd.DataFrame([
        {"id": "ok", "task": "absolute", "instruction": "2+2?", "response": "4",
         "rubric": json.dumps({"objective": "Is it right?"})},
        {"id": "bad", "task": "absolute", "instruction": "2+2?", "response": "4",
         "rubric": '{"objective": "Is it right?'},
        {"id": "text", "task": "absolute", "instruction": "2+2?", "response": "4", "rubric": "Is it right?"},
    ]).to_csv(path, index=False)
    rows = list(read_rows(path))
    assert rows[0].record.rubric.objective == "Is it right?"
    assert rows[1].record is None
    assert str(rows[1].error).startswith(f"{path}, row 2, field 'rubric': starts with '{{' but is not a JSON object")
    assert rows[2].record.rubric.objective == "Is it right?"


# -- 15. smaller cases ------------------------------------------------------------------------------------

def test_15_bom_json_error_column_and_label_4_5(tmp_path):
    source = tmp_path / "in.jsonl"
    good = json.dumps(_rows(1)[0])
    source.write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n" + b'{"id": "x", "task": }\n'
                       + json.dumps({**_rows(2)[1], "label": 4.5}).encode() + b"\n")
    first, broken, half = list(read_rows(source))
    assert first.record is not None and first.record.id == "r1"  # the BOM does not cost row 1
    assert str(broken.error) == f"{source}, row 2: invalid JSON at column 21: Expecting value"
    assert str(half.error) == f"{source}, row 3, field 'label': '4.5' is not a score from 1 to 5"
    clean = tmp_path / "bom.jsonl"
    clean.write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n")
    assert read_jsonl(clean) == [_rows(1)[0]]  # the plain reader bench loaders use


def test_15_all_parse_failed_exits_1_with_a_summary_line(tmp_path, gavel, openai_server):
    source = _write(tmp_path / "in.jsonl", _rows(2))
    out = tmp_path / "out.jsonl"
    # two generated tokens: no result tag, and the server's logprobs hold no verdict position
    result = gavel("judge", source, "-m", f"openai:smollm2@{openai_server}", "--max-new-tokens", "2", "-o", out,
                   "-q")
    assert [r["status"] for r in _lines(out)] == ["parse_failed", "parse_failed"]
    assert result.exit_code == 1, result.output
    assert "no result could be read from any of the 2 rows judged (all parse_failed)" in result.output


def test_15_interrupt_keeps_every_finished_row(tmp_path):
    seen = []

    def stop_after_three(result):
        seen.append(result.id)
        if len(seen) == 3:
            raise KeyboardInterrupt

    source = _write(tmp_path / "in.jsonl", [{"id": "bad", "task": "absolute"}, *_rows(9)])
    out = tmp_path / "out.jsonl"
    with pytest.raises(RunInterrupted) as caught:
        run_file(Judge(FourBackend(), mode="verdict"), source, out, on_result=stop_after_three)
    assert caught.value.summary.interrupted and caught.value.summary.judged == 3
    assert [r["id"] for r in _lines(out)] == ["r1", "r2", "r3"]  # written as each finished
    assert [e.row for e in caught.value.summary.row_errors] == [1]


@pytest.mark.model
def test_15_ctrl_c_on_the_cli_saves_rows_and_the_error_file(tmp_path):
    # enough rows that the run cannot finish before the signal, however fast the judge is
    rows = [{"id": "bad", "task": "absolute", "instruction": "no response"}, *_rows(400)]
    source = _write(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "gavel.cli", "judge", str(source), "-o", str(out), "--max-new-tokens", "24",
               "-q"]
    # a shell's background job starts with SIGINT ignored, and Python keeps it so: give the child the default back
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()  # never leave a judge running after a failed test
    assert process.returncode == 130, stderr
    done = _lines(out)  # whole lines only
    assert len(done) >= 2 and len({r["id"] for r in done}) == len(done)
    assert f"rows judged now are in {out}" in stderr
    errors = _lines(out.with_suffix(".errors.jsonl"))
    assert [(e["row"], e["field"]) for e in errors] == [(1, "response")]
