"""File input and output shared by every layer: reading rows in any format, hub-or-local loading, and the
crash-safe JSONL writer (whole lines only; a torn tail after a crash is cut off on the next open)."""

from __future__ import annotations

import functools
import gzip
import json
import os
import socket
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class DataUnavailable(RuntimeError):
    """Data is neither in a local copy nor reachable on the hub."""


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

    Raises DataUnavailable naming both places tried.
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
    raise DataUnavailable(f"no local copy ({where}) and hub dataset {hub} unavailable ({reason})")


def read_first_local(local: Sequence[Path], split: str) -> list[dict[str, Any]] | None:
    """Rows of the first candidate that exists (file or saved dataset folder), or None."""
    for path in local:
        if path.is_file() or _is_saved_dataset(path):
            return read_any(path, split)
    return None


def load_local_only(local: Sequence[Path], split: str, why: str) -> list[dict[str, Any]]:
    """Rows of the first local copy that exists; DataUnavailable (with ``why``) when none does."""
    rows = read_first_local(local, split)
    if rows is None:
        where = ", ".join(str(p) for p in local) or "(no data root)"
        raise DataUnavailable(f"no local copy ({where}); {why}")
    return rows


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()



def repair_jsonl(path: Path) -> set[str]:
    """Cut a torn last line off `path` and return the ids of the complete lines."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1 if not data.endswith(b"\n") else len(data)
    if keep != len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)
    done = set()
    for line in data[:keep].splitlines():
        if line.strip():
            try:
                done.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


class JsonlAppender:
    """Appends whole lines to a JSONL file (one write per line, flushed and fsynced per batch)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, row: dict[str, Any]) -> None:
        data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        written = os.write(self.fd, data)
        while written < len(data):  # short writes are rare; finish the line
            written += os.write(self.fd, data[written:])

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)




def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, row, error) for every non-blank line; a line that is not a JSON object gives an error."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, f"invalid JSON: {exc}"
                continue
            if isinstance(row, dict):
                yield number, row, None
            else:
                yield number, None, "row is not a JSON object"
