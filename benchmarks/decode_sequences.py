"""Decode speed of the default judge by weight format and sequences per forward pass (llama.cpp, this CPU).

Each sequence first holds a 540-token prompt (the size of an LLMBar Natural judge prompt) in its own KV-cache
stream; then passes holding one new token of each of k sequences are timed. tokens/s = k / seconds per pass.
This is the ceiling for critique generation: a critique mode faster than today by a factor F needs its
prompts evaluated and its critiques decoded that much faster. Each format runs in its own process.

    python benchmarks/decode_sequences.py --out docs/decode_sequences.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SPECS = ("default", "default@q8_0", "default@bf16", "default@f16")
PROMPT_TOKENS = 540
SEQUENCES = (1, 2, 4, 8)


def measure(spec: str, passes: int) -> dict:
    """tokens/s by sequences per pass, through the backend's own batched path (`SlotScheduler`: a cache stream
    per sequence, the adapter applied as gavel applies it)."""
    from gavel.backends import load_backend

    backend = load_backend(spec, batch_size=max(SEQUENCES))
    scheduler = backend.slots
    prompt = backend.llm.tokenize(b"The quick brown fox jumps over the lazy dog. " * 60)[:PROMPT_TOKENS]

    def decode(parts: list) -> None:
        if not scheduler._decode(parts):
            raise RuntimeError("llama_decode failed")
        for slot, tokens in parts:
            slot.tokens.extend(tokens)

    for slot in scheduler.slots:
        for start in range(0, len(prompt), scheduler.chunk):
            decode([(slot, prompt[start:start + scheduler.chunk])])
    rates = {}
    for k in SEQUENCES:
        decode([(slot, [42]) for slot in scheduler.slots[:k]])  # warm-up pass
        start = time.perf_counter()
        for _ in range(passes):
            decode([(slot, [42]) for slot in scheduler.slots[:k]])
        rates[str(k)] = k * passes / (time.perf_counter() - start)
    backend.close()
    return {"tokens_per_s": rates, "threads": backend.threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=40, help="timed passes per number of sequences")
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.spec:  # child process
        print(json.dumps(measure(args.spec, args.passes)))
        return
    results = {}
    for spec in SPECS:
        cmd = [sys.executable, __file__, "--spec", spec, "--passes", str(args.passes)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
        results[spec] = json.loads(out)
        rates = "  ".join(f"{k} seq: {v:4.0f}" for k, v in results[spec]["tokens_per_s"].items())
        print(f"{spec:14s} decode tokens/s  {rates}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
