"""Weight formats of the default judge: today's Q4_1 base + LoRA applied at every pass, against one merged file.

Builds the merged model once (`gavel.backends.merge`: the adapter folded into the dequantized base, written as
F32 with gguf-py, then quantized by llama.cpp's own `llama_model_quantize` to each format), then for each
format measures prefill (verdict mode: prompt tokens evaluated per second), decode (greedy tokens per second
of one sequence after its prompt) and how far the label probabilities move from today's on the committed
fixture records (every local-suite benchmark's rows in ``tests/fixtures/bench/local``) and the quickstart
records. Each format runs in its own process.

    python benchmarks/weight_formats.py --out docs/weight_formats.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.jsonl"
FIXTURES = ROOT / "tests" / "fixtures" / "bench" / "local"


def build(folder: Path) -> dict[str, str]:
    """Today's spec and one merged file per format (an F32 merge kept as the exact reference)."""
    from gavel.backends.embedded import embedded_gguf, judge_adapter
    from gavel.backends.merge import FILE_TYPES, merge_to_f32, quantize

    folder.mkdir(parents=True, exist_ok=True)
    f32 = folder / "judge-merged.f32.gguf"
    if not f32.exists():
        merge_to_f32(embedded_gguf(), judge_adapter(), f32)
    specs = {"q4_1+lora (today)": "default", "merged f32 (exact)": str(f32)}
    for name in FILE_TYPES:
        path = folder / f"judge-merged.{name}.gguf"
        if not path.exists():
            quantize(f32, path, name)
        specs[f"merged {name}"] = str(path)
    return specs


def records(per_benchmark: int) -> list:
    """The quickstart records, then up to ``per_benchmark`` committed fixture records of each local benchmark."""
    from gavel.bench import registry
    from gavel.judge.records import JudgeRecord

    items = [JudgeRecord.model_validate(json.loads(line)) for line in QUICKSTART.read_text().splitlines()]
    ctx = registry.LoadContext(FIXTURES)
    for bench in registry.suite("local"):
        items += bench.load(ctx)[:per_benchmark]
    return items


def measure(spec: str, n: int, max_new_tokens: int) -> dict:
    from gavel.backends import load_backend
    from gavel.judge.engine import Judge

    items = records(n)
    backend = load_backend(spec, batch_size=1)
    start = time.perf_counter()
    verdicts = Judge(backend, mode="verdict").judge(items)
    verdict_s = time.perf_counter() - start
    return {"probabilities": [r.probabilities for r in verdicts],
            "prompt_tokens_per_s": sum(r.prompt_tokens for r in verdicts) / verdict_s,
            "decode_tokens_per_s": decode_rate(backend, items[0], max_new_tokens),
            "size_mib": Path(spec).stat().st_size / 2**20 if Path(spec).exists() else None}


def decode_rate(backend, item, tokens: int) -> float:
    """Greedy tokens per second of one sequence after its prompt (the prompt's own evaluation not counted)."""
    from gavel.judge.engine import Judge

    prompt = backend._encode(backend.render(Judge(backend, mode="critique")._prepare(item).requests[0].messages))
    backend.llm.reset()
    start = 0.0
    for produced, _ in enumerate(backend.llm.generate(prompt, top_k=1, repeat_penalty=1.0), start=1):
        if produced == 1:  # the prompt is in the cache now
            start = time.perf_counter()
        elif produced > tokens:
            break
    return tokens / (time.perf_counter() - start)


def compare(reference: dict, other: dict) -> dict:
    """Largest label-probability change per record, how many exceed 0.02, and verdicts (top labels) that differ."""
    pairs = [(p, q) for p, q in zip(reference["probabilities"], other["probabilities"], strict=True) if p and q]
    gaps = [max(abs(p[k] - q[k]) for k in p) for p, q in pairs]
    return {"records": len(pairs), "max": max(gaps, default=0.0), "over_0.02": sum(g > 0.02 for g in gaps),
            "verdicts_differ": sum(max(p, key=p.get) != max(q, key=q.get) for p, q in pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4, help="fixture records per benchmark")
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
    today, exact = results["q4_1+lora (today)"], results["merged f32 (exact)"]
    for name, r in results.items():
        r["vs_today"], r["vs_exact"] = compare(today, r), compare(exact, r)
        print(f"{name:20s} prefill {r['prompt_tokens_per_s']:6.0f} tok/s  decode {r['decode_tokens_per_s']:5.0f} "
              f"tok/s  vs today: max |dP| {r['vs_today']['max']:.3f}, {r['vs_today']['over_0.02']} over 0.02, "
              f"{r['vs_today']['verdicts_differ']} verdicts differ; vs exact: max |dP| {r['vs_exact']['max']:.3f}",
              flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
