"""`gavel serve` over real HTTP on loopback (uvicorn in a thread), with the real embedded judge.

One model is loaded for the module; each test starts its own server over it with the limits it needs (the
servers take turns: only one judges at a time). Process-level cases (SIGTERM, refusing to start, logs,
`gavel judge -m gavel+http://...`) are in test_serve_process.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

import uvicorn

from gavel.backends import Backend, load_backend
from gavel.backends.identity import ModelIdentity
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord
from gavel.judge.reward import reward_from_result
from gavel.serve.app import create_app
from gavel.serve.config import Limits, ServeConfig
from gavel.serve.service import ITEM_FAILED, JudgeService
from gavel.settings import JudgeSettings

pytestmark = [pytest.mark.model, pytest.mark.serve]

KEY = "s3cret-test-key-0123456789"
VERDICT = JudgeSettings(mode="verdict")

RECORDS = [
    {"id": "a1", "task": "absolute", "instruction": "Name a primary colour.", "response": "Blue."},
    {"id": "c1", "task": "classification", "instruction": "What is 2+2?", "response": "5"},
    {"id": "p1", "task": "pairwise", "instruction": "Say hello.", "response_a": "Hello!", "response_b": "Bye."},
]


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    loaded = load_backend(None)  # gavel's trained judge, llama.cpp
    yield loaded
    loaded.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(backend: Backend, settings: JudgeSettings = VERDICT, **config) -> Iterator[tuple[str, JudgeService]]:
    """A real uvicorn server on a free loopback port over `backend`; yields (base URL, service)."""
    service = JudgeService(backend, None, settings, ServeConfig(port=_free_port(), **config))
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=service.config.port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{service.config.port}", service
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        service.batcher.close(grace_s=0)


def fresh(backend: Backend) -> Backend:
    """Empty llama.cpp's context: the backend reuses the cached prefix of the previous prompt, and logits
    depend slightly (up to ~1e-2 in a probability) on how a prompt was split into evaluation batches, so two
    runs compared to 1e-6 start from the same (empty) state."""
    backend.llm.reset()
    return backend


def _records(*ids: str) -> list[dict]:
    return [r for r in RECORDS if r["id"] in ids] if ids else list(RECORDS)


def test_results_equal_judge_judge_on_the_same_records(backend: Backend) -> None:
    with serving(backend) as (url, _):
        fresh(backend)
        one = httpx.post(f"{url}/v1/judge", json={"record": RECORDS[1]}, timeout=120)
        fresh(backend)
        many = httpx.post(f"{url}/v1/judge", json={"records": RECORDS}, timeout=120)
    alone = Judge(fresh(backend), mode="verdict").judge([JudgeRecord.model_validate(RECORDS[1])])[0]
    expected = Judge(fresh(backend), mode="verdict").judge([JudgeRecord.model_validate(r) for r in RECORDS])
    assert one.status_code == 200 and many.status_code == 200, (one.text, many.text)
    got = many.json()["results"]
    assert [r["id"] for r in got] == ["a1", "c1", "p1"]
    assert one.json()["results"][0]["result"] == alone.result
    assert one.json()["results"][0]["probabilities"] == pytest.approx(alone.probabilities, abs=1e-6)
    for served, local in zip(got, expected, strict=True):
        assert served["result"] == local.result and served["status"] == local.status.value == "logits"
        assert served["probabilities"] == pytest.approx(local.probabilities, abs=1e-6)
        assert served["model"] == local.model and served["template"] == local.template


def test_per_request_settings_within_the_limits(backend: Backend) -> None:
    pair = _records("p1")
    with serving(backend) as (url, _):
        fresh(backend)
        both = httpx.post(f"{url}/v1/judge", json={"records": pair, "settings": {"both_orders": True}}, timeout=120)
        foreign = httpx.post(f"{url}/v1/judge", json={"records": pair, "settings": {"template": "/etc/passwd"}})
        long = httpx.post(f"{url}/v1/judge", json={"records": pair, "settings": {"max_new_tokens": 100_000}})
        unknown = httpx.post(f"{url}/v1/judge", json={"records": pair, "settings": {"temperature": 2}})
    result = both.json()["results"][0]
    local = Judge(fresh(backend), mode="verdict", both_orders=True).judge([JudgeRecord.model_validate(pair[0])])[0]
    assert result["result_by_order"] == local.result_by_order and result["orders_agree"] == local.orders_agree
    assert result["probabilities"] == pytest.approx(local.probabilities, abs=1e-6)
    assert (foreign.status_code, foreign.json()["field"]) == (422, "settings.template")
    assert (long.status_code, long.json()["field"]) == (422, "settings.max_new_tokens")
    assert (unknown.status_code, unknown.json()["field"]) == (422, "settings.temperature")


def test_reward_endpoint_speaks_openrlhf_and_matches_the_reward_function(backend: Backend) -> None:
    prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    body = {"query": [prompt + "Paris.", prompt + "Berlin.", prompt + _too_long()],
            "prompts": [prompt] * 3, "labels": ["Paris", "", ""]}
    with serving(backend) as (url, _):
        fresh(backend)
        response = httpx.post(f"{url}/get_reward", json=body, timeout=120)
        mismatched = httpx.post(f"{url}/get_reward", json={**body, "prompts": [prompt]})
    assert response.status_code == 200, response.text
    rewards = response.json()["rewards"]
    records = [JudgeRecord(id="1", task="absolute", instruction=prompt, response="Paris.", reference="Paris"),
               JudgeRecord(id="2", task="absolute", instruction=prompt, response="Berlin.")]
    expected = [reward_from_result(r) for r in Judge(fresh(backend), mode="verdict").judge(records)]
    assert rewards[:2] == pytest.approx(expected, abs=1e-6) and all(0 <= r <= 1 for r in rewards[:2])
    assert rewards[2] is None  # no verdict (the input does not fit the model): null, not a number
    assert response.json()["scores"] == rewards
    assert (mismatched.status_code, mismatched.json()["field"]) == (422, "prompts")


def _too_long() -> str:
    """About 15,000 characters of varied words: within the field limit, beyond the model's context."""
    return " ".join(f"w{i * 7919 % 100_003}" for i in range(2_400))


