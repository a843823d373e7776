"""Judge throughput on the embedded model: gavel's verdict and critique modes vs a plain generate loop.

The baseline is what a user would write from the Selene Mini quickstart: transformers, the chat template,
`generate` up to 512 new tokens, then a regex for `**Result:**`. Every phase runs in its own process so
its peak memory (max RSS) is its own. Items: pairwise benchmarks from the data root (LLMBar Natural, then
MT-Bench human pairs), the same items for every phase.

    python benchmarks/judge_throughput.py --items 100 --baseline-items 100 --out docs/throughput.json

Batching (llama.cpp, several sequences per forward pass) against one at a time, interleaved so a drifting load
weighs on both, with verdict agreement between the two:

    python benchmarks/judge_throughput.py --items 100 --phases batching --batches 1,8 --out docs/batching.json

The shipped judge's one-at-a-time path (today's) against the faster paths, verdict mode in both orders and
critique mode at default settings, one phase after the other: the adapter batched (``--batch 8``), the merged
Q8_0 judge (``default@q8_0``) one at a time and batched, the merged BF16 judge batched, and today's path while
another process keeps one core busy (threads left to their default, one per idle core). Each phase reports
judgments/s, tokens/s, its share of the CPU's fp32 limit, peak memory, and against today's path the verdicts
that differ, the largest probability change and the critiques that differ:

    python benchmarks/judge_throughput.py --items 100 --phases paths --out docs/throughput_paths.json
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

PHASES = ("gavel-verdict", "gavel-critique", "baseline-generate")
#: `--phases paths`: NAME -> (mode, both orders, batch, model spec, threads, a competing busy process)
PATHS = {
    "verdict-both today": ("verdict", True, 1, None, None, False),
    "verdict-both default@q8_0": ("verdict", True, 1, "default@q8_0", None, False),
    "critique today": ("critique", False, 1, None, None, False),
    "critique --batch 8": ("critique", False, 8, None, None, False),
    "critique default@q8_0 --batch 1": ("critique", False, 1, "default@q8_0", None, False),
    "critique default@q8_0 --batch 8": ("critique", False, 8, "default@q8_0", None, False),
    "critique default@bf16 --batch 8": ("critique", False, 8, "default@bf16", None, False),
    "critique today, busy core, threads on idle cores": ("critique", False, 1, None, None, True),
}
#: SmolLM2-135M's parameters: each token passes through every weight once, 2 FLOPs per weight.
MODEL_PARAMETERS = 134.5e6


def load_items(n: int) -> list:
    from gavel.bench import registry

    ctx = registry.LoadContext(registry.default_data_root())
    records = registry.get("llmbar-natural").load(ctx) + registry.get("mt-bench-human").load(ctx)
    return records[:n]


def run_gavel(mode: str, items: list, max_new_tokens: int, batch: int | None = None,
              both_orders: bool = False, model: str | None = None, threads: int | None = None) -> dict:
    from gavel.backends import load_backend
    from gavel.judge.engine import Judge

    options = {"batch_size": batch} if batch else {}
    if threads:
        options["n_threads"] = threads
    load_backend(model).close()  # a merged judge is built on its first load: not counted
    start = time.perf_counter()
    backend = load_backend(model, **options)
    judge = Judge(backend, mode=mode, max_new_tokens=max_new_tokens, both_orders=both_orders)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    results = judge.judge(items)
    seconds = time.perf_counter() - start
    prompt = sum(r.prompt_tokens for r in results)
    generated = sum(r.completion_tokens for r in results)
    correct = sum(r.result == item.label for r, item in zip(results, items, strict=True))
    return {
        "items": len(items), "seconds": seconds, "load_s": load_s,
        "judgments_per_s": len(items) / seconds,
        "prompt_tokens": prompt, "generated_tokens": generated,
        "tokens_per_s": (prompt + generated) / seconds,
        "prompt_tokens_per_s": prompt / seconds if mode == "verdict" else None,
        "with_result": sum(r.result is not None for r in results),
        "accuracy": correct / len(items),
        "statuses": {s: sum(r.status.value == s for r in results) for s in {r.status.value for r in results}},
        "verdicts": [r.result for r in results],
        "probabilities": [r.probabilities for r in results],
        "critiques": [r.raw_output for r in results],
        "threads_at_end": backend.threads,
    }


def run_baseline(items: list, max_new_tokens: int) -> dict:
    """The quickstart loop: chat template, generate, regex. Same prompts as gavel's critique mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gavel.backends.embedded import embedded_hf_dir
    from gavel.judge.result import Mode
    from gavel.judge.templates import load_templates

    templates = load_templates()
    start = time.perf_counter()
    folder = embedded_hf_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    load_s = time.perf_counter() - start
    pattern = re.compile(r"\*\*Result:\*\*\s*(A|B)\b")
    prompt_tokens = generated = found = correct = 0
    start = time.perf_counter()
    for number, item in enumerate(items, start=1):
        text, _ = templates.render(item, Mode.critique)
        messages = [{"role": "user", "content": text}]
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.eos_token_id)
        new = out[0, inputs["input_ids"].shape[1]:]
        reply = tokenizer.decode(new, skip_special_tokens=True)
        prompt_tokens += int(inputs["input_ids"].shape[1])
        generated += int(new.shape[0])
        match = pattern.search(reply)
        found += match is not None
        correct += match is not None and match.group(1) == item.label
        print(f"baseline item {number}/{len(items)}: {int(new.shape[0])} new tokens", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    return {
        "items": len(items), "seconds": seconds, "load_s": load_s, "judgments_per_s": len(items) / seconds,
        "prompt_tokens": prompt_tokens, "generated_tokens": generated,
        "tokens_per_s": (prompt_tokens + generated) / seconds, "prompt_tokens_per_s": None,
        "with_result": found, "accuracy": correct / len(items),
    }


def run_phase(phase: str, n: int, max_new_tokens: int) -> dict:
    items = load_items(n)
    if phase in PATHS:
        mode, both, batch, model, threads, busy = PATHS[phase]
        rival = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            result = run_gavel(mode, items, max_new_tokens, batch, both, model, threads)
        finally:
            if rival is not None:
                rival.kill()
    elif "@" in phase:  # MODE[-both]@BATCH, e.g. verdict-both@8
        mode, batch = phase.split("@")
        result = run_gavel(mode.removesuffix("-both"), items, max_new_tokens, int(batch), mode.endswith("-both"))
    elif phase == "baseline-generate":
        result = run_baseline(items, max_new_tokens)
    else:
        result = run_gavel(phase.removeprefix("gavel-"), items, max_new_tokens)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["phase"] = phase
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100, help="pairwise items for gavel's modes")
    parser.add_argument("--baseline-items", type=int, default=100, help="items for the baseline loop")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--phases", default=",".join(PHASES), help=f"{', '.join(PHASES)}, or batching")
    parser.add_argument("--batches", default="1,8", help="batching: batch sizes to compare (1 = one at a time)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.phase:  # child process
        n = args.baseline_items if args.phase == "baseline-generate" else args.items
        print(json.dumps(run_phase(args.phase, n, args.max_new_tokens)))
        return
    results = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}  # keep other phases
    phases = args.phases.split(",")
    if phases == ["batching"]:  # each mode at every batch size, one after the other
        phases = [f"{mode}@{b}" for mode in ("verdict-both", "critique") for b in args.batches.split(",")]
    if phases == ["paths"]:
        phases = list(PATHS)
        results["fp32_gflops"] = fp32_gflops()
    for phase in phases:
        cmd = [sys.executable, __file__, "--phase", phase, "--items", str(args.items),
               "--baseline-items", str(args.baseline_items), "--max-new-tokens", str(args.max_new_tokens)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
        results[phase] = json.loads(out)
        r = results[phase]
        print(f"{phase:18s} {r['items']:4d} items  {r['judgments_per_s']:.3f} judgments/s  "
              f"{r['tokens_per_s']:.0f} tok/s  result written {r['with_result']}/{r['items']}  "
              f"acc {r['accuracy']:.3f}  peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
        if args.out:  # saved after every phase, so a long baseline can run on its own later
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    for r in results.values():
        if isinstance(r, dict):
            r.setdefault("command", " ".join([Path(sys.executable).name, *sys.argv]))
    if "baseline-generate" in results:
        base = results["baseline-generate"]["judgments_per_s"]
        for phase in ("gavel-verdict", "gavel-critique"):
            if phase in results:
                results[phase]["speedup_vs_baseline"] = results[phase]["judgments_per_s"] / base
                print(f"{phase}: {results[phase]['speedup_vs_baseline']:.1f}x the baseline's judgments/s")
    report_batching(results)
    report_paths(results)
    if "gavel-verdict" in results:
        print(f"verdict-mode prompt tokens/s: {results['gavel-verdict']['prompt_tokens_per_s']:.0f} "
              "(CPU fp32 limit for a 135M model ~570; cached template prefixes count as processed)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


def fp32_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The CPU's fp32 limit as measured: GFLOP/s of a square fp32 matrix product (numpy's BLAS, all cores)."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def report_paths(results: dict) -> None:
    """Each path against today's (same mode): speed, share of the fp32 limit, what changed."""
    peak = results.get("fp32_gflops")
    for name, r in results.items():
        if name not in PATHS:
            continue
        mode = PATHS[name][0] + ("-both" if PATHS[name][1] else "")
        base = results.get(f"{mode} today")
        r["fp32_share"] = r["tokens_per_s"] * 2 * MODEL_PARAMETERS / (peak * 1e9) if peak else None
        if base is None:
            continue
        r["vs_today"] = {
            "speedup": r["judgments_per_s"] / base["judgments_per_s"],
            "verdicts_differ": sum(a != b for a, b in zip(base["verdicts"], r["verdicts"], strict=True)),
            "max_probability_difference": max((abs(p[k] - q[k]) for p, q in zip(base["probabilities"],
                                               r["probabilities"], strict=True) if p and q for k in p), default=0.0),
            "critiques_differ": sum(a != b for a, b in zip(base["critiques"], r["critiques"], strict=True))}
        v = r["vs_today"]
        print(f"{name}: {v['speedup']:.2f}x today; {r['fp32_share']:.0%} of the fp32 limit; verdicts differ on "
              f"{v['verdicts_differ']}/{r['items']}, max probability difference {v['max_probability_difference']:.3f}, "
              f"critiques differ on {v['critiques_differ']}", flush=True)


def report_batching(results: dict) -> None:
    """Each batch size against batch 1: speed ratio, verdicts that differ, largest probability difference."""
    for name, r in results.items():
        mode, _, batch = name.partition("@")
        base = results.get(f"{mode}@1")
        if not batch or batch == "1" or base is None:
            continue
        differ = sum(a != b for a, b in zip(base["verdicts"], r["verdicts"], strict=True))
        gap = max((abs(p[k] - q[k]) for p, q in zip(base["probabilities"], r["probabilities"], strict=True)
                   if p and q for k in p), default=0.0)
        texts = sum(a != b for a, b in zip(base["critiques"], r["critiques"], strict=True))
        r["vs_batch_1"] = {"speedup": r["judgments_per_s"] / base["judgments_per_s"], "verdicts_differ": differ,
                           "max_probability_difference": gap, "critiques_differ": texts}
        print(f"{name}: {r['vs_batch_1']['speedup']:.2f}x batch 1; verdicts differ on {differ}/{r['items']}, "
              f"max probability difference {gap:.2e}, critiques differ on {texts}")


if __name__ == "__main__":
    main()
