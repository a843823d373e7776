"""`gavel serve` as a process: refusing to start, its log, `gavel judge -m gavel+http://...`, SIGTERM under load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from conftest import _free_port, one_error_line
from typer.testing import CliRunner

from gavel.cli import app

pytestmark = [pytest.mark.model, pytest.mark.serve]

KEY = "k3y-that-must-never-be-logged-42"
RECORDS = [
    {"task": "absolute", "instruction": f"What is {i}+{i}?", "response": str(2 * i + i % 2)} for i in range(3)
] + [
    {"task": "classification", "instruction": "Is the sky blue on a clear day?", "response": "Yes."},
    {"task": "pairwise", "instruction": "Greet me.", "response_a": "Hello!", "response_b": "Go away."},
    {"task": "pairwise", "instruction": "2+2?", "response_a": "5", "response_b": "4", "label": "B"},
]


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "gavel.cli", "serve", "--port", str(port), "--mode", "verdict", *args]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gavel serve exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    pytest.fail(f"gavel serve did not answer within 90 s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("serve") / "server.log"
    process, url = _start([], log, env={"GAVEL_API_KEY": KEY})
    try:
        yield url, log
    finally:
        assert _stop(process) == 0


def test_gavel_judge_over_http_writes_the_same_file_as_the_local_model(keyed_server, tmp_path: Path) -> None:
    """The server's first work: both runs judge the same records in the same order from an empty context."""
    url, _ = keyed_server
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    env = {**os.environ, "GAVEL_API_KEY": KEY}
    outputs = {}
    for name, model in (("remote", ["-m", f"gavel+{url}"]), ("local", [])):
        outputs[name] = tmp_path / f"{name}.jsonl"
        done = subprocess.run([sys.executable, "-m", "gavel.cli", "judge", str(source), *model, "--mode", "verdict",
                               "-q", "-o", str(outputs[name])], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    remote, local = ([json.loads(line) for line in outputs[n].read_text().splitlines()] for n in ("remote", "local"))
    assert len(remote) == len(RECORDS) and all(row["status"] == "logits" for row in remote)
    for row in remote + local:
        row.pop("latency_s")
    assert remote == local  # verdicts, probabilities, statuses, model name: all of it
    settings = [json.loads(outputs[n].with_suffix(".run.json").read_text())["settings"] for n in ("remote", "local")]
    assert settings[0] == settings[1]


def test_asking_a_server_for_more_tokens_than_it_allows_is_one_usage_error(keyed_server, tmp_path: Path) -> None:
    url, _ = keyed_server
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(RECORDS[0]) + "\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["judge", str(source), "-m", f"gavel+{url}", "--max-new-tokens", "5000",
                                      "-o", str(out)], env={"GAVEL_API_KEY": KEY, "COLUMNS": "300"})
    error = one_error_line(result.output)
    assert result.exit_code == 2 and "max_new_tokens: 5000 is more than" in error and "allows (1024)" in error
    assert not out.exists()


def test_a_wrong_key_is_refused_and_no_key_is_ever_logged(keyed_server) -> None:
    url, log = keyed_server
    missing = httpx.post(f"{url}/v1/judge", json={"record": RECORDS[3]})
    wrong = httpx.post(f"{url}/v1/judge", json={"record": RECORDS[3]}, headers={"Authorization": f"Bearer {KEY}-2"})
    right = httpx.post(f"{url}/v1/judge", json={"record": RECORDS[3]}, headers={"Authorization": f"Bearer {KEY}"},
                       timeout=120)
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    time.sleep(0.5)  # let the log reach the file
    text = log.read_text()
    assert "missing or wrong API key" in text and '"POST /v1/judge HTTP/1.1" 200' in text
    assert KEY not in text and KEY[:12] not in text


def test_a_non_loopback_host_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    started = time.perf_counter()
    refused = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", str(_free_port())],
                                 env={"GAVEL_API_KEY": ""})
    empty = tmp_path / "key"
    empty.write_text("\n")
    empty_key = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--api-key-file", str(empty)])
    assert refused.exit_code == 2 and "--insecure" in refused.output and "Traceback" not in refused.output
    assert empty_key.exit_code == 2 and "API key file is empty" in empty_key.output
    assert time.perf_counter() - started < 10  # before any model loads


def test_bad_serve_options_a_taken_port_and_an_unknown_host_are_one_line_before_the_model_loads(monkeypatch):
    import gavel.backends as backends

    monkeypatch.setattr(backends, "_build_backend", lambda *a: pytest.fail("the model must not load"))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    cases = [(["--port", "70000"], "--port: Input should be less than or equal to 65535"),
             (["--log-level", "loud"], "--log-level: use one of critical, error, warning, info"),
             (["--max-batch", "0"], "--max-batch: Input should be greater than or equal to 1"),
             (["--max-records", "0"], "--max-records: Input should be greater than or equal to 1"),
             (["--port", str(taken.getsockname()[1])], "cannot listen there (Address already in use)"),
             (["--host", "no-such-host.invalid", "--insecure"], "--host no-such-host.invalid --port 8080: cannot"),
             (["-m", "gavel+http://127.0.0.1:8", "--batch", "2", "--port", "0"], "--batch applies to local models")]
    for args, message in cases:
        result = CliRunner().invoke(app, ["serve", *args], env={"GAVEL_API_KEY": ""})
        assert result.exit_code == 2 and message in one_error_line(result.output), result.output
    taken.close()


def test_sigterm_under_load_answers_every_request_and_exits_0(tmp_path: Path) -> None:
    """Critique mode (a few seconds a record) so that the work queued outlasts the grace period anywhere."""
    process, url = _start(["--max-batch", "2", "--grace", "3"], tmp_path / "server.log")
    records = [[{**RECORDS[i % 6], "id": f"{n}-{i}"} for i in range(n % 3, n % 3 + 2)] for n in range(12)]
    settings = {"mode": "critique", "max_new_tokens": 48}

    async def load() -> list[httpx.Response | Exception]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            sent = [asyncio.ensure_future(client.post("/v1/judge", json={"records": r, "settings": settings}))
                    for r in records]
            deadline = time.monotonic() + 120
            while (await client.get("/healthz")).json()["queue_depth"] < 20:  # all 12 requests (24 items) are in
                assert time.monotonic() < deadline, "the requests never reached the queue"
                await asyncio.sleep(0.05)
            await asyncio.wait(sent, return_when=asyncio.FIRST_COMPLETED)  # one answered: the worker is busy
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            try:
                late = await client.post("/v1/judge", json={"records": records[0]})  # a new request, now
            except httpx.TransportError as exc:
                late = exc
            return [*await asyncio.gather(*sent, return_exceptions=True), late]

    started = time.monotonic()
    answers = asyncio.run(load())
    code = process.wait(timeout=60)
    *accepted, late = answers
    statuses = [a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in accepted]
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    for answer, sent in zip(accepted, records, strict=True):
        if answer.status_code == 200:
            assert [r["id"] for r in answer.json()["results"]] == [r["id"] for r in sent]
        else:
            assert "shutting down" in answer.json()["detail"] and answer.headers["Retry-After"]
    assert isinstance(late, httpx.TransportError) or late.status_code == 503
    assert code == 0 and time.monotonic() - started < 180
