"""LoRA adapters in GGUF (what ``gavel train`` exports), checked against their base before llama.cpp sees them.

llama.cpp trusts an adapter file: a text file, or an adapter made for another base, is accepted at load and
kills the process with a segmentation fault at the first forward pass. :func:`check_adapter` reads both
files' headers with the ``gguf`` package and refuses, in one line, anything but a LoRA adapter whose tensors
are named after the base's and fit their shapes.

Reading a base's header parses its whole vocabulary (seconds for the embedded model), so the base's tensor
shapes are cached under the cache folder, by the base's content hash.
"""

from __future__ import annotations

import json
from pathlib import Path

from gavel.backends.embedded import cache_dir
from gavel.backends.identity import content_hash
from gavel.io import write_text_atomic

_A, _B = ".lora_a", ".lora_b"
_TOKEN_EMBEDDING = "token_embd.weight"


class AdapterMismatch(ValueError):
    """The adapter is not a LoRA GGUF, or does not fit the base; the message is one line for the user."""


def check_adapter(base: Path, adapter: Path) -> None:
    """Raise AdapterMismatch unless `adapter` is a LoRA adapter (GGUF) whose tensors fit the GGUF `base`."""
    reader = _read(adapter, "adapter")
    kind = (_field(reader, "general.type"), _field(reader, "adapter.type"))
    if kind != ("adapter", "lora"):
        raise AdapterMismatch(f"{adapter} is a GGUF file but not a LoRA adapter (general.type {kind[0]!r}, "
                              f"adapter.type {kind[1]!r})")
    architecture, shapes = base_tensors(base)
    if _field(reader, "general.architecture") != architecture:
        raise AdapterMismatch(f"{adapter} is an adapter for a {_field(reader, 'general.architecture')!r} model, "
                              f"{base} is {architecture!r}")
    tensors = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    if not tensors:
        raise AdapterMismatch(f"{adapter} holds no tensors")
    for name in sorted(tensors):
        target = name.removesuffix(_A).removesuffix(_B)
        if target == name:
            raise AdapterMismatch(f"{adapter}: tensor {name} is not a LoRA tensor (…{_A} or …{_B})")
        if target not in shapes:
            raise AdapterMismatch(f"{adapter} does not fit {base}: the base has no tensor {target}")
        a, b = tensors.get(target + _A), tensors.get(target + _B)
        if a is None or b is None:
            raise AdapterMismatch(f"{adapter}: {target} has {_A if a else _B} without {_B if a else _A}")
        if not _fits(target, shapes[target], a, b):
            raise AdapterMismatch(f"{adapter} does not fit {base}: {target} is {_dims(shapes[target])} in the "
                                  f"base, the adapter's A and B are {_dims(a)} and {_dims(b)}")


def _fits(name: str, weight: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """llama.cpp's rule (dimensions in GGUF order): A is (in, rank), B is (rank, out); the embedding is transposed."""
    if len(weight) != 2 or len(a) != 2 or len(b) != 2:
        return False
    if name == _TOKEN_EMBEDDING:
        return weight == (b[1], a[1])
    return weight == (a[0], b[1]) and a[1] == b[0]


def base_tensors(base: Path) -> tuple[str, dict[str, tuple[int, ...]]]:
    """A GGUF model's architecture and tensor shapes (cached by the file's content hash)."""
    cached = cache_dir() / "gguf-tensors" / f"{content_hash(base)}.json"
    try:
        stored = json.loads(cached.read_text(encoding="utf-8"))
        return stored["architecture"], {name: tuple(shape) for name, shape in stored["tensors"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    reader = _read(base, "model")
    architecture = _field(reader, "general.architecture")
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cached, json.dumps({"architecture": architecture, "tensors": shapes}))
    return architecture, shapes


def _read(path: Path, what: str):
    try:
        from gguf import GGUFReader
    except ImportError:
        raise RuntimeError("checking a LoRA adapter needs the gguf package: pip install 'gavel[llama]'") from None
    try:
        return GGUFReader(path)
    except Exception as exc:  # the reader raises many kinds of errors on a file that is not GGUF
        raise AdapterMismatch(f"{path} is not a GGUF {what} file ({type(exc).__name__}: {exc})") from None


def _field(reader, key: str) -> str | None:
    field = reader.get_field(key)
    return None if field is None else str(field.contents())


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
