"""The judgment cache: an item judged again by the same model, template, mode and settings is read back.

One SQLite file (standard library), shared by threads and processes: WAL journal, a writer waits for the
others (busy timeout, and SQLite's immediate "busy" answers, such as two processes switching a new file to
WAL at once, are retried until that timeout), and a row is written whole or not at all, so processes filling
one cache at once lose nothing. The key is a SHA-256 of the model's identity (weights and adapter by content,
or a server's URL and model name), the template text, the mode, every judge setting and the rendered
requests; the value is the ``JudgeResult`` as JSON. Record ids are not part of the key: the same item under
a new id is a hit.

A file that is not a cache, or is damaged, is reported once and bypassed: judging goes on without it.
Errored results are not stored (a server that was down must be asked again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from gavel.backends.base import Request
from gavel.judge.result import JudgeResult

log = logging.getLogger(__name__)

#: Part of every key: a change to what a cached value means starts a new key space.
CACHE_FORMAT = 1
_BUSY_TIMEOUT_S = 60.0
_BUSY_RETRY_S = 0.05
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
T = TypeVar("T")


def cache_key(model: str, template_text: str, mode: str, settings: dict[str, Any], requests: list[Request]) -> str:
    """SHA-256 of everything that decides a judgment (never the record's id)."""
    payload = {"format": CACHE_FORMAT, "model": model, "template": template_text, "mode": mode,
               "settings": settings, "requests": [asdict(r) for r in requests]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class JudgmentCache:
    """Judge results by key in one SQLite file; ``hits`` and ``misses`` count this process's lookups."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
            _while_busy(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            _while_busy(lambda: self._db.execute(
                "CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, result TEXT NOT NULL)"))
        except (sqlite3.Error, OSError) as exc:
            self._bypass(exc)

    @property
    def active(self) -> bool:
        """False once the file proved unusable (then every lookup misses and nothing is stored)."""
        return self._db is not None

    def get(self, key: str) -> JudgeResult | None:
        row = self._run("SELECT result FROM judgments WHERE key = ?", (key,))
        result = None
        if row is not None:
            try:
                result = JudgeResult.model_validate_json(row[0])
            except ValidationError:  # a row another gavel version wrote differently: judge again, overwrite it
                result = None
        if result is None:
            self.misses += 1
        else:
            self.hits += 1
        return result

    def put(self, key: str, result: JudgeResult) -> None:
        self._run("INSERT OR REPLACE INTO judgments (key, result) VALUES (?, ?)", (key, result.model_dump_json()))

    def __len__(self) -> int:
        row = self._run("SELECT COUNT(*) FROM judgments", ())
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _run(self, sql: str, params: tuple) -> tuple | None:
        with self._lock:
            if self._db is None:
                return None
            try:
                db = self._db
                return _while_busy(lambda: db.execute(sql, params).fetchone())
            except sqlite3.Error as exc:
                self._bypass(exc)
                return None

    def _bypass(self, exc: BaseException) -> None:
        log.warning("judgment cache %s cannot be used (%s): judging without it", self.path, exc)
        if self._db is not None:
            self._db.close()
        self._db = None


def _while_busy(statement: Callable[[], T]) -> T:
    """Run ``statement``, again while SQLite answers busy or locked, for at most the busy timeout."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in _BUSY_CODES or time.monotonic() > deadline:
                raise
            time.sleep(_BUSY_RETRY_S)
