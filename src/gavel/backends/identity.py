"""A model's identity: which weights a judgment came from, by content, not by name.

``model_identity(spec)`` names the base and the adapter of a model spec, each by its resolved path and a
SHA-256 of its content; an OpenAI-compatible server by its base URL and model name; a hub id by its name.
``ModelIdentity.key`` is a short stable string of what decides the outputs (backend and content hashes), so a
retrained adapter written over the same path is another model, and two copies of one file are the same.

Files up to ``FULL_HASH_BYTES`` are hashed whole (the embedded 100-MB GGUF takes about 0.1 s); larger ones by
their size, their first ``HEAD_BYTES`` (a GGUF's header and tensor index) and evenly spaced samples of the rest.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gavel.backends import ModelSpec, parse_spec

FULL_HASH_BYTES = 1 << 30
HEAD_BYTES = 16 << 20
_SAMPLES = 64
_SAMPLE_BYTES = 1 << 20
_KEY_HEX = 16


class FileIdentity(BaseModel):
    """One model file (or folder): where it is and what is in it."""

    model_config = ConfigDict(frozen=True)

    path: str  # resolved, absolute
    sha256: str  # of the content (see content_hash)
    size: int  # bytes (a folder: of its files together)

    def __str__(self) -> str:
        return f"{self.path} (sha256 {self.sha256[:_KEY_HEX]})"


class ModelIdentity(BaseModel):
    """What a judgment came from: the backend, the base weights, the adapter; or a server URL and model name."""

    model_config = ConfigDict(frozen=True)

    backend: str  # llama.cpp | transformers | openai | ollama | vllm | gavel
    base: FileIdentity | None = None  # local weights: a file or a model folder
    adapter: FileIdentity | None = None  # a LoRA adapter applied at load
    merged: str | None = None  # the adapter folded into the base, in this format (gavel.backends.merge)
    name: str | None = None  # a hub id or a served model's name, when there are no local weights
    base_url: str | None = None  # a server's URL

    @property
    def key(self) -> str:
        """A stable string of what decides the outputs: equal keys, equal models."""
        parts = [self.backend]
        if self.base is not None:
            parts.append(self.base.sha256[:_KEY_HEX])
        if self.adapter is not None:
            parts.append("lora:" + self.adapter.sha256[:_KEY_HEX])
        if self.merged is not None:
            parts.append("merged:" + self.merged)
        if self.base is None:
            parts += [p for p in (self.base_url, self.name) if p]
        return ":".join(parts)

    def __str__(self) -> str:
        where = str(self.base) if self.base is not None else " ".join(p for p in (self.name, self.base_url) if p)
        merged = f" merged as {self.merged}" if self.merged else ""
        return f"{self.backend} {where}" + (f" + adapter {self.adapter}{merged}" if self.adapter is not None else "")

    def changes(self, then: ModelIdentity) -> list[str]:
        """What differs from an earlier identity, one phrase per part ("adapter: X then, Y now")."""
        if then.key == self.key:
            return []
        parts = [(name, getattr(then, name), getattr(self, name))
                 for name in ("backend", "base", "adapter", "merged", "name", "base_url")]
        differ = [f"{name}: {old or 'none'} then, {new or 'none'} now" for name, old, new in parts
                  if _content(old) != _content(new)]
        return differ or [f"model: {then} then, {self} now"]


def _content(part: object) -> object:
    return part.sha256 if isinstance(part, FileIdentity) else part


def model_identity(spec: str | ModelSpec | None) -> ModelIdentity:
    """The identity of the model a spec names (see :mod:`gavel.backends` for the spec forms).

    Raises FileNotFoundError when a local model file or adapter named by the spec does not exist.
    """
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if parsed.kind in ("openai", "ollama"):
        return ModelIdentity(backend=parsed.kind, name=parsed.model, base_url=(parsed.base_url or "").rstrip("/"))
    if parsed.kind == "gavel":  # offline, a gavel server is its URL (loaded, it reports the model it serves)
        return ModelIdentity(backend=parsed.kind, base_url=(parsed.base_url or "").rstrip("/"))
    if parsed.kind == "transformers" and parsed.model == "smollm2":
        from gavel.backends.embedded import embedded_gguf

        return ModelIdentity(backend=parsed.kind, base=file_identity(embedded_gguf()))
    path = Path(parsed.model)
    if parsed.kind != "llama.cpp" and not path.exists():  # a hub id: its name is all there is offline
        return ModelIdentity(backend=parsed.kind, name=parsed.model)
    adapter = parsed.options.get("lora_path")
    return ModelIdentity(backend=parsed.kind, base=file_identity(path),
                         adapter=file_identity(Path(adapter)) if adapter else None, merged=parsed.options.get("merge"))


def file_identity(path: Path) -> FileIdentity:
    """A file's or a model folder's identity (a folder: the hashes of its top-level files, by name)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file or folder")
    resolved = path.resolve()
    if not resolved.is_dir():
        return FileIdentity(path=str(resolved), sha256=content_hash(resolved), size=resolved.stat().st_size)
    files = sorted(p for p in resolved.iterdir() if p.is_file() and not p.name.startswith("."))
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{content_hash(file)}\n".encode())
    return FileIdentity(path=str(resolved), sha256=digest.hexdigest(), size=sum(f.stat().st_size for f in files))


def content_hash(path: Path) -> str:
    """SHA-256 of a file: the whole file up to FULL_HASH_BYTES, else its size, head and evenly spaced samples."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size <= FULL_HASH_BYTES:
            return hashlib.file_digest(handle, "sha256").hexdigest()
        digest = hashlib.sha256(f"sampled {size}\n".encode())
        digest.update(handle.read(HEAD_BYTES))
        step = (size - HEAD_BYTES) // _SAMPLES
        for index in range(_SAMPLES):
            handle.seek(HEAD_BYTES + index * step)
            digest.update(handle.read(_SAMPLE_BYTES))
        handle.seek(max(size - _SAMPLE_BYTES, 0), os.SEEK_SET)
        digest.update(handle.read(_SAMPLE_BYTES))
        return digest.hexdigest()
