"""OpenAIBackend: against a real llama.cpp server, plus unit tests of its parsing and retry logic."""

from __future__ import annotations

import json
import math
import re
import socket
import time

import httpx
import openai
import pytest

from gavel.backends.base import Request, ServerUnavailable
from gavel.backends.openai_compat import (
    DOWN_AFTER,
    OpenAIBackend,
    is_context_error,
    label_mass,
    label_probs_from_logprobs,
    ollama_backend,
    ollama_base_url,
    verdict_position,
)
from gavel.labels import RESULT_TAG

PAIRWISE_LABELS = ("A", "B")
# A few-shot chat that makes even SmolLM2-135M answer in the ``**Result:** X`` format.
FEW_SHOT = [
    {"role": "system",
     "content": "You are a judge. Always answer with exactly '**Result:** A' or '**Result:** B'."},
    {"role": "user", "content": "Which answer is better?\nA: 2+2=4\nB: 2+2=5"},
    {"role": "assistant", "content": "**Result:** A"},
    {"role": "user", "content": "Which answer is better?\nA: The sky is green.\nB: The sky is blue."},
    {"role": "assistant", "content": "**Result:** B"},
    {"role": "user", "content": "Which answer is better?\nA: Paris is the capital of France.\n"
                                "B: Berlin is the capital of France."},
]


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _assert_coherent(reply, labels) -> None:
    """label_probs is a distribution over the labels, and only when the model wrote the result tag."""
    if reply.label_probs is None:
        return
    assert RESULT_TAG in reply.text
    assert set(reply.label_probs) == set(labels)
    assert math.isclose(sum(reply.label_probs.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= p <= 1.0 for p in reply.label_probs.values())


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# Real server
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend(openai_server: str) -> OpenAIBackend:
    with OpenAIBackend("smollm2", openai_server, api_key="EMPTY", timeout=60, concurrency=3) as b:
        yield b


@pytest.mark.server
def test_verdict_mode_reads_label_distribution(backend: OpenAIBackend) -> None:
    [reply] = backend.run([Request(messages=FEW_SHOT, labels=PAIRWISE_LABELS, critique=False)])
    assert reply.error is None
    assert reply.text.strip()
    assert reply.prompt_tokens > 0 and 0 < reply.completion_tokens <= 16
    assert reply.latency_s > 0
    # llama.cpp's server returns logprobs.content[i].top_logprobs; with this prompt the model
    # writes the tag, so the verdict distribution must come back.
    assert RESULT_TAG in reply.text
    assert reply.label_probs is not None
    _assert_coherent(reply, PAIRWISE_LABELS)


@pytest.mark.server
def test_critique_mode_respects_max_new_tokens(backend: OpenAIBackend) -> None:
    prompt = ("Evaluate the response. Write **Reasoning:** then **Result:** followed by Yes or No.\n"
              "Question: What is 2+2?\nResponse: 4")
    [reply] = backend.run([Request(messages=_user(prompt), labels=("Yes", "No"), critique=True,
                                   max_new_tokens=24)])
    assert reply.error is None and not reply.input_error
    assert reply.text.strip()
    assert reply.prompt_tokens > 0 and 0 < reply.completion_tokens <= 24
    assert reply.latency_s > 0
    _assert_coherent(reply, ("Yes", "No"))
    if RESULT_TAG not in reply.text:
        assert reply.label_probs is None


@pytest.mark.server
def test_concurrent_requests_keep_order(backend: OpenAIBackend) -> None:
    # Prompts of growing length: the server's prompt token counts reveal the order of the replies.
    requests = [Request(messages=_user("Say ok. " + "filler " * (8 * k)), labels=PAIRWISE_LABELS,
                        critique=False) for k in range(6)]
    replies = backend.run(requests)
    assert len(replies) == 6
    assert all(r.error is None for r in replies)
    counts = [r.prompt_tokens for r in replies]
    assert counts == sorted(counts) and len(set(counts)) == 6


@pytest.mark.server
def test_over_long_prompt_is_an_input_error_for_that_item_only(backend: OpenAIBackend) -> None:
    short = Request(messages=FEW_SHOT, labels=PAIRWISE_LABELS, critique=False)
    long = Request(messages=_user("word " * 6000), labels=PAIRWISE_LABELS, critique=False)
    first, middle, last = backend.run([short, long, short])
    assert middle.input_error is True
    assert middle.error and "context" in middle.error.lower()
    for reply in (first, last):
        assert reply.error is None and reply.text.strip()


def test_no_server_stops_at_start_with_the_url() -> None:
    url = f"http://127.0.0.1:{_unused_port()}/v1"
    started = time.perf_counter()
    with pytest.raises(ServerUnavailable, match=re.escape(f"no server answers at {url}")):
        OpenAIBackend("smollm2", url, api_key="EMPTY", max_retries=4)
    assert time.perf_counter() - started < 5  # one check, no retries


# ------------------------------------------------------------------------------------------------
# Unit tests: verdict position and label mass
# ------------------------------------------------------------------------------------------------


def test_verdict_position_after_split_tag() -> None:
    assert verdict_position(["**Reasoning:**", " fine.", "\n", "**", "Result", ":**", " B"]) == 6


def test_verdict_position_skips_whitespace_tokens() -> None:
    assert verdict_position(["**Result:**", " ", "\n", "A", "."]) == 3


def test_verdict_position_accepts_misplaced_colon_variant() -> None:
    assert verdict_position(["**", "Result", "**", ":", " Yes"]) == 4


def test_verdict_position_none_without_tag_or_verdict() -> None:
    assert verdict_position(["The", " answer", " is", " A"]) is None
    assert verdict_position(["**Result:**", " "]) is None
    assert verdict_position(["**Result:** A"]) is None  # verdict fused into the tag's token


def test_verdict_position_uses_first_tag() -> None:
    assert verdict_position(["**Result:**", " A", " **Result:**", " B"]) == 1


def test_label_mass_sums_surface_forms() -> None:
    top = [(" A", math.log(0.4)), ("A", math.log(0.1)), (" B", math.log(0.25)), (" C", math.log(0.2))]
    probs = label_mass(top, ("A", "B"))
    assert probs is not None
    assert math.isclose(probs["A"], 0.5 / 0.75) and math.isclose(probs["B"], 0.25 / 0.75)


def test_label_mass_lowercase_forms_and_missing_label() -> None:
    probs = label_mass([(" yes", math.log(0.3)), ("Yes", math.log(0.3)), (" maybe", -0.1)], ("Yes", "No"))
    assert probs == {"Yes": 1.0, "No": 0.0}


def test_label_mass_none_when_no_label_in_top() -> None:
    assert label_mass([(" The", -0.1), (" C", -2.0)], ("A", "B")) is None


def test_label_probs_from_openai_shaped_dicts() -> None:
    def entry(token: str, top: list[tuple[str, float]]) -> dict:
        return {"token": token, "logprob": top[0][1],
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}

    content = [entry("**", [("**", 0.0)]), entry("Result", [("Result", 0.0)]), entry(":**", [(":**", 0.0)]),
               entry(" B", [(" B", math.log(0.6)), (" A", math.log(0.2)), (" C", math.log(0.2))])]
    probs = label_probs_from_logprobs(content, ("A", "B"))
    assert probs is not None and math.isclose(probs["B"], 0.75) and math.isclose(probs["A"], 0.25)
    assert label_probs_from_logprobs(content[:3], ("A", "B")) is None
    assert label_probs_from_logprobs(None, ("A", "B")) is None


# ------------------------------------------------------------------------------------------------
# Unit tests: retry and error classification
# ------------------------------------------------------------------------------------------------

_REQ = httpx.Request("POST", "http://test/v1/chat/completions")


def _status_error(code: int, message: str = "boom") -> openai.APIStatusError:
    response = httpx.Response(code, request=_REQ, json={"error": {"message": message}})
    return openai.APIStatusError(message, response=response, body={"error": {"message": message}})


def test_error_classification() -> None:
    assert is_context_error(_status_error(400, "This model's maximum context length is 4096 tokens"))
    assert not is_context_error(_status_error(400, "top_logprobs is not supported"))
    assert not is_context_error(_status_error(500, "context"))


def _mock_backend(handler, **options) -> OpenAIBackend:
    """A backend whose HTTP goes to ``handler`` (which also answers the start-up ``GET /models``)."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": []})
        return handler(request)

    options.setdefault("max_retries", 3)
    return OpenAIBackend("m", "http://mock/v1", api_key="k",
                         http_client=httpx.Client(transport=httpx.MockTransport(route)), **options)


def _completion(text: str) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def test_logprobs_rejection_falls_back_once_and_is_remembered() -> None:
    seen: list[bool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asks = "logprobs" in json.loads(request.content)
        seen.append(asks)
        if asks:
            return httpx.Response(400, json={"error": {"message": "logprobs are not supported"}})
        return httpx.Response(200, json=_completion("**Result:** A"))

    backend = _mock_backend(handler)
    [reply] = backend.run([Request(messages=_user("x"), labels=PAIRWISE_LABELS, critique=False)])
    assert reply.error is None and reply.text == "**Result:** A" and reply.label_probs is None
    assert backend.logprobs is False
    backend.run([Request(messages=_user("y"), labels=PAIRWISE_LABELS, critique=False)])
    assert seen == [True, False, False]


def test_transient_errors_are_retried_by_the_openai_client() -> None:
    statuses = [429, 503]
    retry_counts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        retry_counts.append(request.headers.get("x-stainless-retry-count", ""))
        if statuses:  # the server's own hint: retry after 10 ms
            return httpx.Response(statuses.pop(0), headers={"retry-after-ms": "10"},
                                  json={"error": {"message": "slow down"}})
        return httpx.Response(200, json=_completion("ok"))

    backend = _mock_backend(handler)
    assert backend.client.max_retries == 3
    [reply] = backend.run([Request(messages=_user("x"), labels=PAIRWISE_LABELS, critique=False)])
    assert reply.error is None and reply.text == "ok" and reply.prompt_tokens == 5
    assert retry_counts == ["0", "1", "2"]  # the client's own retry loop, not a copy of it


def test_client_errors_are_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    [reply] = _mock_backend(handler).run([Request(messages=_user("x"), labels=PAIRWISE_LABELS, critique=False)])
    assert reply.error and "bad key" in reply.error and len(calls) == 1


def test_server_going_down_mid_run_stops_the_run() -> None:
    calls: list[int] = []
    down = False

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if down:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=_completion("**Result:** A"))

    backend = _mock_backend(handler, max_retries=0, concurrency=1)
    request = Request(messages=_user("x"), labels=PAIRWISE_LABELS, critique=False)
    assert [r.error for r in backend.run([request] * 2)] == [None, None]
    down = True
    replies = backend.run([request] * (DOWN_AFTER + 2))
    assert all(r.error for r in replies)
    assert len(calls) == 2 + DOWN_AFTER  # after DOWN_AFTER failures in a row, the rest fail without a call
    assert "no answer from http://mock/v1" in (replies[-1].error or "")
    with pytest.raises(ServerUnavailable, match="no server answers at http://mock/v1"):
        backend.run([request])


def test_start_check_accepts_a_server_without_a_models_list() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(404, json={"error": {"message": "not found"}})
        return httpx.Response(200, json=_completion("ok"))

    backend = OpenAIBackend("m", "http://mock/v1", api_key="k",
                            http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    [reply] = backend.run([Request(messages=_user("x"), labels=PAIRWISE_LABELS, critique=False)])
    assert reply.text == "ok"


# ------------------------------------------------------------------------------------------------
# Unit tests: Ollama helper
# ------------------------------------------------------------------------------------------------


def test_ollama_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert ollama_base_url() == "http://localhost:11434/v1"
    assert ollama_base_url("http://gpu:8080/") == "http://gpu:8080/v1"
    assert ollama_base_url("gpu") == "http://gpu:11434/v1"
    monkeypatch.setenv("OLLAMA_HOST", f"0.0.0.0:{_unused_port()}")
    url = ollama_base_url()
    assert url.startswith("http://localhost:") and url.endswith("/v1")
    with pytest.raises(ServerUnavailable, match=re.escape(url)):  # no Ollama running here
        ollama_backend("llama3.2:1b")


def test_gavel_judge_with_no_server_is_one_error_naming_the_url(tmp_path) -> None:
    from typer.testing import CliRunner

    from gavel.cli import app

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"task": "pairwise", "instruction": "q", "response_a": "a", "response_b": "b"})
                      + "\n")
    url = f"http://127.0.0.1:{_unused_port()}/v1"
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["judge", str(source), "-m", f"openai:m@{url}", "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and f"no server answers at {url}" in result.output
    assert "Traceback" not in result.output and time.perf_counter() - started < 10


@pytest.mark.server
def test_gavel_judge_stops_when_the_server_goes_down_mid_run(tmp_path) -> None:
    """A real llama.cpp server of its own, killed once the first rows are written: the run stops soon with one
    error naming the URL (exit 1), the rows written stay, and nothing else is lost."""
    import subprocess
    import sys
    import threading

    from conftest import _embedded_gguf_path, _free_port, _wait_until_serving
    from typer.testing import CliRunner

    from gavel.cli import app

    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "gavel.backends.llamacpp_server", "--model", str(_embedded_gguf_path()),
               "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", "1", "--logits_all", "true", "--verbose", "false"]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"task": "pairwise", "instruction": f"Question {i}: 2+{i}?",
                                          "response_a": str(2 + i), "response_b": str(3 + i)}) + "\n"
                              for i in range(60)))
    out = tmp_path / "out.jsonl"
    with log.open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(server, url, log)
            outcome: dict = {}
            worker = threading.Thread(target=lambda: outcome.update(result=CliRunner().invoke(
                app, ["judge", str(source), "-m", f"openai:smollm2@{url}", "--mode", "verdict", "-q", "-o", str(out)])))
            worker.start()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
                time.sleep(0.2)
            server.kill()
            killed = time.monotonic()
            worker.join(timeout=120)
        finally:
            server.kill()
            server.wait()
    result = outcome["result"]
    assert result.exit_code == 1, result.output
    assert f"no server answers at {url}" in result.output and "Traceback" not in result.output
    assert time.monotonic() - killed < 60  # not 60 rows x the client's retries
    lines = out.read_text().splitlines()
    assert 2 <= len(lines) < 60 and all(json.loads(line)["status"] != "error" for line in lines)
