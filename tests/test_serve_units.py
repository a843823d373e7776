"""Control flow of `gavel serve` without a model: the micro-batcher, the spec, the exposure check.

(Unit tests with a stand-in for the model; the real judge behind a real server is in test_serve.py.)
"""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import SecretStr

from gavel.backends import parse_spec
from gavel.backends.identity import model_identity
from gavel.serve.batcher import Batcher, QueueFull, ShuttingDown
from gavel.serve.config import ServeConfig, is_loopback


class Recorder:
    """A stand-in model: doubles numbers, records each batch, can be held and can fail on one item."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def run(self, key, items):
        self.gate.wait(10)
        self.batches.append((key, list(items)))
        if self.fail_on in items:
            raise RuntimeError("boom")
        return [2 * i for i in items]


def test_jobs_with_the_same_settings_share_a_batch_up_to_the_limit() -> None:
    model = Recorder()
    model.gate.clear()  # hold the worker on its first batch while the others queue
    batcher = Batcher(model.run, lambda k, i, e: None, max_batch=4, max_wait_s=0.05)
    first = batcher.submit("a", [0])
    time.sleep(0.2)
    jobs = [batcher.submit("a", [1, 2]), batcher.submit("b", [3]), batcher.submit("a", [4, 5]),
            batcher.submit("a", [6])]
    model.gate.set()
    assert [job.future.result(10) for job in [first, *jobs]] == [[0], [2, 4], [6], [8, 10], [12]]
    assert model.batches == [("a", [0]), ("a", [1, 2, 4, 5]), ("b", [3]), ("a", [6])]
    batcher.close(grace_s=1)


def test_a_failing_batch_is_rerun_item_by_item() -> None:
    model = Recorder(fail_on=7)
    batcher = Batcher(model.run, lambda key, item, exc: f"failed {item}", max_batch=8, max_wait_s=0.2)
    a, b = batcher.submit("k", [6, 7]), batcher.submit("k", [8])
    assert a.future.result(10) == [12, "failed 7"] and b.future.result(10) == [16]
    batcher.close(grace_s=1)


def test_queue_bound_cancel_and_shutdown() -> None:
    model = Recorder()
    model.gate.clear()
    batcher = Batcher(model.run, lambda k, i, e: None, max_batch=1, max_wait_s=0.0, max_queue=3)
    running = batcher.submit("k", [1])
    time.sleep(0.2)  # taken by the worker, which waits at the gate
    queued = batcher.submit("k", [2, 3])
    with pytest.raises(QueueFull):
        batcher.submit("k", [4, 5])
    dropped = batcher.submit("k", [9])
    dropped.cancel()
    assert batcher.depth == 3
    closing = threading.Thread(target=batcher.close, args=(0.3,))
    closing.start()
    closing.join()
    for job in (running, queued, dropped):  # past the grace period: every waiting client is answered
        with pytest.raises(ShuttingDown):
            job.future.result(1)
    with pytest.raises(ShuttingDown):
        batcher.submit("k", [6])
    model.gate.set()
    assert batcher.join(5) and model.batches == [("k", [1])]


def test_gavel_http_spec_and_its_offline_identity() -> None:
    spec = parse_spec("gavel+http://127.0.0.1:8080/")
    assert (spec.kind, spec.model) == ("gavel", "http://127.0.0.1:8080")
    assert parse_spec("gavel+https://judge.example").base_url == "https://judge.example"
    assert model_identity("gavel+http://127.0.0.1:8080").key == "gavel:http://127.0.0.1:8080"


def test_only_loopback_may_go_without_a_key() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    ServeConfig(host="127.0.0.1").check_exposure()
    ServeConfig(host="0.0.0.0", api_key=SecretStr("k")).check_exposure()
    ServeConfig(host="0.0.0.0", insecure=True).check_exposure()
    with pytest.raises(ValueError, match="--insecure"):
        ServeConfig(host="0.0.0.0").check_exposure()
    assert "k3y" not in repr(ServeConfig(api_key=SecretStr("k3y")))
