"""Helpers shared by the benchmark loaders: file reading, hub fallback, prompt splitting, placement."""

from __future__ import annotations

import functools
import gzip
import json
import logging
import math
import os
import random
import re
import socket
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gavel.bench.registry import BenchmarkUnavailable, LoadContext
from gavel.judge.records import JudgeRecord, validate_row

log = logging.getLogger(__name__)

#: Stands in for an empty response, which the record schema rejects; judging "nothing" stays possible.
EMPTY_RESPONSE = "(empty response)"


# --- reading files ---------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """A whole JSON document."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every non-blank line of a JSON Lines file (``.gz`` is decompressed)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_parquet(path: Path) -> list[dict[str, Any]]:
    """A Parquet file as plain Python rows (no numpy scalars)."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def read_saved_dataset(path: Path, split: str) -> list[dict[str, Any]]:
    """A folder written by ``Dataset.save_to_disk`` (or ``DatasetDict.save_to_disk``)."""
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        loaded = loaded[split] if split in loaded else next(iter(loaded.values()))
    return [dict(row) for row in loaded]


def read_any(path: Path, split: str = "test") -> list[dict[str, Any]]:
    """Rows of a JSONL, JSON array, Parquet file or a saved dataset folder."""
    if path.is_dir():
        return read_saved_dataset(path, split)
    if path.suffix == ".parquet":
        return read_parquet(path)
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON array of rows")
        return data
    return read_jsonl(path)


def local_candidates(ctx: LoadContext, folder: str, stem: str) -> list[Path]:
    """The places a local copy may live: ``<root>/<folder>/<stem>.jsonl|.json|.parquet`` or ``<stem>/``."""
    if ctx.data_root is None:
        return []
    base = ctx.data_root / folder
    return [base / f"{stem}.jsonl", base / f"{stem}.json", base / f"{stem}.parquet", base / stem]


def hub_offline() -> bool:
    """True when the environment asks ``datasets`` not to reach the hub, or the hub's host does not resolve.

    The look-up spares a user without network the retries `datasets` makes before it gives up.
    """
    if any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
           for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return True
    return not _hub_resolves()


@functools.cache
def _hub_resolves() -> bool:
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def load_hub_or_local(
    hub_name: str, config: str | None, split: str, local: Sequence[Path]
) -> list[dict[str, Any]]:
    """Rows from the first local copy that exists, else from the hub (unless offline).

    Raises BenchmarkUnavailable naming both places tried.
    """
    rows = read_first_local(local, split)
    if rows is not None:
        return rows
    if hub_offline():
        reason = "HF_HUB_OFFLINE is set"
    else:
        try:
            import datasets

            dataset = datasets.load_dataset(hub_name, config, split=split)
            return [dict(row) for row in dataset]
        except Exception as exc:  # the hub raises many kinds of errors; all mean "not reachable"
            reason = f"{type(exc).__name__}: {exc}"
    where = ", ".join(str(p) for p in local) or "(no data root)"
    hub = f"{hub_name}" + (f" config {config}" if config else "") + f" split {split}"
    raise BenchmarkUnavailable(f"no local copy ({where}) and hub dataset {hub} unavailable ({reason})")


def read_first_local(local: Sequence[Path], split: str) -> list[dict[str, Any]] | None:
    """Rows of the first candidate that exists (file or saved dataset folder), or None."""
    for path in local:
        if path.is_file() or _is_saved_dataset(path):
            return read_any(path, split)
    return None


def load_local_only(local: Sequence[Path], split: str, why: str) -> list[dict[str, Any]]:
    """Rows of the first local copy that exists; BenchmarkUnavailable (with ``why``) when none does."""
    rows = read_first_local(local, split)
    if rows is None:
        where = ", ".join(str(p) for p in local) or "(no data root)"
        raise BenchmarkUnavailable(f"no local copy ({where}); {why}")
    return rows


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()


# --- building records ------------------------------------------------------------------------------


def build_records(rows: Iterable[dict[str, Any]], source: str) -> list[JudgeRecord]:
    """Validate prepared rows into records; invalid rows are logged and skipped."""
    records = []
    for number, raw in enumerate(rows, start=1):
        loaded = validate_row(raw, source, number)
        if loaded.record is None:
            log.warning("skipping %s", loaded.error)
            continue
        records.append(loaded.record)
    return records


def text_or_empty(value: Any) -> str:
    """The text, or a visible placeholder when it is missing or blank."""
    text = "" if value is None else str(value)
    return text if text.strip() else EMPTY_RESPONSE


def place_pair(better: str, worse: str, key: str, seed: int) -> tuple[str, str, str]:
    """Put the better response at A or B by a coin seeded on (seed, key): (response_a, response_b, label)."""
    if random.Random(f"{seed}-{key}").random() < 0.5:
        return better, worse, "A"
    return worse, better, "B"


def mean_score(scores: Sequence[float]) -> float:
    """The mean of a non-empty list of scores."""
    return sum(scores) / len(scores)


def round_score(value: float) -> int:
    """Round half up (Python's round() rounds half to even) and clip to 1..5."""
    return min(5, max(1, math.floor(value + 0.5)))


def slug(text: str) -> str:
    """A lower-case identifier fragment: ``"length bias"`` -> ``"length-bias"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --- Prometheus prompts ----------------------------------------------------------------------------

_HEADERS = ("Task Description", "The instruction to evaluate", "Response to evaluate",
            "Reference Answer (Score 5)", "Score Rubrics", "Feedback")
_HEADER = re.compile(r"^###(" + "|".join(re.escape(h) for h in _HEADERS) + r"):[ \t]*$", re.MULTILINE)
_LEVEL = re.compile(r"^\s*Score\s+([1-5])\s*:\s*(.*)$")


def split_prometheus_prompt(prompt: str) -> dict[str, str]:
    """Map each known ``###Header:`` line of a Prometheus prompt to the stripped text under it."""
    matches = list(_HEADER.finditer(prompt))
    sections = {}
    for current, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(prompt)
        sections[current.group(1).strip()] = prompt[current.end():end].strip()
    return sections


def parse_prometheus_rubric(text: str) -> dict[str, str]:
    """``[criterion]`` followed by ``Score 1: ...`` .. ``Score 5: ...`` lines, as a rubric dict."""
    rubric: dict[str, str] = {}
    objective_lines = []
    current: str | None = None
    for line in text.splitlines():
        level = _LEVEL.match(line)
        if level:
            current = f"score{level.group(1)}"
            rubric[current] = level.group(2).strip()
        elif current is not None and line.strip():
            rubric[current] += "\n" + line.strip()
        elif current is None:
            objective_lines.append(line)
    objective = "\n".join(objective_lines).strip()
    if objective.startswith("[") and objective.endswith("]"):
        objective = objective[1:-1].strip()
    rubric["objective"] = objective
    return rubric


def prometheus_parts(prompt: str) -> dict[str, Any]:
    """Instruction, response, reference and rubric of a Prometheus absolute-grading prompt."""
    sections = split_prometheus_prompt(prompt)
    needed = ("The instruction to evaluate", "Response to evaluate", "Score Rubrics")
    missing = [h for h in needed if h not in sections]
    if missing:
        raise ValueError(f"prompt lacks the section(s) {missing}")
    return {
        "instruction": sections["The instruction to evaluate"],
        "response": text_or_empty(sections["Response to evaluate"]),
        "reference": sections.get("Reference Answer (Score 5)"),
        "rubric": parse_prometheus_rubric(sections["Score Rubrics"]),
    }
