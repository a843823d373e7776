"""The HTTP app of ``gavel serve`` (FastAPI): judge, reward, backend, health, model and metrics endpoints.

Errors reach a client as ``{"detail": one line, "field": the field at fault}``, never with a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gavel.judge.records import JudgeRecord
from gavel.judge.reward import reward_from_result
from gavel.judge.templates import builtin_names
from gavel.serve.batcher import Job, QueueFull, ShuttingDown
from gavel.serve.config import Limits, public_limits
from gavel.serve.schemas import (
    GenerateBody,
    GenerateResponse,
    Health,
    JudgeBody,
    JudgeOptions,
    JudgeResponse,
    ModelCard,
    ModelsResponse,
    RewardBody,
    RewardResponse,
)
from gavel.serve.service import JudgeService

log = logging.getLogger("gavel.serve")

#: Status recorded for a client that went away before its answer (nginx's convention; never sent).
CLIENT_GONE = 499


class ApiError(Exception):
    """An error for the client: status, one line, the field at fault, extra headers."""

    def __init__(self, status: int, detail: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers or {}


def _error(status: int, detail: str, field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status, headers=headers)


def create_app(service: JudgeService) -> ASGIApp:
    """The ASGI app over a loaded service."""
    config = service.config
    limits = config.limits
    app = FastAPI(title="gavel serve", summary="An LLM judge shared by many clients", version="1",
                  max_body_size=limits.max_body_bytes, strict_content_type=False)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:  # a body without Content-Length, counted while it was read
            return _too_large(limits.max_body_bytes)
        return _error(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.detail, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        field, message = _first_error(exc.errors())
        return _error(422, f"{field}: {message}" if field else message, field)

    @app.exception_handler(_ClientGone)
    async def _gone(request: Request, exc: _ClientGone) -> Response:
        return Response(status_code=CLIENT_GONE)  # nobody reads it: it only counts in the metrics

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal error (see the server log)")

    @app.post("/v1/judge", response_model=JudgeResponse)
    async def judge(body: JudgeBody, request: Request) -> JudgeResponse:
        """Judge one record or a list; results in order, an item that could not be judged has status error."""
        records = body.items
        _check_count(len(records), "records" if body.records is not None else "record", limits.max_records)
        for i, record in enumerate(records):
            _check_record(record, f"records[{i}]" if body.records is not None else "record", limits.max_field_chars)
        key = service.settings_key(_checked_settings(body.settings, limits))
        results = await _answer(service, request, lambda: service.submit_records(records, key))
        return JudgeResponse(results=results)

    @app.post("/get_reward", response_model=RewardResponse)
    async def get_reward(body: RewardBody, request: Request) -> RewardResponse:
        """OpenRLHF's remote reward model: rewards in [0, 1] for query = prompt + response; null when unreadable."""
        _check_count(len(body.query), "query", limits.max_records)
        records = [_reward_record(body, i, limits.max_field_chars) for i in range(len(body.query))]
        key = service.settings_key({})
        results = await _answer(service, request, lambda: service.submit_records(records, key))
        rewards = [reward_from_result(r) for r in results]
        return RewardResponse(rewards=rewards, scores=rewards)

    @app.post("/v1/generate", response_model=GenerateResponse)
    async def generate(body: GenerateBody, request: Request) -> GenerateResponse:
        """Rendered backend requests in, replies (text, verdict distribution) out: the gavel+http protocol."""
        _check_count(len(body.requests), "requests", limits.max_records)
        for i, item in enumerate(body.requests):
            if item.max_new_tokens > limits.max_new_tokens:
                raise ApiError(422, f"requests[{i}].max_new_tokens: at most {limits.max_new_tokens} on this server",
                               f"requests[{i}].max_new_tokens")
            for j, message in enumerate(item.messages):
                _check_length(message.content, f"requests[{i}].messages[{j}].content", limits.max_prompt_chars)
        rendered = [item.to_request() for item in body.requests]
        replies = await _answer(service, request, lambda: service.submit_requests(rendered))
        return GenerateResponse(replies=replies)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Model loaded and queue depth (no key needed)."""
        return Health(status="stopping" if service.batcher.closing else "ok", model_loaded=True,
                      queue_depth=service.batcher.depth)

    @app.get("/v1/models", response_model=ModelsResponse)
    async def models() -> ModelsResponse:
        """The loaded judge: its name, spec and identity, the server's judge settings and its limits."""
        info = service.backend.info
        card = ModelCard(id=info.name, spec=service.spec, kind=info.kind, identity=info.identity,
                         context_length=info.context_length)
        return ModelsResponse(data=[card], settings=service.settings.model_dump(mode="json"),
                              limits=public_limits(config))

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format: requests by status, latency, batch sizes, queue depth, parse failures."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    paths = {route.path for route in app.routes}
    return _Observed(_Gate(app, service.config.api_key, limits.max_body_bytes), service, paths)


# -- request checks ---------------------------------------------------------------------------------


def _check_count(count: int, field: str, limit: int) -> None:
    if count > limit:
        raise ApiError(413, f"{field}: {count} items; this server takes at most {limit} per request", field)
    if count == 0:
        raise ApiError(422, f"{field}: empty", field)


def _check_length(text: str | None, field: str, limit: int) -> None:
    if text is not None and len(text) > limit:
        raise ApiError(422, f"{field}: {len(text)} characters; this server takes at most {limit}", field)


