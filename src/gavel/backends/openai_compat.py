"""Backend for any OpenAI-compatible chat-completions server.

Works with hosted APIs and with local servers (Ollama, ``vllm serve``, llama.cpp's server,
``python -m llama_cpp.server``). Requests are sent concurrently; each is retried with exponential
backoff and jitter on connection errors, timeouts, 429 and 5xx. When the server returns token
logprobs, the verdict distribution is read at the first generated token after ``**Result:**``.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import openai
from openai import OpenAI

from gavel.backends.base import (
    RESULT_STOPS,
    Backend,
    BackendInfo,
    Reply,
    Request,
    label_variants,
    normalise,
)

T = TypeVar("T")

#: Tokens generated in verdict mode: enough for ``**Result:** <label>`` and a little slack.
VERDICT_MAX_TOKENS = 16
TOP_LOGPROBS = 20
OLLAMA_DEFAULT_HOST = "http://localhost:11434"


# --------------------------------------------------------------------------------------------
# Retry with exponential backoff and jitter
# --------------------------------------------------------------------------------------------


def is_retryable(exc: BaseException) -> bool:
    """Transient failures worth another try: no connection, timeout, 408/409/429 and any 5xx."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def backoff_delay(
    attempt: int, base: float, cap: float = 30.0, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): ``base * 2**attempt`` with equal jitter."""
    ceiling = min(cap, base * 2**attempt)
    return ceiling / 2 + rng() * ceiling / 2


def _retry_after(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` hint in seconds, when it sent a numeric one."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def call_with_retries(
    fn: Callable[[], T],
    max_retries: int,
    base_delay: float = 0.5,
    retryable: Callable[[BaseException], bool] = is_retryable,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Call ``fn``; on a retryable error wait (backoff + jitter) and try again, at most ``max_retries`` times.

    The last error, or the first non-retryable one, is raised.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if attempt >= max_retries or not retryable(exc):
                raise
            delay = backoff_delay(attempt, base_delay, rng=rng)
            hint = _retry_after(exc)
            sleep(min(max(delay, hint), 60.0) if hint is not None else delay)
            attempt += 1


# --------------------------------------------------------------------------------------------
# Reading the verdict distribution from token logprobs
# --------------------------------------------------------------------------------------------


def verdict_position(tokens: Sequence[str], tags: Sequence[str] = RESULT_STOPS) -> int | None:
    """Index of the first non-blank generated token that starts at or after the end of the result tag.

    ``tokens`` are the generated token strings in order. Returns None when no tag was generated,
    when nothing but whitespace follows it, or when the verdict is fused into the token that closes
    the tag (then no position holds the verdict on its own).
    """
    text = "".join(tokens)
    found = [(text.find(tag), tag) for tag in tags if tag in text]
    if not found:
        return None
    index, tag = min(found)
    end = index + len(tag)
    start = 0
    for i, token in enumerate(tokens):
        stop = start + len(token)
        if start >= end and token.strip():
            return i
        if start < end < stop and token[end - start:].strip():
            return None
        start = stop
    return None


def label_mass(top: Sequence[tuple[str, float]], labels: Sequence[str]) -> dict[str, float] | None:
    """Distribution over ``labels`` from one position's top (token, logprob) pairs.

    A label's mass is the summed probability of the tokens that equal one of its surface forms after
    stripping whitespace; the masses are normalised over the labels. None when no label is present.
    """
    logprobs: dict[str, float] = {}
    for label in labels:
        forms = {form.strip() for form in label_variants(label)}
        mass = sum(math.exp(lp) for token, lp in top if token.strip() in forms)
        logprobs[label] = math.log(mass) if mass > 0 else -math.inf
    if all(lp == -math.inf for lp in logprobs.values()):
        return None
    return normalise(logprobs)


def label_probs_from_logprobs(
    content: Sequence[Any] | None, labels: Sequence[str]
) -> dict[str, float] | None:
    """Verdict distribution from an OpenAI ``choice.logprobs.content`` list (objects or dicts)."""
    if not content:
        return None
    tokens = [_field(item, "token") or "" for item in content]
    position = verdict_position(tokens)
    if position is None:
        return None
    top = [(_field(t, "token") or "", float(_field(t, "logprob")))
           for t in _field(content[position], "top_logprobs") or []]
    return label_mass(top, labels)


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


# --------------------------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else None
        if message:
            return str(message)
    return str(exc)


def is_context_error(exc: BaseException) -> bool:
    """A 400-like rejection because the prompt (plus output room) exceeds the context window."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 413, 422):
        return False
    text = _error_text(exc).lower()
    return "logprob" not in text and any(word in text for word in ("context", "length", "token"))


