"""File input and output shared by every layer: reading rows in any format, hub-or-local loading, and the
crash-safe JSONL writer (whole lines only; a torn tail after a crash is cut off on the next open)."""

from __future__ import annotations

import fcntl
import functools
import gzip
import json
import os
import socket
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class DataUnavailable(RuntimeError):
    """Data is neither in a local copy nor reachable on the hub."""


def read_json(path: Path) -> Any:
    """A whole JSON document."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSON Lines file; ValueError naming file and line at the first bad line."""
    rows = []
    for number, row, error in iter_jsonl(path):
        if error is not None:
            raise ValueError(f"{path}, line {number}: {error}")
        rows.append(row)
    return rows


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
    """True when the environment asks not to reach the hub, or the hub's host cannot be reached (3 s at most).

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
        socket.create_connection((host, 443), timeout=3).close()  # resolves, then connects: fails fast offline
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
        reason = "the hub cannot be reached, or HF_HUB_OFFLINE is set"
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



class OutputError(RuntimeError):
    """An output path gavel must not or cannot write; the message is one line for the user."""


class OutputLocked(OutputError):
    """Another process is writing the same output."""


def check_output_path(path: Path, inputs: Sequence[str | Path] = ()) -> None:
    """Refuse, before any work, an output that is a folder, lies under a file, cannot be written, or is an input."""
    for source in inputs:
        source_path = Path(str(source))
        if source_path.exists() and path.exists() and os.path.samefile(source_path, path):
            raise OutputError(f"output {path} is the input file; choose another --output")
    if path.is_dir():
        raise OutputError(f"output {path} is a folder; give a file name, e.g. {path / 'judged.jsonl'}")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise OutputError(f"output {path} cannot be created: {parent} is a file, not a folder")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK) or _read_only_fs(target):
        why = "the file system is read-only" if _read_only_fs(target) else "permission denied"
        raise OutputError(f"output {path} cannot be written: {why} ({target})")
    if path.is_file():
        _probe_lock(path)


def check_output_dir(path: Path) -> None:
    """Refuse, before any work, an output folder that is a file, lies under a file, or cannot be written."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is a file, not a folder; choose another --output")
    existing = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(f"output {path} cannot be created: {existing} is a file, not a folder")
    if _read_only_fs(existing):
        raise OutputError(f"output {path} cannot be written: the file system is read-only ({existing})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"output {path} cannot be written: permission denied ({existing})")


def is_empty_dir(path: Path) -> bool:
    """True for a folder with nothing in it, or a path that does not exist yet."""
    return not path.exists() or (path.is_dir() and next(path.iterdir(), None) is None)


def _probe_lock(path: Path) -> None:
    """Refuse early when another process holds the output's lock (the writer takes it for real later)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        lock_or_refuse(fd, path)
    finally:
        os.close(fd)


def lock_or_refuse(fd: int, path: Path) -> None:
    """Take the exclusive lock on `fd` (the file at `path`), or raise OutputLocked naming the holder.

    A holder that has just finished is given a moment (it cannot be named once it is gone).
    """
    for _ in range(5):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = lock_holder(path)
            if holder:
                raise OutputLocked(_locked_message(path, holder)) from None
            time.sleep(0.05)
    raise OutputLocked(_locked_message(path, "another process"))


def _locked_message(path: Path, holder: str) -> str:
    return f"output {path} is being written by {holder}; wait for it to finish or choose another --output"


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def lock_holder(path: Path) -> str:
    """Who holds a flock on `path` ("pid N (command)"), read from /proc/locks; "" when not found."""
    try:
        inode = os.stat(path).st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF" (a blocked waiter has "->" after the number)
            parts = [p for p in parts if p != "->"]
            if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
                pid = parts[4]
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                except OSError:
                    command = ""
                return f"pid {pid}" + (f" ({command})" if command else "")
    except OSError:
        pass
    return ""


def iter_jsonl(path: Path, *, complete_only: bool = False) -> Iterator[tuple[int, Any, str | None]]:
    """The one JSON Lines reader: (line number, row, error) for every non-blank line.

    A row is a JSON object; a line that is not valid UTF-8, not JSON or not an object gives (number, None,
    reason) and the lines after it carry on. ``.gz`` is decompressed and a byte-order mark skipped. With
    ``complete_only`` a torn last line (no newline: a write cut off by a crash) is left out; nothing is changed.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, data in enumerate(handle, start=1):
            if complete_only and not data.endswith(b"\n"):
                return
            yield from _decoded(number, data.removeprefix(_BOM) if number == 1 else data)


_BOM = b"\xef\xbb\xbf"


def _decoded(number: int, data: bytes) -> Iterator[tuple[int, Any, str | None]]:
    try:
        line = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield number, None, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte {exc.start + 1})"
        return
    if not line.strip():
        return
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        yield number, None, f"invalid JSON at column {exc.colno}: {exc.msg}"
        return
    yield (number, row, None) if isinstance(row, dict) else (number, None, "row is not a JSON object")


def repair_jsonl(path: Path) -> set[str]:
    """Cut a torn last line off `path` and return the ids of the complete lines."""
    return {str(row["id"]) for row in repair_jsonl_rows(path) if "id" in row}


def repair_jsonl_rows(path: Path) -> list[dict[str, Any]]:
    """Cut a torn last line off `path` (what a crash mid-write leaves) and return the rows of the others."""
    if not path.exists():
        return []
    data = path.read_bytes()
    keep = len(data) if data.endswith(b"\n") else data.rfind(b"\n") + 1
    if keep != len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)
    return [row for _, row, error in iter_jsonl(path) if error is None]


def write_errors(path: Path, errors: Sequence[BaseModel]) -> Path | None:
    """The one error writer: replace ``path`` with one JSON line per error; remove it when there are none."""
    if not errors:
        path.unlink(missing_ok=True)
        return None
    write_text_atomic(path, "\n".join(error.model_dump_json() for error in errors))
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a crash leaves the old file or the new one, never half."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(text + "\n", encoding="utf-8")
    os.replace(staging, path)


class JsonlAppender:
    """Appends whole lines to a JSONL file (one write per line; `sync` flushes to disk).

    With ``lock=True`` it holds an exclusive lock on the file while open, and refuses (OutputLocked, naming
    the other process) when another writer holds it.
    """

    def __init__(self, path: Path, *, lock: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if lock:
            try:
                lock_or_refuse(self.fd, path)
            except OutputLocked:
                os.close(self.fd)
                raise

    def write(self, row: dict[str, Any]) -> None:
        _write_all(self.fd, _line(row))

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        """Replace the file with these rows in one step (a crash leaves the old file or the new), still locked:
        the new file is locked before it takes the old one's name."""
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(staging, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _write_all(fd, b"".join(_line(row) for row in rows))
            os.fsync(fd)
            os.replace(staging, self.path)
        except BaseException:
            os.close(fd)
            staging.unlink(missing_ok=True)
            raise
        os.close(self.fd)
        self.fd = fd

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)  # releases the lock


def _line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    while written < len(data):  # short writes are rare; finish the job
        written += os.write(fd, data[written:])