def _check_record(record: JudgeRecord, where: str, limit: int) -> None:
    for name, value in _strings(record.model_dump(exclude_none=True)):
        _check_length(value, f"{where}.{name}", limit)


def _strings(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every string in a JSON-like value with its dotted path."""
    if isinstance(value, str):
        return [(prefix, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _strings(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _strings(v, f"{prefix}[{i}]")]
    return []


def _checked_settings(options: JudgeOptions | None, limits: Limits) -> dict[str, Any]:
    """The request's settings within the server's limits (a template must be a built-in set)."""
    if options is None:
        return {}
    given = options.model_dump(exclude_none=True)
    if "template" in given and given["template"] not in builtin_names():
        raise ApiError(422, f"settings.template: {given['template']!r} is not a built-in template set "
                       f"({', '.join(builtin_names())})", "settings.template")
    if given.get("max_new_tokens", 0) > limits.max_new_tokens:
        raise ApiError(422, f"settings.max_new_tokens: at most {limits.max_new_tokens} on this server",
                       "settings.max_new_tokens")
    if given.get("retries", 0) > limits.max_retries:
        raise ApiError(422, f"settings.retries: at most {limits.max_retries} on this server", "settings.retries")
    return given


def _reward_record(body: RewardBody, i: int, limit: int) -> JudgeRecord:
    """An OpenRLHF query as a record: the prompt as instruction, the rest of the query as response."""
    prompt, query = body.prompts[i], body.query[i]
    response = query[len(prompt):] if query.startswith(prompt) else query
    label = body.labels[i] if body.labels is not None else None
    _check_length(prompt, f"prompts[{i}]", limit)
    _check_length(response, f"query[{i}]", limit)
    _check_length(label, f"labels[{i}]", limit)
    if not prompt.strip():
        raise ApiError(422, f"prompts[{i}]: must not be empty", f"prompts[{i}]")
    fields = {"id": str(i + 1), "task": body.task, "instruction": prompt, "response": response,
              "reference": label or None, "rubric": body.rubric}
    try:
        return JudgeRecord.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValueError as exc:
        raise ApiError(422, f"rubric: {exc}", "rubric") from None


def _first_error(errors: list[dict]) -> tuple[str | None, str]:
    """The first validation error as (field path such as ``records[2].response``, message)."""
    detail = errors[0] if errors else {}
    loc = list(detail.get("loc", ()))
    if loc and loc[0] == "body":
        loc = loc[1:]
    message = str(detail.get("msg", "invalid request")).removeprefix("Value error, ")
    if detail.get("type") == "json_invalid":
        return "body", f"not valid JSON ({detail.get('ctx', {}).get('error', 'malformed')})"
    if message.startswith("field '"):  # a record's own check names its field
        name, _, message = message[len("field '"):].partition("': ")
        loc.append(name)
    if detail.get("type") == "missing":
        message = "required field is missing"
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field or None, message


# -- waiting for the worker -------------------------------------------------------------------------


class _ClientGone(Exception):
    pass


async def _answer(service: JudgeService, request: Request, submit) -> list[Any]:
    """Queue a job and wait for its results: 503 when full or stopping, 504 past the timeout."""
    try:
        job: Job = submit()
    except QueueFull:
        wait = service.batcher.retry_after_s()
        raise ApiError(503, f"the queue is full ({service.config.max_queue} items); retry in {wait} s",
                       headers={"Retry-After": str(wait)}) from None
    except ShuttingDown:
        raise _stopping() from None
    results = asyncio.ensure_future(service.results(job))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({results, gone}, timeout=service.config.timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if results in done:
        try:
            return results.result()
        except ShuttingDown:
            raise _stopping() from None
    job.cancel()
    results.cancel()
    if gone in done:
        raise _ClientGone
    raise ApiError(504, f"no result within {service.config.timeout_s:g} s; the request was dropped")


def _stopping() -> ApiError:
    return ApiError(503, "the server is shutting down; retry on another replica or later",
                    headers={"Retry-After": "5", "Connection": "close"})


async def _disconnected(request: Request) -> None:
    """Returns once the client has closed the connection (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


# -- ASGI wrappers ----------------------------------------------------------------------------------


#: Paths open without a key: health for load balancers, and the API's own documentation.
_OPEN_PATHS = {"/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}


class _Gate:
    """Before any body is read: the bearer key, compared in constant time (every path but ``_OPEN_PATHS``),
    then the body's announced size (413; a body without Content-Length is counted by FastAPI as it is read)."""

    def __init__(self, app: ASGIApp, key: SecretStr | None, max_body_bytes: int) -> None:
        self.app = app
        self.key = key.get_secret_value().encode() if key is not None else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                return await refusal(scope, receive, send)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        if self.key is not None and scope["path"] not in _OPEN_PATHS:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), self.key):
                client = scope.get("client") or ("?",)
                log.warning("refused %s %s from %s: missing or wrong API key", scope["method"], scope["path"],
                            client[0])
                return _error(401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                              headers={"WWW-Authenticate": "Bearer"})
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return _too_large(self.max_body_bytes)
        return None


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"body: larger than this server's limit of {limit} bytes", "body", {"Connection": "close"})


class _Observed:
    """Counts every answer by endpoint and status, times it, and turns a vanished client into status 499."""

    def __init__(self, app: ASGIApp, service: JudgeService, paths: set[str]) -> None:
        self.app = app
        self.service = service
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in self.paths else "other"
        status = 500
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            metrics = self.service.metrics
            metrics.requests.labels(endpoint, str(status)).inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
