"""gavel's judge inside other tools: a TRL reward (:mod:`.trl`), Inspect AI scorers (:mod:`.inspect`), DeepEval
metrics (:mod:`.deepeval`).

Each module is optional and imports its tool only when used (``pip install 'gavel[train]'``, ``'gavel[inspect]'``,
``'gavel[deepeval]'``); this package itself imports none of them. What they share lives here: turning a model spec
into a judge, and reading chat messages as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gavel.judge.cache import JudgmentCache
from gavel.judge.engine import Judge

JudgeLike = Judge | str | None


def as_judge(judge: JudgeLike = None, cache: str | Path | JudgmentCache | None = None, **settings: Any) -> Judge:
    """A Judge as given, or one built from a model spec (None: gavel's default judge) with a cache and settings."""
    if isinstance(judge, Judge):
        if cache is not None or settings:
            raise ValueError("pass cache and settings to Judge(...) itself when giving a Judge")
        return judge
    return Judge(judge, cache=cache, **settings)


def both_orders(judge: Judge) -> Judge:
    """The judge reading each pair in both orders (the same model, cache and other settings)."""
    if judge.both_orders:
        return judge
    return Judge(judge.backend, judge.settings, templates=judge.templates, cache=judge.cache, both_orders=True)


def message_text(value: Any, role: str | None = None) -> str:
    """A prompt or completion as text: a string as it is; for chat messages, the content of the last message
    with ``role`` (any role when None), its text parts joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = [value]
    messages = [m for m in value if role is None or m.get("role") == role]
    if not messages:
        raise ValueError(f"no {role or 'chat'} message in {value!r:.200}")
    content = messages[-1].get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
