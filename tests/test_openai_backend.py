"""OpenAIBackend: against a real llama.cpp server, plus unit tests of its parsing and retry logic."""

from __future__ import annotations

import json
import math
import socket

import httpx
import openai
import pytest

from gavel.backends.base import RESULT_TAG, Request
from gavel.backends.openai_compat import (
    OpenAIBackend,
    backoff_delay,
    call_with_retries,
    is_context_error,
    is_retryable,
    label_mass,
    label_probs_from_logprobs,
    ollama_backend,
    ollama_base_url,
    verdict_position,
)

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


@pytest.mark.server
def test_unreachable_server_gives_error_reply_after_retries() -> None:
    backend = OpenAIBackend("smollm2", f"http://127.0.0.1:{_unused_port()}/v1", api_key="EMPTY",
                            timeout=2, max_retries=2, backoff=0.01)
    [reply] = backend.run([Request(messages=_user("hi"), labels=PAIRWISE_LABELS, critique=False)])
    assert reply.error and "Connection" in reply.error
    assert reply.input_error is False and reply.text == "" and reply.label_probs is None


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


def test_retry_succeeds_after_two_transient_failures() -> None:
    failures = [openai.APIConnectionError(request=_REQ), _status_error(503)]
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    result = call_with_retries(flaky, max_retries=4, base_delay=1.0, sleep=sleeps.append, rng=lambda: 0.5)
    assert result == "ok"
    assert len(calls) == 3
    assert sleeps == [0.75, 1.5]  # equal jitter: half the ceiling plus rng * half


def test_retry_gives_up_after_max_retries() -> None:
    calls: list[int] = []

    def always_down() -> None:
        calls.append(1)
        raise openai.APITimeoutError(request=_REQ)

    with pytest.raises(openai.APITimeoutError):
        call_with_retries(always_down, max_retries=2, sleep=lambda _: None)
    assert len(calls) == 3


def test_no_retry_on_client_error() -> None:
    calls: list[int] = []

    def bad() -> None:
        calls.append(1)
        raise _status_error(401)

    with pytest.raises(openai.APIStatusError):
        call_with_retries(bad, max_retries=5, sleep=lambda _: None)
    assert len(calls) == 1


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_delay(k, 1.0, rng=lambda: 1.0) for k in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delay(10, 1.0, cap=5.0, rng=lambda: 0.0) == 2.5


def test_error_classification() -> None:
    assert is_retryable(_status_error(429)) and is_retryable(_status_error(502))
    assert not is_retryable(_status_error(400)) and not is_retryable(ValueError())
    assert is_context_error(_status_error(400, "This model's maximum context length is 4096 tokens"))
    assert not is_context_error(_status_error(400, "top_logprobs is not supported"))
    assert not is_context_error(_status_error(500, "context"))


def _mock_backend(handler) -> OpenAIBackend:
    backend = OpenAIBackend("m", "http://mock/v1", api_key="k", max_retries=3, backoff=0.001)
    backend.client = openai.OpenAI(base_url="http://mock/v1", api_key="k", max_retries=0,
                                   http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return backend


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


def test_rate_limit_is_retried_through_the_client() -> None:
    statuses = [429, 500]

    def handler(request: httpx.Request) -> httpx.Response:
        if statuses:
            return httpx.Response(statuses.pop(0), json={"error": {"message": "slow down"}})
        return httpx.Response(200, json=_completion("ok"))

    [reply] = _mock_backend(handler).run([Request(messages=_user("x"), labels=PAIRWISE_LABELS,
                                                  critique=False)])
    assert reply.error is None and reply.text == "ok" and reply.prompt_tokens == 5


# ------------------------------------------------------------------------------------------------
# Unit tests: Ollama helper
# ------------------------------------------------------------------------------------------------


def test_ollama_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert ollama_base_url() == "http://localhost:11434/v1"
    assert ollama_base_url("http://gpu:8080/") == "http://gpu:8080/v1"
    assert ollama_base_url("gpu") == "http://gpu:11434/v1"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11434")
    assert ollama_base_url() == "http://localhost:11434/v1"
    backend = ollama_backend("llama3.2:1b")
    assert backend.model == "llama3.2:1b" and backend.info.kind == "openai"
    assert str(backend.client.base_url).rstrip("/") == "http://localhost:11434/v1"
