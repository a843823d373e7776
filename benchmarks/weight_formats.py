"""Weight formats of the default judge: today's Q4_1 base + LoRA applied at every pass, against one merged file.

Builds the merged model once (the adapter folded into the dequantized base, written as F32 with gguf-py, then
quantized by llama.cpp's own `llama_model_quantize` to Q4_1, Q8_0 and F16), then for each format measures
prefill (verdict mode: prompt tokens evaluated per second), decode (critique mode: generated tokens per
second) and how far the label probabilities move from today's on the quickstart records (and the first LLMBar
Natural items when the data root is there). Each format runs in its own process.

    python benchmarks/weight_formats.py --items 20 --out docs/weight_formats.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

FORMATS = {"q4_1": 3, "q8_0": 7, "f16": 1}  # llama.cpp file types
QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.jsonl"


def merge_to_f32(base: Path, adapter: Path, out: Path) -> Path:
    """The base GGUF with the LoRA adapter folded in (W + alpha/r * B A), every tensor F32."""
    import gguf
    import numpy as np

    reader, lora = gguf.GGUFReader(str(base)), gguf.GGUFReader(str(adapter))
    alpha = float(lora.fields["adapter.lora.alpha"].contents())
    pieces = {t.name: t for t in lora.tensors}
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(out), arch)
    for field in reader.fields.values():
        if field.name in ("general.architecture", "general.file_type") or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(0)
    for tensor in reader.tensors:
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        a, b = pieces.get(f"{tensor.name}.lora_a"), pieces.get(f"{tensor.name}.lora_b")
        if a is not None and b is not None:
            a_ = np.asarray(a.data, dtype=np.float32)  # (r, in)
            b_ = np.asarray(b.data, dtype=np.float32)  # (out, r)
            weights = weights + (alpha / a_.shape[0]) * (b_ @ a_)
        writer.add_tensor(tensor.name, np.ascontiguousarray(weights))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def quantize(source: Path, out: Path, ftype: int) -> Path:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    if llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params) != 0:
        raise RuntimeError(f"llama.cpp could not quantize {source} to {out}")
    return out


def build(folder: Path) -> dict[str, str]:
    from gavel.backends.embedded import embedded_gguf, judge_adapter

    folder.mkdir(parents=True, exist_ok=True)
    f32 = folder / "judge-merged.f32.gguf"
    if not f32.exists():
        merge_to_f32(embedded_gguf(), judge_adapter(), f32)
    specs = {"q4_1+lora (today)": "default"}
    for name, ftype in FORMATS.items():
        path = folder / f"judge-merged.{name}.gguf"
        if not path.exists():
            quantize(f32, path, ftype)
        specs[f"merged {name}"] = str(path)
    return specs


def records(n: int) -> list:
    from gavel.judge.records import JudgeRecord

    items = [JudgeRecord.model_validate(json.loads(line)) for line in QUICKSTART.read_text().splitlines()]
    try:
        from gavel.bench import registry

        items += registry.get("llmbar-natural").load(registry.LoadContext(registry.default_data_root()))[:n]
    except Exception as exc:  # no data root: the quickstart records alone
        print(f"LLMBar Natural not loaded ({exc}); quickstart records only", file=sys.stderr)
    return items


def measure(spec: str, n: int, max_new_tokens: int) -> dict:
    from gavel.backends import load_backend
    from gavel.judge.engine import Judge

    items = records(n)
    backend = load_backend(spec)
    start = time.perf_counter()
    verdicts = Judge(backend, mode="verdict").judge(items)
    verdict_s = time.perf_counter() - start
    start = time.perf_counter()
    critiques = Judge(backend, mode="critique", max_new_tokens=max_new_tokens).judge(items[:4])
    critique_s = time.perf_counter() - start
    return {"probabilities": [r.probabilities for r in verdicts],
            "prompt_tokens_per_s": sum(r.prompt_tokens for r in verdicts) / verdict_s,
            "critique_tokens_per_s": sum(r.completion_tokens for r in critiques) / critique_s,
            "size_mib": Path(spec).stat().st_size / 2**20 if Path(spec).exists() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20, help="LLMBar Natural items besides the quickstart records")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--folder", type=Path, default=Path("runs/weight-formats"))
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.spec:  # child process
        print(json.dumps(measure(args.spec, args.items, args.max_new_tokens)))
        return
    results = {}
    for name, spec in build(args.folder).items():
        cmd = [sys.executable, __file__, "--spec", spec, "--items", str(args.items),
               "--max-new-tokens", str(args.max_new_tokens)]
        results[name] = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
                                   .strip().splitlines()[-1])
    today = results["q4_1+lora (today)"]["probabilities"]
    for name, r in results.items():
        gaps = [abs(p[k] - q[k]) for p, q in zip(today, r["probabilities"], strict=True) if p and q for k in p]
        r["max_probability_difference"] = max(gaps, default=0.0)
        print(f"{name:20s} prefill {r['prompt_tokens_per_s']:6.0f} tok/s  critique {r['critique_tokens_per_s']:5.0f} "
              f"tok/s  max |P - today| {r['max_probability_difference']:.3f}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
