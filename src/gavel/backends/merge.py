"""A GGUF base with its LoRA adapter folded in: one file, built once, offline, into the user cache.

llama.cpp applies an unmerged adapter at every forward pass (two more products per weight), and the embedded
Q4_1 base runs llama.cpp's slow path for prompts on x86 (no tiled kernel for Q4_1). A merged file in a format
with a fast path evaluates prompts about twice as fast (docs/performance.md, "Weight format"). The merge:
every tensor of the base dequantized with gguf-py, ``W + alpha/r * B A`` added where the adapter has a pair,
written as F32, then converted by llama.cpp's own quantizer (``llama_model_quantize``) to the target format.

The file is named by the content of its inputs (SHA-256 of base and adapter) and the format, so a retrained
adapter at the same path builds another file; a half-written build never becomes visible (staging + rename).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: llama.cpp file types (`enum llama_ftype`) gavel can write.
FILE_TYPES = {"q4_1": 3, "q8_0": 7, "f16": 1, "bf16": 32}


def merged_path(base: Path, adapter: Path, fmt: str) -> Path:
    """Where the merged file of ``base`` + ``adapter`` in ``fmt`` lives in the cache (named by content)."""
    from gavel.backends.embedded import cache_dir
    from gavel.backends.identity import content_hash

    digest = hashlib.sha256(f"{content_hash(base)}\n{content_hash(adapter)}\n".encode()).hexdigest()[:16]
    return cache_dir() / "merged" / f"{adapter.name.removesuffix('.gguf')}.{digest}.{fmt}.gguf"


def merged_gguf(base: Path, adapter: Path, fmt: str) -> Path:
    """The merged file, built on first use (a few seconds for the embedded judge) and reused after."""
    if fmt not in FILE_TYPES:
        raise ValueError(f"merged format {fmt!r}: use one of {', '.join(FILE_TYPES)}")
    target = merged_path(base, adapter, fmt)
    if target.is_file():
        return target
    log.info("merging %s into %s as %s, once: %s", adapter.name, base.name, fmt, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".merge-"))
    try:
        full = merge_to_f32(base, adapter, staging / "merged.f32.gguf")
        quantize(full, staging / target.name, fmt).replace(target)  # atomic: another process's copy is equal
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def merge_to_f32(base: Path, adapter: Path, out: Path) -> Path:
    """``base`` with ``adapter`` folded in (W + alpha/r * B A), every tensor F32, metadata kept."""
    import gguf
    import numpy as np

    reader, lora = gguf.GGUFReader(str(base)), gguf.GGUFReader(str(adapter))
    alpha = float(lora.fields["adapter.lora.alpha"].contents())
    pieces = {t.name: t for t in lora.tensors}
    writer = gguf.GGUFWriter(str(out), reader.fields["general.architecture"].contents())
    for field in reader.fields.values():
        if field.name in ("general.architecture", "general.file_type") or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        writer.add_key_value(field.name, field.contents(), kind,
                             sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    writer.add_file_type(0)
    for tensor in reader.tensors:
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        a, b = pieces.get(f"{tensor.name}.lora_a"), pieces.get(f"{tensor.name}.lora_b")
        if a is not None and b is not None:
            down = np.asarray(a.data, dtype=np.float32)  # (r, in)
            up = np.asarray(b.data, dtype=np.float32)  # (out, r)
            weights = weights + (alpha / down.shape[0]) * (up @ down)
        writer.add_tensor(tensor.name, np.ascontiguousarray(weights))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def quantize(source: Path, out: Path, fmt: str) -> Path:
    """``source`` written as ``fmt`` by llama.cpp's own quantizer."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FILE_TYPES[fmt]
    chatter = logging.getLogger("llama-cpp-python")  # where llama-cpp-python routes llama.cpp's log (a line a tensor)
    level = chatter.level
    chatter.setLevel(logging.ERROR)
    try:
        failed = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params) != 0
    finally:
        chatter.setLevel(level)
    if failed:
        raise RuntimeError(f"llama.cpp could not write {source} as {fmt} to {out}")
    return out
