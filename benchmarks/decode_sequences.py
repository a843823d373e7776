"""Decode speed of the default judge by weight format and sequences per forward pass (llama.cpp, this CPU).

Each sequence first holds a 540-token prompt (the size of an LLMBar Natural judge prompt) in its own KV-cache
stream; then passes holding one new token of each of k sequences are timed. tokens/s = k / seconds per pass.
This is the ceiling for critique generation: a critique mode faster than today by a factor F needs its
prompts evaluated and its critiques decoded that much faster. Each format runs in its own process.

    python benchmarks/decode_sequences.py --out docs/decode_sequences.json
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import time
from pathlib import Path

SPECS = ("default", "default@q8_0", "default@bf16", "default@f16")
PROMPT_TOKENS = 540
SEQUENCES = (1, 2, 4, 8)


def measure(spec: str, passes: int) -> dict:
    import llama_cpp as lc

    from gavel.backends import load_backend

    backend = load_backend(spec)
    llm = backend.llm
    params = lc.llama_context_params.from_buffer_copy(llm.context_params)
    top = max(SEQUENCES)
    params.n_ctx, params.n_batch, params.n_ubatch = 1024 * top, 512, 512
    params.n_seq_max, params.kv_unified = top, False
    ctx = lc.llama_init_from_model(llm.model, params)
    adapter = getattr(llm, "_lora_adapter", None)
    if adapter is not None:  # today's judge: the adapter applied at every pass, as in gavel's batched path
        lc.llama_set_adapters_lora(ctx, (lc.llama_adapter_lora_p_ctypes * 1)(adapter), 1, (ctypes.c_float * 1)(1.0))
    batch = lc.llama_batch_init(512, 0, 1)
    prompt = llm.tokenize(b"The quick brown fox jumps over the lazy dog. " * 60)[:PROMPT_TOKENS]
    position = [0] * top

    def decode(parts: list[tuple[int, list[int]]]) -> None:
        n = 0
        for seq, tokens in parts:
            for i, token in enumerate(tokens):
                batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, position[seq], 1
                batch.seq_id[n][0], batch.logits[n] = seq, i == len(tokens) - 1
                position[seq] += 1
                n += 1
        batch.n_tokens = n
        if lc.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    for seq in range(top):
        for start in range(0, len(prompt), 512):
            decode([(seq, prompt[start:start + 512])])
    rates = {}
    for k in SEQUENCES:
        decode([(seq, [42]) for seq in range(k)])  # warm-up pass
        start = time.perf_counter()
        for _ in range(passes):
            decode([(seq, [42]) for seq in range(k)])
        rates[str(k)] = k * passes / (time.perf_counter() - start)
    lc.llama_batch_free(batch)
    lc.llama_free(ctx)
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