def test_over_long_input_is_an_item_error_and_the_others_are_judged(backend: Backend) -> None:
    long = {"id": "long", "task": "classification", "instruction": _too_long(), "response": _too_long()}
    with serving(backend) as (url, _):
        response = httpx.post(f"{url}/v1/judge", json={"records": [RECORDS[1], long, RECORDS[0]]}, timeout=120)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["logits", "error", "logits"]
    assert "too long" in results[1]["error"]


class _FailsOn(Backend):
    """The real backend, except that it raises on any request whose prompt contains `marker` (a model crash)."""

    def __init__(self, inner: Backend, marker: str) -> None:
        self.inner, self.marker, self.info = inner, marker, inner.info

    def run(self, requests):
        if any(self.marker in m["content"] for r in requests for m in r.messages):
            raise RuntimeError("simulated crash inside the model with a secret path /home/x")
        return self.inner.run(requests)


def test_a_backend_failure_on_one_item_is_that_items_error(backend: Backend) -> None:
    bad = {"id": "bad", "task": "absolute", "instruction": "CRASH-ME please", "response": "ok"}
    with serving(_FailsOn(backend, "CRASH-ME"), max_wait_s=0.3) as (url, _):
        async def both() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                return await asyncio.gather(client.post("/v1/judge", json={"records": [RECORDS[0], bad]}),
                                            client.post("/v1/judge", json={"records": [RECORDS[1]]}))
        mixed, other = asyncio.run(both())
    assert mixed.status_code == 200 and other.status_code == 200
    first, failed = mixed.json()["results"]
    assert first["status"] == "logits" and other.json()["results"][0]["status"] == "logits"
    assert failed["status"] == "error" and failed["error"] == ITEM_FAILED  # no exception text reaches a client
    assert "/home/x" not in mixed.text


