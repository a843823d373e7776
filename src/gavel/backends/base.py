"""The small interface every judge backend implements.

A backend receives fully rendered chat requests and returns, for each, the text it generated and,
where it can see logits or logprobs, the probability of each allowed verdict at the position right
after ``**Result:**``. Prompt rendering, parsing and combining both orders live in the judge engine.
"""

from __future__ import annotations

import math
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gavel.backends.identity import ModelIdentity

from gavel.settings import DEFAULTS


class InputTooLong(ValueError):
    """The rendered prompt does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, limit: int) -> None:
        super().__init__(f"input is {prompt_tokens} tokens; the model's context allows {limit} "
                         "(keeping room for the output), so it is too long")
        self.prompt_tokens = prompt_tokens
        self.limit = limit


class ServerUnavailable(RuntimeError):
    """The backend's server does not answer: at start, or after too many failed requests in a row.

    The one exception ``Backend.run`` may raise: it stops the run (what was written so far is kept).
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"no server answers at {url} ({reason}); start it or check the URL, then run again")
        self.url = url


@dataclass(frozen=True)
class Request:
    """One judging call: the chat messages, the verdicts allowed, and the generation settings.

    Every backend takes its sampling settings from here alone (never from its constructor), so a retry
    that raises the temperature reaches the model whatever the backend. The engine fills them from the
    judge's :class:`~gavel.settings.JudgeSettings`; the defaults are that model's.
    """

    messages: list[dict[str, str]]
    labels: tuple[str, ...]
    critique: bool
    max_new_tokens: int = DEFAULTS.max_new_tokens
    temperature: float = 0.0  # 0 = greedy; retries after a parse failure sample
    repetition_penalty: float = DEFAULTS.repetition_penalty  # 1.0 = off; local backends and vLLM apply it to critiques


@dataclass
class Reply:
    """What a backend returns for one request.

    ``text`` is what the model generated. ``label_probs`` is the distribution over the allowed labels at
    the verdict position, normalised over those labels, or None when the backend exposes no logits.
    ``forced`` says the backend appended ``**Result:**`` itself because the model did not write it.
    """

    text: str = ""
    label_probs: dict[str, float] | None = None
    forced: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    input_error: bool = False
    attempts: int = 1


@dataclass
class BackendInfo:
    name: str
    kind: str
    context_length: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    identity: ModelIdentity | None = None  # set by load_backend: the weights by content (gavel.backends.identity)
    max_new_tokens: int | None = None  # the most tokens a request may ask to generate (a server's limit)


class Backend(ABC):
    """Base class: subclasses implement `run` and set `info`."""

    info: BackendInfo
    #: How many requests the runner should hand over at once.
    batch_size: int = 1
    #: Whether several threads may call `run` at once (a server client); a local model may not (see model_lock).
    concurrent: bool = False

    @abstractmethod
    def run(self, requests: Sequence[Request]) -> list[Reply]:
        """Judge a batch of requests; an item that fails yields a Reply with `error` set, never an exception
        (only :class:`ServerUnavailable`, which ends the run)."""

    def stream(self, requests: Iterable[Request]) -> Iterator[Reply]:
        """Replies in request order, each as soon as it and those before it are back; requests read lazily.

        This default hands `batch_size` requests at a time to `run`; a backend that refills its batch as
        items finish overrides it.
        """
        chunk: list[Request] = []
        for request in requests:
            chunk.append(request)
            if len(chunk) >= self.batch_size:
                yield from self.run(chunk)
                chunk = []
        if chunk:
            yield from self.run(chunk)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release model memory or connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCKS: weakref.WeakKeyDictionary[Backend, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(backend: Backend) -> AbstractContextManager:
    """Hold this while calling `backend.run`: one batch at a time on a local model, no wait for a server client."""
    if backend.concurrent:
        return nullcontext()
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(backend, threading.Lock())


def normalise(logprobs: dict[str, float]) -> dict[str, float]:
    """Turn per-label log-probabilities (possibly unnormalised) into probabilities summing to 1."""
    finite = {k: v for k, v in logprobs.items() if v is not None and v > -math.inf}
    if not finite:
        return {k: 1.0 / len(logprobs) for k in logprobs}
    top = max(finite.values())
    weights = {k: math.exp(logprobs[k] - top) if k in finite else 0.0 for k in logprobs}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


def label_variants(label: str) -> tuple[str, ...]:
    """Surface forms of a verdict as the first token after ``**Result:**``."""
    forms = [f" {label}", label]
    if len(label) > 1:  # "yes"/"no" in lower case, but never " a" (the article) for "A"
        forms += [f" {label.lower()}", label.lower()]
    return tuple(forms)
