"""Decontamination: drop items whose instruction or responses overlap a benchmark by word n-grams.

Every benchmark in gavel's bench registry that loads locally is indexed (instruction and responses of
every record). An item's text is contaminated by a benchmark when at least ``threshold`` of its n-grams
occur in that benchmark's index; texts shorter than n words are compared whole (normalised).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gavel.bench.registry import all_benchmarks
from gavel.curate.sources import Item
from gavel.data import LoadContext, default_data_root
from gavel.io import DataUnavailable, read_json, read_jsonl
from gavel.judge.records import JudgeRecord

log = logging.getLogger(__name__)
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stable_hash(text: str) -> int:
    """64-bit hash that is the same in every process (Python's str hash is salted per process, and the index
    built here is shared with `datasets` worker processes)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def ngrams(text: str, n: int) -> set[int]:
    tokens = words(text)
    if len(tokens) < n:
        return {_stable_hash(" ".join(tokens))} if tokens else set()
    return {_stable_hash(" ".join(tokens[i:i + n])) for i in range(len(tokens) - n + 1)}


def record_texts(record: JudgeRecord) -> list[str]:
    return [t for t in (record.instruction, record.response, record.response_a, record.response_b) if t]


@dataclass
class BenchmarkIndex:
    """n-gram hashes per benchmark, and which benchmarks could not be loaded."""

    n: int
    grams: dict[str, set[int]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, records: list[JudgeRecord]) -> None:
        target = self.grams.setdefault(name, set())
        for record in records:
            for text in record_texts(record):
                target |= ngrams(text, self.n)

    def add_texts(self, name: str, texts: list[str]) -> None:
        target = self.grams.setdefault(name, set())
        for text in texts:
            target |= ngrams(text, self.n)

    def hit(self, texts: list[str], threshold: float) -> str | None:
        """The first benchmark (by name) that contaminates any of the texts, or None.

        The first text (the instruction) counts at any length; a response shorter than n words is too
        generic ("Yes.", "4") to prove contamination and is skipped.
        """
        for position, text in enumerate(texts):
            if position > 0 and len(words(text)) < self.n:
                continue
            grams = ngrams(text, self.n)
            if not grams:
                continue
            for name in sorted(self.grams):
                if len(grams & self.grams[name]) / len(grams) >= threshold:
                    return name
        return None


def _unregistered_texts(root: Path) -> dict[str, list[str]]:
    """Evaluation sets in the benchmark tree that the bench registry does not (yet) register.

    MetaCritique (Shepherd items) and the PRMBench evaluation subset overlap the training sources.
    """
    found: dict[str, list[str]] = {}
    meta = root / "metacritique" / "data" / "benchmark_data.json"
    if meta.exists():
        found["metacritique"] = [t for row in read_json(meta) for t in (row.get("question"), row.get("response")) if t]
    prm = sorted((root / "prmbench").rglob("*.jsonl")) if (root / "prmbench").exists() else []
    if prm:
        texts = []
        for path in prm:
            for row in read_jsonl(path):
                texts.append(row.get("modified_question") or row.get("question") or "")
                process = row.get("modified_process")
                if isinstance(process, list):
                    texts.append("\n".join(map(str, process)))
        found["prmbench"] = [t for t in texts if t]
    return found


def build_index(n: int, names: list[str] | None = None, data_root: str | None = None,
                exclude: Sequence[str] = ()) -> BenchmarkIndex:
    """Index every registered benchmark (or the named ones), less ``exclude``, that loads from local data or
    the hub."""
    index = BenchmarkIndex(n=n)
    ctx = LoadContext(data_root=default_data_root(data_root), root_option="decontam.data_root in the curate config")
    registry = all_benchmarks()
    unknown = sorted(set(exclude) - set(registry))
    if unknown:
        raise KeyError(f"unknown benchmark(s) {unknown} in decontam.exclude")
    for name in [name for name in names or sorted(registry) if name not in exclude]:
        benchmark = registry.get(name)
        if benchmark is None:
            raise KeyError(f"unknown benchmark {name!r} in decontam.benchmarks")
        try:
            index.add(name, benchmark.load(ctx))
        except (DataUnavailable, FileNotFoundError, OSError) as exc:
            index.unavailable[name] = str(exc)
            log.info("decontamination: benchmark %s not loaded: %s", name, exc)
    if names is None and ctx.data_root is not None:
        for name, texts in _unregistered_texts(ctx.data_root).items():
            index.add_texts(name, texts)
    return index


def decontaminate(items: list[Item], index: BenchmarkIndex, threshold: float) -> tuple[list[Item], Counter, list]:
    """Items kept, removals per benchmark, and (item id, benchmark) for each removal."""
    kept, removed, log_rows = [], Counter(), []
    for item in items:
        hit = index.hit(record_texts(item.record), threshold)
        if hit is None:
            kept.append(item)
        else:
            removed[hit] += 1
            log_rows.append({"id": item.id, "source": item.source, "benchmark": hit})
    return kept, removed, log_rows
