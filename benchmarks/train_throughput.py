"""Training throughput of the tiny CPU recipe: tokens/s, s/step and peak memory per setting, and the share of this
CPU's fp32 limit that the best setting reaches.

Each setting runs in its own process (a clean peak-RSS figure) for a few optimizer steps on the same pairs:

- baseline            recipes/tiny-cpu.yaml's train section (LoRA r16, reference forward every step, batch 1,
                      max_length 1024), with 2 pairs per optimizer step
- precomputed-ref     reference log-probs computed once before training (`precompute_ref_log_probs`)
- max-length-768      pairs over 768 tokens dropped, so every step is shorter
- full-ft             full fine-tuning instead of LoRA (for the FLOP count: 6 N per token)
- batch-4             four pairs per forward pass, padded to the longest (tokens/s counts real tokens only)
- batch-4-length-grouped   the same with length-grouped batches (less padding)

Padding-free batches are not measured: TRL's DPO trainer (1.16) warns and falls back to padding for
`padding_free`, and at batch size 1 (the recipe) the only padding is between a pair's chosen and rejected sides.

FLOPs counted per trained token (N = parameters, both sequences of a pair counted): policy forward 2N, backward
4N for full fine-tuning or 2N for LoRA (activation gradients only; the adapter's own weight gradients are under
4% of N and left out), reference forward 2N unless precomputed (then paid once, before timing). The fp32 limit
is measured: the best of a few large fp32 matrix products with torch on all cores.

    python benchmarks/train_throughput.py --data runs/curate/cpu --pairs 16 --steps 3 --out docs/train_throughput.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny-cpu.yaml"
SETTINGS = {
    "baseline": {},
    "precomputed-ref": {"precompute_ref_log_probs": True},
    "max-length-768": {"max_length": 768},
    "full-ft": {"method": "full", "learning_rate": 1e-5},
    "batch-4": {"batch_size": 4, "grad_accum": 1},
    "batch-4-length-grouped": {"batch_size": 4, "grad_accum": 1, "group_by_length": True},
}


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def one_setting(data: str, pairs: int, steps: int, changes: dict) -> dict:
    """Train `steps` optimizer steps (after one warm-up step) and measure them."""
    from transformers import TrainerCallback

    from gavel.train.config import load_train_config
    from gavel.train.trainer import build_trainer, peak_rss_mib

    out = Path(tempfile.mkdtemp(prefix="gavel-throughput-"))
    recipe = load_train_config(RECIPE, data=Path(data), output_dir=out, limit=pairs, grad_accum=2,
                               max_steps=steps + 1, save_steps=10_000, export=False)
    config = recipe.model_copy(update=changes)
    trainer = build_trainer(config)
    marks: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append((time.perf_counter(), trainer._total_train_tokens))

    trainer.add_callback(Clock())
    trainer.train()
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    params = sum(p.numel() for p in trainer.model.parameters())
    tokens_per_s = (n1 - n0) / (t1 - t0)
    backward = 4 if config.method == "full" else 2
    reference = 0 if config.precompute_ref_log_probs else 2
    return {"s_per_step": (t1 - t0) / (len(marks) - 1), "tokens_per_s": tokens_per_s,
            "gflops": tokens_per_s * (2 + backward + reference) * params / 1e9,
            "flops_per_token": f"(2 + {backward} + {reference}) x {params / 1e6:.1f}M",
            "peak_rss_mib": peak_rss_mib(),
            "pairs_per_step": config.batch_size * config.grad_accum, "max_length": config.max_length}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a curate folder or pairs .jsonl")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one setting in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_setting(args.data, args.pairs, args.steps, SETTINGS[args.one])))
        return
    results = {"fp32_matmul_gflops": matmul_gflops()}
    for name in args.settings.split(","):
        done = subprocess.run([sys.executable, __file__, "--data", args.data, "--pairs", str(args.pairs),
                               "--steps", str(args.steps), "--one", name], capture_output=True, text=True)
        if done.returncode != 0:
            results[name] = {"error": done.stderr[-500:]}
        else:
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, json.dumps(results[name]), flush=True)
    measured = [r for k, r in results.items() if isinstance(r, dict) and "gflops" in r]
    if measured:
        best = max(measured, key=lambda r: r["tokens_per_s"])
        results["best_share_of_fp32_limit"] = best["gflops"] / results["fp32_matmul_gflops"]
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