def test_bad_bodies_are_refused_naming_the_field(backend: Backend) -> None:
    with serving(backend, limits=Limits(max_records=4, max_field_chars=1000)) as (url, _):
        post = lambda body, **kw: httpx.post(f"{url}/v1/judge", timeout=60, **kw)  # noqa: E731
        malformed = post(None, content=b'{"records": [{"task": ', headers={"content-type": "application/json"})
        huge = post(None, content=b'{"records": ["' + b"x" * 10_000_000 + b'"]}')
        wrong_type = post(None, json={"records": [RECORDS[0], {**RECORDS[1], "response": 5}]})
        missing = post(None, json={"records": [{"task": "absolute", "instruction": "x"}]})
        unknown_task = post(None, json={"record": {**RECORDS[0], "task": "ranking"}})
        too_many = post(None, json={"records": [RECORDS[0]] * 5})
        too_long = post(None, json={"records": [{**RECORDS[0], "response": "y" * 1001}]})
        neither = post(None, json={"settings": {}})
    cases = {
        "malformed": (malformed, 422, "body"),
        "10 MB": (huge, 413, "body"),
        "wrong type": (wrong_type, 422, "records[1].response"),
        "missing": (missing, 422, "records[0].response"),
        "unknown task": (unknown_task, 422, "record.task"),
        "too many": (too_many, 413, "records"),
        "too long": (too_long, 422, "records[0].response"),
        "neither": (neither, 422, None),
    }
    for name, (response, status, field) in cases.items():
        assert (response.status_code, response.json()["field"]) == (status, field), (name, response.text)
        assert field is None or response.json()["detail"].startswith(field), name
        assert "Traceback" not in response.text and "File \"" not in response.text, name


def test_a_full_queue_answers_503_with_retry_after(backend: Backend) -> None:
    """Requests of two records, room for three: one request runs, one waits, the rest are refused."""
    with serving(backend, max_queue=3, max_batch=2) as (url, service):
        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=300) as client:
                return await asyncio.gather(*[
                    client.post("/v1/judge", json={"records": [RECORDS[i % 3], RECORDS[(i + 1) % 3]]})
                    for i in range(10)])
        responses = asyncio.run(burst())
        assert service.batcher.depth == 0
    codes = sorted(r.status_code for r in responses)
    assert 503 in codes and 200 in codes and set(codes) <= {200, 503}, codes
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) >= 1
        else:
            assert response.json()["results"][0]["status"] == "logits"


def test_a_request_past_its_timeout_gets_504(backend: Backend) -> None:
    with serving(backend, timeout_s=0.001, max_wait_s=0.5) as (url, _):
        response = httpx.post(f"{url}/v1/judge", json={"records": RECORDS}, timeout=60)
    assert response.status_code == 504 and "no result within" in response.json()["detail"]


def test_a_client_that_disconnects_does_not_stop_the_others(backend: Backend) -> None:
    with serving(backend, max_wait_s=0.2) as (url, service):
        async def scenario() -> httpx.Response:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                impatient = asyncio.ensure_future(client.post("/v1/judge", json={"records": RECORDS},
                                                              timeout=0.05))
                patient = asyncio.ensure_future(client.post("/v1/judge", json={"records": [RECORDS[1]]}))
                with pytest.raises(httpx.TimeoutException):
                    await impatient
                return await patient
        answered = asyncio.run(scenario())
        after = httpx.post(f"{url}/v1/judge", json={"records": [RECORDS[0]]}, timeout=120)
        deadline = time.monotonic() + 10
        while (gone := _sample(service, "gavel_requests_total", endpoint="/v1/judge", status="499")) < 1:
            assert time.monotonic() < deadline, "the disconnect was never counted"
            time.sleep(0.1)
    assert answered.status_code == 200 and answered.json()["results"][0]["status"] == "logits"
    assert after.status_code == 200 and after.json()["results"][0]["status"] == "logits"
    assert gone == 1


