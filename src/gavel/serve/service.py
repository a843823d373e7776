"""The loaded judge behind the HTTP app: one backend, one worker, judges per settings over that backend.

Stateless apart from the model: nothing a request leaves behind changes another's result.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from gavel.backends import Backend, Reply, Request
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord
from gavel.judge.result import JudgeResult, Mode
from gavel.labels import Status
from gavel.serve.batcher import Batcher, Job
from gavel.serve.config import ServeConfig
from gavel.serve.metrics import Metrics
from gavel.settings import JudgeSettings

log = logging.getLogger(__name__)

#: The batch key of rendered backend requests (``/v1/generate``); judge batches are keyed by their settings.
_GENERATE = "generate"
#: Judges (one per distinct request settings) kept between batches; clients cannot grow this without bound.
_JUDGES_KEPT = 16
#: What a client reads when the model failed on its item (the details stay in the server log).
ITEM_FAILED = "the model failed on this item (see the server log)"


class JudgeService:
    """A backend shared by every request, served through a micro-batching worker."""

    def __init__(self, backend: Backend, spec: str | None, settings: JudgeSettings, config: ServeConfig) -> None:
        self.backend = backend
        self.spec = spec or "default"
        self.settings = settings
        self.config = config
        self.metrics = Metrics()
        self._judges: OrderedDict[str, Judge] = OrderedDict()
        self.batcher = Batcher(self._run_batch, self._item_failure, max_batch=config.max_batch,
                               max_wait_s=config.max_wait_s, max_queue=config.max_queue,
                               on_batch=self.metrics.batch_size.observe)
        self.metrics.queue_depth.set_function(lambda: self.batcher.depth)

    # -- submitting work ----------------------------------------------------------------------------
    def settings_key(self, overrides: dict[str, Any]) -> str:
        """The batch key of judge settings: the server's, with a request's overrides (already checked)."""
        return JudgeSettings.of(self.settings, **overrides).model_dump_json()

    def submit_records(self, records: list[JudgeRecord], key: str) -> Job:
        return self.batcher.submit(key, records)

    def submit_requests(self, requests: list[Request]) -> Job:
        return self.batcher.submit(_GENERATE, requests)

    async def results(self, job: Job) -> list[Any]:
        return await asyncio.wrap_future(job.future)

    # -- the worker side ----------------------------------------------------------------------------
    def _run_batch(self, key: Hashable, items: list[Any]) -> list[Any]:
        if key == _GENERATE:
            return self.backend.run(items)
        results = self._judge(str(key)).judge(items)
        for result in results:
            self.metrics.items.labels(result.status.value).inc()
            if result.status is Status.parse_failed:
                self.metrics.parse_failures.inc()
        return results

    def _judge(self, key: str) -> Judge:
        """The judge of these settings over the shared backend (the most recently used few are kept)."""
        if key in self._judges:
            self._judges.move_to_end(key)
        else:
            self._judges[key] = Judge(self.backend, JudgeSettings.model_validate_json(key))
            while len(self._judges) > _JUDGES_KEPT:
                self._judges.popitem(last=False)
        return self._judges[key]

    def _item_failure(self, key: Hashable, item: Any, exc: BaseException) -> Any:
        self.metrics.items.labels(Status.error.value).inc()
        if key == _GENERATE:
            return Reply(error=ITEM_FAILED)
        judge = self._judge(str(key))
        return JudgeResult(id=item.id, task=item.task, status=Status.error, error=ITEM_FAILED,
                           model=judge.model_name, template=judge.templates.name, mode=Mode(judge.mode))

    def close(self, wait_s: float = 60.0) -> None:
        """Stop the worker and release the model (left to the process's exit if the worker is still in it)."""
        self.batcher.close(grace_s=0)
        if self.batcher.join(wait_s):
            self.backend.close()
        else:
            log.warning("the model is still busy after %.0f s; leaving it to the process's exit", wait_s)
