"""Backend for a remote ``gavel serve``: the model spec ``gavel+http://HOST:PORT`` (or ``gavel+https://``).

The local judge renders prompts, reads verdicts and combines orders as with any backend; the server runs its
loaded model on the rendered requests (``POST /v1/generate``) and sends back each reply's text and verdict
distribution as its backend produced them, so results (probabilities, statuses) are those of the model run
locally. Its identity is the served model's (by content, as the server reports it), so an output resumes
across the local model and a server of the same weights. The key is ``$GAVEL_API_KEY``. A full queue (503) is
waited out as the server's ``Retry-After`` says; a server that does not answer stops the run
(:class:`ServerUnavailable`), as for OpenAI-compatible ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import httpx

from gavel.backends.base import Backend, BackendInfo, Reply, Request, ServerUnavailable
from gavel.backends.identity import ModelIdentity

#: The environment variable holding the key (the server reads the same one).
API_KEY_ENV = "GAVEL_API_KEY"
SCHEME_PREFIX = "gavel+"
#: Attempts for one call while the server answers 503 (queue full) or the connection fails.
_ATTEMPTS = 8
#: The longest wait between two attempts, whatever Retry-After says.
_MAX_WAIT_S = 30.0


class GavelHttpBackend(Backend):
    """Judge through a remote ``gavel serve``; ``url`` is the server's root, e.g. ``http://127.0.0.1:8080``."""

    #: Requests sent in one call (the server batches them with other clients' requests).
    batch_size = 8

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 600.0,
                 http_client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        key = api_key or os.environ.get(API_KEY_ENV, "").strip()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = http_client or httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0))
        self._client.headers.update(headers)
        card, limits = self._describe()
        self._max_per_call = min(self.batch_size, int(limits.get("max_records", self.batch_size)))
        identity = ModelIdentity.model_validate(card["identity"]) if card.get("identity") else None
        self.info = BackendInfo(name=str(card["id"]), kind="gavel+http", context_length=card.get("context_length"),
                                extra={"url": self.url, "spec": str(card.get("spec"))}, identity=identity,
                                max_new_tokens=limits.get("max_new_tokens"))

    def _describe(self) -> tuple[dict, dict]:
        """The served model and the server's limits (``GET /v1/models``); errors name the URL."""
        try:
            response = self._client.get(f"{self.url}/v1/models", timeout=10.0)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(self.url, type(exc).__name__) from None
        if response.status_code == 401:
            raise RuntimeError(f"{self.url} wants an API key: set ${API_KEY_ENV} to the server's key")
        if response.status_code != 200:
            raise RuntimeError(f"{self.url}/v1/models answered {response.status_code}: is it a gavel server?")
        body = response.json()
        return body["data"][0], body.get("limits", {})

    def run(self, requests: Sequence[Request]) -> list[Reply]:
        replies: list[Reply] = []
        for start in range(0, len(requests), self._max_per_call):
            replies += self._call(requests[start:start + self._max_per_call])
        return replies

    def _call(self, requests: Sequence[Request]) -> list[Reply]:
        body = {"requests": [_request_json(r) for r in requests]}
        started = time.perf_counter()
        reason = "no answer"
        for _ in range(_ATTEMPTS):
            try:
                response = self._client.post(f"{self.url}/v1/generate", json=body)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
                time.sleep(1.0)
                continue
            if response.status_code == 200:
                return [_reply(r) for r in response.json()["replies"]]
            if response.status_code == 503:
                reason = "503: " + _detail(response)
                time.sleep(min(_MAX_WAIT_S, float(response.headers.get("Retry-After", "1"))))
                continue
            message = f"gavel server {response.status_code}: {_detail(response)}"
            return [Reply(error=message, latency_s=time.perf_counter() - started) for _ in requests]
        raise ServerUnavailable(self.url, reason)

    def close(self) -> None:
        self._client.close()


def _request_json(request: Request) -> dict:
    return {"messages": request.messages, "labels": list(request.labels), "critique": request.critique,
            "max_new_tokens": request.max_new_tokens, "temperature": request.temperature,
            "repetition_penalty": request.repetition_penalty}


def _reply(data: dict) -> Reply:
    return Reply(text=data["text"], label_probs=data["label_probs"], forced=data["forced"],
                 prompt_tokens=data["prompt_tokens"], completion_tokens=data["completion_tokens"],
                 latency_s=data["latency_s"], error=data["error"], input_error=data["input_error"])


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:200]