def _is_bad_request(exc: BaseException) -> bool:
    return isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 422)


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------


class OpenAIBackend(Backend):
    """Judge through an OpenAI-compatible ``/chat/completions`` endpoint.

    The API key is ``api_key`` when given, else the ``api_key_env`` environment variable, else
    ``"EMPTY"`` (what local servers without authentication accept). ``backoff`` is the first retry
    delay in seconds; it doubles on every further retry.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120,
        max_retries: int = 4,
        concurrency: int = 4,
        temperature: float = 0.0,
        logprobs: bool = True,
        backoff: float = 0.5,
    ) -> None:
        key = api_key or os.environ.get(api_key_env) or "EMPTY"
        self.model = model
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        self.max_retries = max_retries
        self.concurrency = max(1, concurrency)
        self.temperature = temperature
        self.logprobs = logprobs
        self.backoff = backoff
        self.batch_size = self.concurrency * 2
        self.info = BackendInfo(name=model, kind="openai", extra={"base_url": base_url})

    def run(self, requests: Sequence[Request]) -> list[Reply]:
        """Send all requests, at most ``concurrency`` at a time; replies keep the input order."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._judge_one, requests))

    def close(self) -> None:
        self.client.close()

    def _judge_one(self, request: Request) -> Reply:
        started = time.perf_counter()
        try:
            reply = self._complete(request)
        except Exception as exc:
            message = f"{type(exc).__name__}: {_error_text(exc)}"
            reply = Reply(error=message, input_error=is_context_error(exc))
        reply.latency_s = time.perf_counter() - started
        return reply

    def _complete(self, request: Request) -> Reply:
        """One request; falls back once to no logprobs when the server refuses them with a 400."""
        want_logprobs = self.logprobs
        try:
            response = self._create(request, want_logprobs)
        except Exception as exc:
            if not (want_logprobs and _is_bad_request(exc)) or is_context_error(exc):
                raise
            response = self._create(request, False)
            self.logprobs = False  # this server refuses logprobs: stop asking
            want_logprobs = False
        return self._to_reply(response, request, want_logprobs)

    def _create(self, request: Request, with_logprobs: bool) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_new_tokens if request.critique else VERDICT_MAX_TOKENS,
            "temperature": self.temperature,
        }
        if with_logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return call_with_retries(lambda: self.client.chat.completions.create(**kwargs),
                                 self.max_retries, self.backoff)

    @staticmethod
    def _to_reply(response: Any, request: Request, with_logprobs: bool) -> Reply:
        choice = response.choices[0]
        content = choice.logprobs.content if with_logprobs and choice.logprobs is not None else None
        usage = response.usage
        return Reply(
            text=choice.message.content or "",
            label_probs=label_probs_from_logprobs(content, request.labels),
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0,
        )


# --------------------------------------------------------------------------------------------
# Model-spec helpers
# --------------------------------------------------------------------------------------------


def ollama_base_url(host: str | None = None) -> str:
    """The OpenAI-compatible URL of an Ollama server.

    ``host`` wins; otherwise the ``OLLAMA_HOST`` environment variable (the one Ollama itself reads,
    e.g. ``0.0.0.0:11434`` or ``http://gpu-box:11434``); otherwise ``http://localhost:11434``.
    A missing scheme becomes ``http://``, a missing port 11434, and a bind-all address localhost.
    """
    raw = (host or os.environ.get("OLLAMA_HOST") or OLLAMA_DEFAULT_HOST).strip().rstrip("/")
    if "://" not in raw:
        raw = f"http://{raw}"
    scheme, rest = raw.split("://", 1)
    netloc, _, path = rest.partition("/")
    if ":" not in netloc.rsplit("]", 1)[-1]:
        netloc = f"{netloc}:11434"
    netloc = netloc.replace("0.0.0.0", "localhost")
    path = "/" + path if path else ""
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{scheme}://{netloc}{path}/v1"


def ollama_backend(name: str, host: str | None = None, **kwargs: Any) -> OpenAIBackend:
    """An `OpenAIBackend` for model ``name`` served by Ollama (see `ollama_base_url` for ``host``)."""
    kwargs.setdefault("api_key", "ollama")
    backend = OpenAIBackend(model=name, base_url=ollama_base_url(host), **kwargs)
    backend.info.extra["provider"] = "ollama"
    return backend
