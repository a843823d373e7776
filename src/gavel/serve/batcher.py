"""Micro-batching: one worker thread owns the model; requests from many clients wait in one bounded queue.

A *job* is one HTTP request's items (records to judge, or rendered backend requests) with the settings they
share. The worker takes the oldest job, waits up to ``max_wait_s`` for more jobs with the same settings
(until ``max_batch`` items are gathered), and hands them to the model in one call (``Judge.judge(list)`` or
``Backend.run(list)``), so a busy server judges as fast as one process judging a list. Results go back to
each job in order. A job whose client has gone (timeout, disconnect) is dropped before it runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Runs one batch: (settings key, the items of every job, in order) -> one output per item, same order.
RunBatch = Callable[[Hashable, list[Any]], list[Any]]
#: The output for one item whose batch failed and which failed again alone.
ItemFailure = Callable[[Hashable, Any, BaseException], Any]


class QueueFull(Exception):
    """The queue holds as many items as it may; the client should retry later."""


class ShuttingDown(Exception):
    """The server is stopping and will not run this job."""


@dataclass(eq=False)
class Job:
    key: Hashable
    items: list[Any]
    future: Future = field(default_factory=Future)
    cancelled: bool = False

    def cancel(self) -> None:
        """The client no longer waits: skip the job if it has not started (its result is dropped if it has)."""
        self.cancelled = True


class Batcher:
    """A bounded queue of jobs served by one worker thread."""

    def __init__(self, run_batch: RunBatch, on_item_failure: ItemFailure, *, max_batch: int = 16,
                 max_wait_s: float = 0.01, max_queue: int = 256,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self._run_batch = run_batch
        self._on_item_failure = on_item_failure
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch or (lambda size: None)
        self._jobs: deque[Job] = deque()
        self._depth = 0  # items waiting (not yet taken by the worker)
        self._lock = threading.Condition()
        self._closing = False
        self._busy = False
        self._running: list[Job] = []
        self._thread = threading.Thread(target=self._work, name="gavel-serve-worker", daemon=True)
        self._thread.start()

    # -- clients ------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Items waiting in the queue."""
        return self._depth

    def submit(self, key: Hashable, items: Sequence[Any]) -> Job:
        """Queue a job; raises QueueFull when it would not fit, ShuttingDown when the server is stopping."""
        job = Job(key=key, items=list(items))
        with self._lock:
            if self._closing:
                raise ShuttingDown
            if self._depth + len(job.items) > self.max_queue:
                raise QueueFull
            self._jobs.append(job)
            self._depth += len(job.items)
            self._lock.notify_all()
        return job

    def retry_after_s(self) -> int:
        """A hint for a refused client: about the time the queue takes to drain (at least a second)."""
        return max(1, round(self._depth / max(1, self.max_batch)))

    # -- shutdown -----------------------------------------------------------------------------------
    def close(self, grace_s: float) -> None:
        """Stop taking jobs; run what is queued until ``grace_s`` has passed, then refuse the rest (the batch
        still running included: its clients are answered now, and its results are dropped)."""
        deadline = time.monotonic() + grace_s
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            while (self._jobs or self._busy) and time.monotonic() < deadline:
                self._lock.wait(timeout=max(0.0, deadline - time.monotonic()))
            left = list(self._jobs) + self._running
            self._jobs.clear()
            self._depth = 0
            self._lock.notify_all()
        for job in left:
            _settle(job.future, exception=ShuttingDown())

    def join(self, timeout_s: float) -> bool:
        """Wait for the worker to finish its last batch (after ``close``); False if it is still running."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def closing(self) -> bool:
        return self._closing

    # -- the worker ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            jobs = self._next_batch()
            if jobs is None:
                return
            if jobs:
                self._run(jobs)
            with self._lock:
                self._busy = False
                self._running = []
                self._lock.notify_all()

    def _next_batch(self) -> list[Job] | None:
        """The jobs of the next batch (possibly none left after dropping cancelled ones); None once closed."""
        with self._lock:
            while not self._jobs:
                if self._closing:
                    return None
                self._lock.wait()
            first = self._jobs[0]
            deadline = time.monotonic() + self.max_wait_s
            while not self._closing:  # gather more jobs with the same settings
                if self._items_with(first.key) >= self.max_batch:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(timeout=remaining)
            taken, size = [], 0
            for job in list(self._jobs):
                if job.key != first.key or (taken and size + len(job.items) > self.max_batch):
                    continue
                self._jobs.remove(job)
                self._depth -= len(job.items)
                if not job.cancelled:
                    taken.append(job)
                    size += len(job.items)
            self._busy = True
            self._running = taken
            return taken

    def _items_with(self, key: Hashable) -> int:
        return sum(len(job.items) for job in self._jobs if job.key == key)

    def _run(self, jobs: list[Job]) -> None:
        items = [item for job in jobs for item in job.items]
        self._on_batch(len(items))
        try:
            outputs = self._run_batch(jobs[0].key, items)
        except Exception:  # one item may have broken the batch: run each alone so the others are judged
            log.exception("a batch of %d items failed; running them one by one", len(items))
            outputs = [self._run_alone(jobs[0].key, item) for item in items]
        start = 0
        for job in jobs:
            _settle(job.future, result=outputs[start:start + len(job.items)])
            start += len(job.items)

    def _run_alone(self, key: Hashable, item: Any) -> Any:
        try:
            return self._run_batch(key, [item])[0]
        except Exception as exc:
            log.exception("an item failed on its own")
            return self._on_item_failure(key, item, exc)


def _settle(future: Future, *, result: Any = None, exception: BaseException | None = None) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
