"""The judge: renders records into prompts, asks a backend, reads verdicts, combines both orders."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gavel.backends.base import Backend, Reply, Request, model_lock
from gavel.backends.identity import ModelIdentity
from gavel.judge.cache import JudgmentCache, cache_key
from gavel.judge.parsing import Parsed, parse_output
from gavel.judge.records import LABELS, JudgeRecord, Rubric, Task, validate_row
from gavel.judge.result import JudgeResult, Mode, Status, expected_score
from gavel.judge.templates import TemplateError, TemplateSet, load_templates
from gavel.labels import TIE, swap_label
from gavel.settings import JudgeSettings, SettingsError

log = logging.getLogger(__name__)

@dataclass
class _Prepared:
    record: JudgeRecord
    requests: list[Request]  # one, or two for both orders
    template: str
    template_text: str = ""
    error: str | None = None


def as_record(value: JudgeRecord | dict, row: int) -> JudgeRecord:
    """A record given to the Python API: a JudgeRecord as it is, a dict validated into one."""
    if isinstance(value, JudgeRecord):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"records, row {row}: expected a JudgeRecord or a dict in the record schema, "
                        f"got {type(value).__name__}")
    loaded = validate_row(value, "records", row)
    if loaded.error is not None:
        raise ValueError(str(loaded.error))
    assert loaded.record is not None
    return loaded.record


class Judge:
    """A judge model run with :class:`~gavel.settings.JudgeSettings` (mode, template, both orders, ...).

    >>> judge = Judge()                      # gavel's trained judge: SmolLM2-135M + LoRA, llama.cpp
    >>> judge.compare("2+2?", "4", "5").result
    >>> Judge("smollm2", JudgeSettings(mode="verdict"), both_orders=True)   # settings, then changes to them

    ``templates`` replaces the template set that ``settings.template`` names (the curation teacher's own set).
    Settings out of range raise :class:`~gavel.settings.SettingsError` before the model loads.

    ``cache``: a judgment cache file (:mod:`gavel.judge.cache`); items judged before with the same model,
    template, mode and settings are read from it instead of the model. A judge may be called from several
    threads: a backend that holds a local model runs one batch at a time.
    """

    def __init__(self, model: str | Backend | None = None, settings: JudgeSettings | None = None, *,
                 templates: TemplateSet | None = None, cache: str | Path | JudgmentCache | None = None,
                 **changes: Any) -> None:
        from gavel.backends import load_backend

        self.settings = JudgeSettings.of(settings, **changes)
        self.templates = templates or load_templates(self.settings.template)
        self.backend = model if isinstance(model, Backend) else load_backend(model)
        limit = self.backend.info.max_new_tokens
        if limit is not None and self.settings.max_new_tokens > limit:
            if self.backend is not model:
                self.backend.close()
            raise SettingsError([("max_new_tokens", f"{self.settings.max_new_tokens} is more than "
                                                      f"{self.model_name} allows ({limit})")])
        self.cache = cache if isinstance(cache, JudgmentCache) or cache is None else JudgmentCache(cache)
        if self.cache is not None and self.model_identity is None:
            log.warning("judgment cache %s: the model has no identity (a backend not built by load_backend), so its "
                        "judgments are not cached", self.cache.path)
        self._warned_reference = False
        self._warned_position = False

    @property
    def mode(self) -> Mode:
        return self.settings.mode

    @property
    def both_orders(self) -> bool:
        return self.settings.both_orders

    @property
    def model_name(self) -> str:
        return self.backend.info.name

    @property
    def model_identity(self) -> ModelIdentity | None:
        """The weights behind the judge by content (None for a backend not built by ``load_backend``)."""
        return self.backend.info.identity

    @property
    def _default_judge(self) -> bool:
        """Whether this is gavel's shipped judge (its committed adapter applied)."""
        from gavel.backends.embedded import judge_adapter

        adapter = self.model_identity.adapter if self.model_identity is not None else None
        return adapter is not None and Path(adapter.path) == judge_adapter().resolve()

    # -- single items -------------------------------------------------------------------------------
    def score(self, instruction: str, response: str, rubric: str | dict | Rubric | None = None,
              reference: str | None = None) -> JudgeResult:
        """Absolute 1-5 score."""
        return self._one(task="absolute", instruction=instruction, response=response, rubric=rubric,
                         reference=reference)

    def classify(self, instruction: str, response: str, rubric: str | dict | Rubric | None = None,
                 reference: str | None = None) -> JudgeResult:
        """Yes/No against a criterion."""
        return self._one(task="classification", instruction=instruction, response=response, rubric=rubric,
                         reference=reference)

    def compare(self, instruction: str, response_a: str, response_b: str, rubric: str | dict | Rubric | None = None,
                reference: str | None = None) -> JudgeResult:
        """Pairwise preference: A or B."""
        return self._one(task="pairwise", instruction=instruction, response_a=response_a, response_b=response_b,
                         rubric=rubric, reference=reference)

    def _one(self, **fields) -> JudgeResult:
        if isinstance(fields.get("rubric"), Rubric):
            fields["rubric"] = fields["rubric"].model_dump(exclude_none=True)
        record = JudgeRecord.model_validate({"id": "0", **{k: v for k, v in fields.items() if v is not None}})
        return self.judge([record])[0]

    # -- batches ------------------------------------------------------------------------------------
    def judge(self, records: Sequence[JudgeRecord | dict]) -> list[JudgeResult]:
        """Judge many records (JudgeRecord objects, or dicts in the record schema); results come back in input
        order. A dict that is not a valid record raises ValueError naming its row (from 1) and field."""
        return list(self.judge_iter(records))

    def judge_iter(self, records: Iterable[JudgeRecord | dict]) -> Iterator[JudgeResult]:
        """Judge records lazily, in input order, each result as soon as it and those before it are back.

        Requests stream to the backend, which keeps its batch full (refilling as items finish). Items judged
        before with the same model and settings come from the cache. The stream holds the model's lock
        (``model_lock``) until it ends: another thread's judge calls on the same local model wait for it.
        """
        queue: deque[tuple[_Prepared, str | None, JudgeResult | None]] = deque()  # item, cache key, cached result

        def requests() -> Iterator[Request]:
            for row, record in enumerate(records, start=1):
                item = self._prepare(as_record(record, row))
                key = self._cache_key(item)
                hit = self.cache.get(key) if self.cache is not None and key is not None else None
                queue.append((item, key, hit))
                if item.error is None and hit is None:
                    yield from item.requests

        def ready() -> Iterator[JudgeResult]:  # the items at the front that need no reply: failed or cached
            while queue and (queue[0][0].error is not None or queue[0][2] is not None):
                item, _, hit = queue.popleft()
                yield self._failed(item, item.error or "") if hit is None else hit.model_copy(update=self._base(item))

        with model_lock(self.backend):
            replies = self.backend.stream(requests())
            while True:
                yield from ready()
                first = next(replies, None)
                if first is None:
                    break
                yield from ready()
                item, key, _ = queue.popleft()
                item_replies = [first, *(next(replies) for _ in item.requests[1:])]
                result = self._combine(item, self._retry(item.requests, item_replies))
                if self.cache is not None and key is not None and result.status is not Status.error:
                    self.cache.put(key, result)
                yield result
        yield from ready()  # items after the last request: only failed or cached ones remain

    def _cache_key(self, item: _Prepared) -> str | None:
        if self.cache is None or item.error is not None or self.model_identity is None:
            return None
        return cache_key(self.model_identity.key, item.template_text, self.mode.value,
                         self.settings.model_dump(mode="json"), item.requests)

    def _prepare(self, record: JudgeRecord) -> _Prepared:
        orders = [record, record.swapped()] if self.both_orders and record.task is Task.pairwise else [record]
        try:
            rendered = [self.templates.render(r, self.mode) for r in orders]
        except TemplateError as exc:
            return _Prepared(record=record, requests=[], template=self.templates.name, error=str(exc))
        template = rendered[0][1]
        if record.task is Task.pairwise and not self.both_orders and not self._warned_position and self._default_judge:
            log.warning("the default judge answers A on almost every pairwise item judged in one order "
                        "(docs/model-card.md): judge both orders (--both-orders)")
            self._warned_position = True
        if record.reference is not None and not template.uses_reference and not self._warned_reference:
            log.warning("template %s has no {reference_response}: reference answers are not shown", template.name)
            self._warned_reference = True
        requests = [
            Request(messages=[{"role": "user", "content": text}], labels=record.labels,
                    critique=self.mode is Mode.critique, max_new_tokens=self.settings.max_new_tokens,
                    repetition_penalty=self.settings.repetition_penalty)
            for text, _ in rendered
        ]
        return _Prepared(record=record, requests=requests, template=template.name, template_text=template.text)

    def _retry(self, requests: list[Request], replies: list[Reply]) -> list[Reply]:
        """Re-ask (sampling) the requests whose verdict could not be read, up to `retries` times."""
        for attempt in range(1, self.settings.retries + 1):
            todo = [i for i, (req, rep) in enumerate(zip(requests, replies, strict=True))
                    if not rep.input_error and _verdict(req, rep)[0] is None]
            if not todo:
                break
            again = self.backend.run([replace(requests[i], temperature=self.settings.retry_temperature)
                                      for i in todo])  # within judge_iter's hold of the model lock
            for i, reply in zip(todo, again, strict=True):
                reply.attempts = attempt + 1
                replies[i] = reply
        return replies

    # -- reading replies ----------------------------------------------------------------------------
    def _base(self, item: _Prepared) -> dict:
        return {"id": item.record.id, "task": item.record.task, "model": self.model_name,
                "template": item.template, "mode": self.mode, "input_hash": item.record.content_hash}

    def _failed(self, item: _Prepared, message: str) -> JudgeResult:
        return JudgeResult(**self._base(item), status=Status.error, error=message)

    def _single(self, item: _Prepared, request: Request, reply: Reply) -> JudgeResult:
        usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                 "latency_s": reply.latency_s, "raw_output": reply.text,
                 "attempts": reply.attempts}
        if reply.error is not None:
            return JudgeResult(**self._base(item), **usage, status=Status.error, error=reply.error)
        parsed = parse_output(item.record.task, reply.text)  # read once: verdict and critique
        result, status = _verdict(request, reply, parsed)
        critique = parsed.critique if self.mode is Mode.critique else None
        probs = reply.label_probs
        return JudgeResult(
            **self._base(item), **usage, result=result, status=status, critique=critique, probabilities=probs,
            expected_score=expected_score(probs) if probs and item.record.task is Task.absolute else None,
        )

    def _combine(self, item: _Prepared, replies: list[Reply]) -> JudgeResult:
        first = self._single(item, item.requests[0], replies[0])
        if len(replies) == 1:
            return first
        second = self._single(item, item.requests[1], replies[1])
        second_result = swap_label(second.result)
        if first.status is Status.error or second.status is Status.error:
            return first if first.status is Status.error else second
        probs = None
        if first.probabilities and second.probabilities:
            probs = {label: (first.probabilities[label] + second.probabilities[swap_label(label)]) / 2
                     for label in LABELS[Task.pairwise]}
        if probs is not None:
            result = max(probs, key=probs.__getitem__)  # A on a tie of probabilities
        elif first.result is not None and second_result is not None:
            result = first.result if first.result == second_result else TIE
        else:
            result = first.result or second_result
        # the weaker status among the orders that gave a result (an unreadable order shows in result_by_order)
        statuses = {r.status for r in (first, second) if r.result is not None} or {Status.parse_failed}
        status = max(statuses, key=_STATUS_RANK.index)
        if result is None:
            status = Status.parse_failed
        return first.model_copy(update={
            "result": result,
            "probabilities": probs,
            "status": status,
            "critique": "\n\n".join(c for c in (first.critique, second.critique) if c) or None,
            "raw_output": first.raw_output + "\n\n=== swapped order ===\n\n" + second.raw_output,
            "prompt_tokens": first.prompt_tokens + second.prompt_tokens,
            "completion_tokens": first.completion_tokens + second.completion_tokens,
            "latency_s": first.latency_s + second.latency_s,
            "orders_agree": first.result is not None and first.result == second_result,
            "result_by_order": [first.result, second_result],
        })


