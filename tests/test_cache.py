"""The judgment cache with the real embedded judge: hits cost no model call, any change that matters misses,
two processes fill one cache at once, a damaged file is bypassed."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import gavel
from gavel import Judge, JudgeRecord
from gavel.backends import load_backend
from gavel.backends.embedded import judge_adapter
from gavel.backends.threads import THREADS_ENV
from gavel.judge.cache import JudgmentCache
from gavel.judge.result import JudgeResult

pytestmark = pytest.mark.model

SRC = str(Path(gavel.__file__).resolve().parents[1])


def _records(prefix: str, n: int = 20) -> list[JudgeRecord]:
    """n absolute records; the same items under another id prefix are the same judgments."""
    return [JudgeRecord(id=f"{prefix}{i}", task="absolute", instruction=f"What is {i} + {i}?",
                        response=str(i + i) if i % 3 else f"I think it is {i * 3}.") for i in range(n)]


class CountingRun:
    """Counts the requests streamed to a real backend (the backend itself still runs them)."""

    def __init__(self, backend) -> None:
        self.requests = 0
        self._stream = backend.stream
        backend.stream = self

    def __call__(self, requests):
        def counted():
            for request in requests:
                self.requests += 1
                yield request

        return self._stream(counted())


@pytest.fixture(scope="module")
def backend():
    backend = load_backend(None, n_threads=1)
    yield backend
    backend.close()


def _fill(cache: Path, records: str) -> subprocess.Popen:
    """Another process judging records into the same cache file."""
    code = textwrap.dedent(f"""
        from gavel import Judge, JudgeRecord
        import json, sys
        records = [JudgeRecord.model_validate(r) for r in json.loads(sys.stdin.read())]
        judge = Judge(None, mode="verdict", cache={str(cache)!r})
        assert all(r.scored for r in judge.judge(records))
    """)
    env = {**os.environ, "PYTHONPATH": SRC, THREADS_ENV: "1"}
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, env=env)
    process.stdin.write(records.encode())
    process.stdin.close()
    return process


def test_two_processes_fill_one_cache_then_a_rerun_with_new_ids_makes_no_model_call(backend, tmp_path):
    cache = tmp_path / "judgments.db"
    records = _records("first-")

    halves = [json.dumps([r.model_dump(mode="json") for r in records[i::2]]) for i in (0, 1)]
    processes = [_fill(cache, half) for half in halves]
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    assert len(JudgmentCache(cache)) == 20

    judge = Judge(backend, mode="verdict", cache=cache)
    calls = CountingRun(backend)
    again = judge.judge(_records("second-"))
    assert calls.requests == 0
    assert judge.cache.hits == 20
    assert [r.id for r in again] == [f"second-{i}" for i in range(20)]

    fresh = Judge(backend, mode="verdict").judge(_records("third-")[:3])  # no cache: the model itself
    assert calls.requests == 3
    for cached, computed in zip(again[:3], fresh, strict=True):
        assert cached.result == computed.result
        assert cached.probabilities == pytest.approx(computed.probabilities, abs=1e-6)


def test_template_mode_and_settings_are_part_of_the_key(backend, tmp_path):
    cache = tmp_path / "judgments.db"
    records = _records("r-", 2)
    Judge(backend, mode="verdict", cache=cache).judge(records)
    calls = CountingRun(backend)
    for changed in (Judge(backend, mode="verdict", template="markdown", cache=cache),
                    Judge(backend, mode="critique", max_new_tokens=8, cache=cache),
                    Judge(backend, mode="verdict", retries=1, cache=cache),
                    Judge(backend, mode="verdict", max_new_tokens=100, cache=cache)):
        before = calls.requests
        changed.judge(records)
        assert calls.requests == before + 2
        assert changed.cache.hits == 0
    Judge(backend, mode="verdict", cache=cache).judge(records)
    assert calls.requests == 8  # the first settings again: hits


def test_an_adapter_file_changed_in_place_misses(tmp_path):
    from gguf import GGUFReader

    adapter = tmp_path / "adapter.gguf"
    shutil.copy(judge_adapter(), adapter)
    cache = tmp_path / "judgments.db"
    records = _records("a-", 2)
    spec = f"smollm2+{adapter}"
    with load_backend(spec, n_threads=1) as first:
        before = Judge(first, mode="verdict", cache=cache).judge(records)
    alpha = GGUFReader(adapter, "r+").fields["adapter.lora.alpha"]
    alpha.parts[-1][0] = alpha.parts[-1][0] / 2  # the same path, another adapter (half the LoRA scale)
    with load_backend(spec, n_threads=1) as second:
        judge = Judge(second, mode="verdict", cache=cache)
        after = judge.judge(records)
    assert judge.cache.hits == 0 and judge.cache.misses == 2
    assert [a.probabilities for a in after] != [b.probabilities for b in before]


def test_a_damaged_cache_file_is_reported_and_bypassed(backend, tmp_path, caplog):
    damaged = tmp_path / "judgments.db"
    damaged.write_bytes(b"not a database\n" * 100)
    content = damaged.read_bytes()
    with caplog.at_level(logging.WARNING):
        judge = Judge(backend, mode="verdict", cache=damaged)
        results = judge.judge(_records("d-", 2))
    assert all(r.scored for r in results)
    assert not judge.cache.active
    assert "cannot be used" in caplog.text and str(damaged) in caplog.text
    assert damaged.read_bytes() == content  # never overwritten


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    """The storage alone, many small writes from two processes racing on one file."""
    cache = tmp_path / "judgments.db"
    code = textwrap.dedent(f"""
        import sys
        from gavel.judge.cache import JudgmentCache
        from gavel.judge.result import JudgeResult
        cache = JudgmentCache({str(cache)!r})
        tag = sys.argv[1]
        for i in range(300):
            cache.put(f"{{tag}}-{{i}}", JudgeResult(id=str(i), task="absolute", result="3", status="logits",
                                                    model="m", template="t", mode="verdict"))
        assert cache.active
    """)
    env = {**os.environ, "PYTHONPATH": SRC}
    processes = [subprocess.Popen([sys.executable, "-c", code, tag], env=env) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    stored = JudgmentCache(cache)
    assert len(stored) == 600
    assert stored.get("a-299").result == "3" and stored.get("b-0") is not None


def test_a_new_file_another_connection_is_writing_waits_instead_of_bypassing(tmp_path):
    """SQLite answers "busy" at once (no busy timeout) when a new file is switched to WAL while another
    connection writes; CI once lost a process's whole cache to that answer."""
    cache = tmp_path / "judgments.db"
    writer = sqlite3.connect(cache, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    release = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    release.start()
    opened = JudgmentCache(cache)
    release.join()
    assert opened.active
    opened.put("k", JudgeResult(id="1", task="absolute", result="4", status="logits", model="m", template="t",
                                mode="verdict"))
    assert opened.get("k").result == "4"


def test_gavel_judge_and_bench_take_a_cache(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from gavel.cli import app

    monkeypatch.setenv(THREADS_ENV, "1")
    runner = CliRunner()
    quickstart = Path(__file__).resolve().parents[1] / "examples" / "quickstart.jsonl"
    cache = tmp_path / "judgments.db"
    outputs = []
    for run in ("one", "two"):
        out = tmp_path / f"{run}.jsonl"
        result = runner.invoke(app, ["judge", str(quickstart), "--mode", "verdict", "--cache", str(cache),
                                     "-o", str(out), "-q"])
        assert result.exit_code == 0, result.output
        outputs.append([json.loads(line) for line in out.read_text().splitlines()])
    assert "6 read back, 0 judged" in result.output
    assert outputs[0] == outputs[1]  # latencies included: read back, not judged again

    fixture = Path(__file__).parent / "fixtures" / "bench" / "generic" / "mini_bench.jsonl"
    data = tmp_path / "mini.jsonl"  # one task type per benchmark file
    data.write_text("".join(line + "\n" for line in fixture.read_text().splitlines()
                            if json.loads(line)["task"] == "pairwise"))
    items = []
    for run in ("one", "two"):
        out = tmp_path / f"bench-{run}"
        result = runner.invoke(app, ["bench", "--data", str(data), "--cache", str(cache), "-o", str(out)])
        assert result.exit_code == 0, result.output
        items.append((out / "items" / "mini" / "default" / "default.jsonl").read_text())
    assert items[0] == items[1]


def test_threads_sharing_one_judge_get_the_verdicts_of_one_thread(backend):
    """The local model runs one batch at a time (model_lock): threads may share a Judge, as Inspect's and GRPO's
    concurrent scorers do."""
    from concurrent.futures import ThreadPoolExecutor

    judge = Judge(backend, mode="verdict")
    records = _records("t-", 6)
    alone = judge.judge(records)
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(lambda r: judge.judge([r])[0], records))
    for one, other in zip(alone, together, strict=True):
        assert one.result == other.result
        assert one.probabilities == pytest.approx(other.probabilities, abs=1e-4)
