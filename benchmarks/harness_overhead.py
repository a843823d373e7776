"""What `gavel bench` adds on top of the judge: loading, rendering, parsing, writing, metrics and the report.

Runs the real harness (`run_bench`) with the embedded judge and splits wall time into the backend's own
time (the sum of per-item `latency_s`) and everything else.

    python benchmarks/harness_overhead.py --benchmarks llmbar-natural,mt-bench,qags --limit 20
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from gavel.bench import registry
from gavel.bench.harness import BenchConfig, load_targets, run_bench
from gavel.judge.result import Mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", default="llmbar-natural,mt-bench,qags")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--mode", default="verdict", choices=["verdict", "critique"])
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="gavel-overhead-"))
    start = time.perf_counter()
    targets = load_targets(args.benchmarks.split(","), [], registry.default_data_root(), args.limit, seed=0)
    load_s = time.perf_counter() - start

    config = BenchConfig(out_dir=out, mode=Mode(args.mode), limit=args.limit)
    start = time.perf_counter()
    run_bench(config, targets)
    total_s = time.perf_counter() - start

    judge_s = n = 0
    for path in out.glob("items/*/*/*.jsonl"):
        for line in path.read_text().splitlines():
            judge_s += json.loads(line)["latency_s"]
            n += 1
    model_load_s = 0.0  # measured separately: constructing the backend is judge cost, not harness cost
    start = time.perf_counter()
    from gavel.backends import load_backend

    load_backend(None).close()
    model_load_s = time.perf_counter() - start
    overhead_s = load_s + total_s - judge_s - model_load_s
    print(f"items judged: {n}")
    print(f"judge time (sum of backend latency): {judge_s:.2f} s  ({judge_s / n * 1000:.1f} ms/item)")
    print(f"model load: {model_load_s:.2f} s (once per judge; not counted as overhead)")
    print(f"harness overhead (loading data, rendering, parsing, writing, metrics, baselines, report): "
          f"{overhead_s:.2f} s  ({overhead_s / n * 1000:.1f} ms/item)")
    print(f"overhead / judge time: {overhead_s / judge_s:.1%}")


if __name__ == "__main__":
    main()