#: From best to worst: a combined result takes the weaker status of its two orders.
_STATUS_RANK = [Status.ok, Status.logits, Status.tolerant, Status.forced, Status.parse_failed, Status.error]


def _verdict(request: Request, reply: Reply, parsed: Parsed | None = None) -> tuple[str | None, Status]:
    """The verdict and how it was obtained.

    Order: one strict `**Result:** X` in the text (the first tag; a second tag with another label makes the
    reading at best tolerant, and the probabilities, read where the first tag was written, decide); the label
    distribution where the model itself reached `**Result:**`; the distribution after gavel appended
    `**Result:**` because the model never wrote it (the model's own numbers beat loose reading of prose); a
    verdict-shaped last line read tolerantly.
    """
    if reply.error is not None:
        return None, Status.error
    parsed = parsed or parse_output(_task_of(request.labels), reply.text)
    best = max(reply.label_probs, key=reply.label_probs.__getitem__) if reply.label_probs else None
    if parsed.result is not None and parsed.strict:
        return parsed.result, Status.ok
    if parsed.conflict:
        return (best if best is not None and not reply.forced else parsed.result), Status.tolerant
    if best is not None and not reply.forced:
        return best, Status.ok if request.critique else Status.logits
    if best is not None:
        return best, Status.forced
    if parsed.result is not None:
        return parsed.result, Status.tolerant
    return None, Status.parse_failed


def _task_of(labels: tuple[str, ...]) -> Task:
    return next(task for task, allowed in LABELS.items() if allowed == labels)