def _sample(service: JudgeService, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_key_is_required_and_compared(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(backend, api_key=KEY) as (url, _):
        missing = httpx.post(f"{url}/v1/judge", json={"records": [RECORDS[1]]})
        wrong = httpx.post(f"{url}/v1/judge", json={"records": [RECORDS[1]]},
                           headers={"Authorization": f"Bearer {KEY}x"})
        huge_unauthenticated = httpx.post(f"{url}/v1/judge", content=b"x" * 2_000_000)
        metrics = httpx.get(f"{url}/metrics")
        health = httpx.get(f"{url}/healthz")
        right = httpx.post(f"{url}/v1/judge", json={"records": [RECORDS[1]]}, timeout=120,
                           headers={"Authorization": f"Bearer {KEY}"})
    for response in (missing, wrong, huge_unauthenticated, metrics):
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert health.status_code == 200 and right.status_code == 200
    assert "missing or wrong API key" in caplog.text and KEY not in caplog.text


def test_metrics_count_requests_batches_queue_and_parse_failures(backend: Backend) -> None:
    with serving(backend, max_wait_s=0.3) as (url, _):
        async def concurrent() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                return await asyncio.gather(*[client.post("/v1/judge", json={"records": [r]}) for r in RECORDS])
        assert all(r.status_code == 200 for r in asyncio.run(concurrent()))
        httpx.post(f"{url}/v1/judge", json={"records": []})
        text = httpx.get(f"{url}/metrics").text
        health = httpx.get(f"{url}/healthz").json()
    assert 'gavel_requests_total{endpoint="/v1/judge",status="200"} 3.0' in text
    assert 'gavel_requests_total{endpoint="/v1/judge",status="422"} 1.0' in text
    assert 'gavel_request_seconds_count{endpoint="/v1/judge"} 4.0' in text
    assert "gavel_queue_depth 0.0" in text and "gavel_parse_failures_total 0.0" in text
    assert 'gavel_items_total{status="logits"} 3.0' in text
    batches = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("gavel_batch")}
    assert batches["gavel_batch_size_sum"] == 3.0 and batches["gavel_batch_size_count"] < 3  # batched together
    assert health == {"status": "ok", "model_loaded": True, "queue_depth": 0}


def test_models_and_generate_serve_the_gavel_http_backend(backend: Backend) -> None:
    with serving(backend) as (url, _):
        models = httpx.get(f"{url}/v1/models").json()
        remote = load_backend(f"gavel+{url}")
        records = [JudgeRecord.model_validate(r) for r in RECORDS]
        fresh(backend)
        over_http = Judge(remote, mode="critique", max_new_tokens=24, both_orders=True).judge(records)
        remote.close()
        bad_labels = httpx.post(f"{url}/v1/generate", json={"requests": [{
            "messages": [{"role": "user", "content": "hi"}], "labels": ["X", "Y"], "critique": False,
            "max_new_tokens": 4, "temperature": 0, "repetition_penalty": 1.0}]})
    card = models["data"][0]
    assert card["id"] == backend.info.name and card["kind"] == "llama.cpp" and models["settings"]["mode"] == "verdict"
    assert ModelIdentity.model_validate(card["identity"]) == backend.info.identity == remote.info.identity
    assert backend.info.identity.adapter is not None  # the served weights by content, not the server's URL
    local = Judge(fresh(backend), mode="critique", max_new_tokens=24, both_orders=True).judge(records)
    assert remote.info.name == backend.info.name
    for got, want in zip(over_http, local, strict=True):
        assert got.model_dump(exclude={"latency_s", "probabilities"}) == want.model_dump(
            exclude={"latency_s", "probabilities"})
        assert got.probabilities == pytest.approx(want.probabilities, abs=1e-6)
    assert (bad_labels.status_code, bad_labels.json()["field"]) == (422, "requests[0].labels")


def test_openapi_schema_is_served(backend: Backend) -> None:
    with serving(backend, api_key=KEY) as (url, _):
        schema = httpx.get(f"{url}/openapi.json").json()
        docs = httpx.get(f"{url}/docs")
    assert {"/v1/judge", "/get_reward", "/v1/generate", "/v1/models", "/healthz", "/metrics"} <= set(schema["paths"])
    assert docs.status_code == 200
    assert json.dumps(schema).count("JudgeResult") > 0
