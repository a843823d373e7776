"""Backend contract: the generation settings of a Request (temperature, output length, repetition penalty)
reach every backend's model call, so a retry that samples really samples. Runs each backend class that can run
here on the real embedded model: llama.cpp and transformers in-process, and the OpenAI-compatible backend against
the real llama.cpp server on loopback, its requests seen on the wire through a recording httpx transport.
(vLLM needs a CUDA GPU and is not installed here.)"""

from __future__ import annotations

import json

import httpx
import pytest

from gavel.backends import load_backend
from gavel.backends.base import Request
from gavel.backends.openai_compat import VERDICT_MAX_TOKENS, OpenAIBackend
from gavel.settings import DEFAULTS

REQUESTS = [
    Request(messages=[{"role": "user", "content": "Is 2+2=4? Answer Yes or No."}], labels=("Yes", "No"),
            critique=True, max_new_tokens=6, temperature=0.0, repetition_penalty=1.0),
    Request(messages=[{"role": "user", "content": "Is 2+2=5? Answer Yes or No."}], labels=("Yes", "No"),
            critique=True, max_new_tokens=5, temperature=0.7),
    Request(messages=[{"role": "user", "content": "Which is right, A: 4 or B: 5?"}], labels=("A", "B"),
            critique=False, max_new_tokens=7, temperature=0.7),
]


class RecordingTransport(httpx.BaseTransport):
    """Forwards to the real server and keeps every JSON body sent; ``down`` makes it refuse connections."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.bodies: list[dict] = []
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.content:
            self.bodies.append(json.loads(request.content))
        return self.inner.handle_request(request)


@pytest.mark.server
def test_openai_backend_sends_each_requests_settings(openai_server: str) -> None:
    transport = RecordingTransport()
    with OpenAIBackend("smollm2", openai_server, http_client=httpx.Client(transport=transport),
                       concurrency=1) as backend:
        replies = backend.run(REQUESTS)
    assert [r.error for r in replies] == [None] * 3
    sent = [(b["temperature"], b["max_tokens"]) for b in transport.bodies]
    assert sent == [(0.0, 6), (0.7, 5), (0.7, VERDICT_MAX_TOKENS)]


def _recording(obj, name: str, calls: list[dict]) -> None:
    """Wrap ``obj.name`` so every call's keyword arguments are kept, then passed on unchanged."""
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    setattr(obj, name, wrapper)


@pytest.mark.model
def test_llamacpp_backend_samples_with_each_requests_settings() -> None:
    calls: list[dict] = []
    with load_backend(None, n_threads=1) as backend:
        _recording(backend.llm, "generate", calls)
        replies = backend.run(REQUESTS)
    assert all(r.error is None for r in replies)
    assert [c["temp"] for c in calls] == [0.0, 0.7]  # the critique requests; verdict mode generates nothing
    assert [c["top_k"] for c in calls] == [1, 0]  # greedy, then sampling over the whole vocabulary
    assert [c["repeat_penalty"] for c in calls] == [1.0, DEFAULTS.repetition_penalty]
    assert [r.completion_tokens for r in replies[:2]] <= [6 + 1, 5 + 1]  # max_new_tokens, plus the verdict


@pytest.mark.model
def test_transformers_backend_samples_with_each_requests_settings() -> None:
    import torch

    torch.set_num_threads(1)
    calls: list[dict] = []
    with load_backend("hf:smollm2", batch_size=1) as backend:
        _recording(backend.model, "generate", calls)
        replies = backend.run(REQUESTS)
    assert all(r.error is None for r in replies)
    settings = sorted((c["max_new_tokens"], c["do_sample"], c.get("temperature"), c["repetition_penalty"])
                      for c in calls)
    assert settings == [(5, True, 0.7, DEFAULTS.repetition_penalty), (6, False, None, 1.0)]
