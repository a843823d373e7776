"""Backend for any OpenAI-compatible chat-completions server.

Works with hosted APIs and with local servers (Ollama, ``vllm serve``, llama.cpp's server,
``python -m llama_cpp.server``). Requests are sent concurrently; the openai client itself retries
connection errors, timeouts, 408/409/429 and 5xx with jittered exponential backoff and honours
``Retry-After`` (``max_retries``). The server is checked once at start (``GET /models``): when nothing
answers, the backend refuses to start with an error naming the URL; when it stops answering mid-run
(``DOWN_AFTER`` requests in a row fail to connect), the next ``run`` raises the same error. When the
server returns token logprobs, the verdict distribution is read at the first generated token after
``**Result:**``. Sampling settings (temperature, output length) come from each :class:`Request`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
from openai import OpenAI

from gavel.backends.base import (
    Backend,
    BackendInfo,
    Reply,
    Request,
    ServerUnavailable,
    label_variants,
    normalise,
)
from gavel.labels import RESULT_STOPS

#: Tokens generated in verdict mode: enough for ``**Result:** <label>`` and a little slack.
VERDICT_MAX_TOKENS = 16
TOP_LOGPROBS = 20
OLLAMA_DEFAULT_HOST = "http://localhost:11434"
#: Requests in a row that fail to connect (after the client's own retries) before the server counts as down.
DOWN_AFTER = 3
#: Seconds the start-up check waits for the server.
CHECK_TIMEOUT_S = 10.0


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
    ``"EMPTY"`` (what local servers without authentication accept). ``http_client`` is passed to the
    openai client (a proxy, custom TLS, or a recording transport in tests).
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        timeout: float = 120,
        max_retries: int = 4,
        concurrency: int = 4,
        logprobs: bool = True,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        http_client: httpx.Client | None = None,
    ) -> None:
        key = api_key or os.environ.get(api_key_env) or "EMPTY"
        self.model = model
        self.base_url = base_url
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries,
                             http_client=http_client)
        self.concurrency = max(1, concurrency)
        self.logprobs = logprobs
        self.batch_size = self.concurrency * 2
        self.info = BackendInfo(name=model, kind="openai", extra={"base_url": base_url})
        self._failures = 0  # requests in a row that could not connect
        self._last_failure = ""
        self._lock = threading.Lock()
        self._check_server()

    def _check_server(self) -> None:
        """One ``GET /models`` without retries: any HTTP answer means a server is there."""
        try:
            self.client.with_options(max_retries=0, timeout=CHECK_TIMEOUT_S).models.list()
        except openai.APIConnectionError as exc:
            raise ServerUnavailable(self.base_url, _error_text(exc)) from None
        except openai.APIStatusError:
            pass  # it answered (perhaps without a models list, or asking for a key): it is up

    def run(self, requests: Sequence[Request]) -> list[Reply]:
        """Send all requests, at most ``concurrency`` at a time; replies keep the input order.

        Raises ServerUnavailable when the server stopped answering during an earlier batch.
        """
        if self._failures >= DOWN_AFTER:
            raise ServerUnavailable(self.base_url, f"{self._failures} requests in a row failed: {self._last_failure}")
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._judge_one, requests))

    def close(self) -> None:
        self.client.close()

    def _judge_one(self, request: Request) -> Reply:
        started = time.perf_counter()
        if self._failures >= DOWN_AFTER:  # the server went down during this batch: fail fast
            return Reply(error=f"no answer from {self.base_url}: {self._last_failure}")
        try:
            reply = self._complete(request)
            with self._lock:
                self._failures = 0
        except Exception as exc:
            message = f"{type(exc).__name__}: {_error_text(exc)}"
            if isinstance(exc, openai.APIConnectionError):
                with self._lock:
                    self._failures += 1
                    self._last_failure = message
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
            "temperature": request.temperature,
        }
        if with_logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return self.client.chat.completions.create(**kwargs)

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
