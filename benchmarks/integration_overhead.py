"""What the integrations add on top of the judge, and what the judgment cache saves.

One process, one loaded judge, the same items for every path, measured side by side:
- ``Judge.judge`` on the records (the baseline, run first and last: the machine is shared, its drift shows);
- the TRL reward function (``JudgeReward``) on the same prompts and completions, one call;
- the Inspect scorer (``gavel/score``) on the same items, one sample at a time (each call goes through a thread);
- the DeepEval metric (``GavelMetric.measure``), one test case at a time;
- the reward function with a judgment cache: a first pass that fills it, a second that reads it back.

Each path is timed in wall-clock seconds and in this process's CPU seconds (all its threads): on a shared machine
the wall clock mostly measures the neighbours, CPU time what this process did (run with GAVEL_THREADS=1).

    python benchmarks/integration_overhead.py --items 20 --mode verdict
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gavel import Judge, JudgeRecord
from gavel.integrations.trl import JudgeReward

QUESTIONS = ["What is {i} + {i}?", "Name {i} animals.", "Write a sentence with {i} words.",
             "What is the square of {i}?"]


def items(n: int) -> list[tuple[str, str]]:
    return [(QUESTIONS[i % len(QUESTIONS)].format(i=i), f"The answer is {i * 2}.") for i in range(n)]


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--mode", default="verdict", choices=["verdict", "critique"])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    from gavel.integrations.inspect import shared_judge

    judge = shared_judge(mode=args.mode, max_new_tokens=args.max_new_tokens)  # the one the Inspect scorer uses
    pairs = items(args.items)
    records = [JudgeRecord(id=str(i), task="absolute", instruction=q, response=a) for i, (q, a) in enumerate(pairs)]
    prompts, completions = [q for q, _ in pairs], [a for _, a in pairs]
    judge.judge(records[:2])  # warm-up: first-call costs are nobody's overhead

    seconds = {"Judge.judge (before)": timed(lambda: judge.judge(records)),
               "TRL reward (JudgeReward)": timed(lambda: JudgeReward(judge)(prompts, completions)),
               "Inspect scorer (gavel/score)": timed(lambda: asyncio.run(_inspect(pairs, args))),
               "DeepEval metric (GavelMetric)": timed(lambda: _deepeval(judge, pairs)),
               "Judge.judge (after)": timed(lambda: judge.judge(records))}
    before, after = seconds["Judge.judge (before)"], seconds["Judge.judge (after)"]
    baseline = [(b + a) / 2 for b, a in zip(before, after, strict=True)]
    n = len(records)
    print(f"{n} items, {args.mode} mode, {judge.model_name}")
    print(f"{'path':32} {'wall ms/item':>13} {'vs judge':>9} {'CPU ms/item':>12} {'vs judge':>9}")
    for name, (wall, cpu) in seconds.items():
        print(f"{name:32} {wall / n * 1000:13.1f} {wall / baseline[0] - 1:+9.1%} "
              f"{cpu / n * 1000:12.1f} {cpu / baseline[1] - 1:+9.1%}")

    with tempfile.TemporaryDirectory() as tmp:
        cached = Judge(judge.backend, mode=args.mode, max_new_tokens=args.max_new_tokens, cache=Path(tmp) / "c.db")
        reward = JudgeReward(cached)
        fill, _ = timed(lambda: reward(prompts, completions))
        hit, _ = timed(lambda: reward(prompts, completions))
        print(f"reward with cache, first pass (fills it): {fill / n * 1000:9.1f} ms/item (wall)")
        print(f"reward with cache, second pass (reads it): {hit / n * 1000:9.3f} ms/item (wall), {fill / hit:,.0f}x "
              f"faster ({cached.cache.hits} hits)")


async def _inspect(pairs: list[tuple[str, str]], args: argparse.Namespace) -> None:
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Target
    from inspect_ai.solver import TaskState

    from gavel.integrations.inspect import score

    scorer = score(mode=args.mode, max_new_tokens=args.max_new_tokens)
    for i, (question, answer) in enumerate(pairs):
        state = TaskState(model="mockllm/model", sample_id=i, epoch=1, input=question, messages=[],
                          output=ModelOutput.from_content(model="mockllm/model", content=answer))
        await scorer(state, Target(""))


def _deepeval(judge: Judge, pairs: list[tuple[str, str]]) -> None:
    from deepeval.test_case import LLMTestCase

    from gavel.integrations.deepeval import GavelMetric

    metric = GavelMetric(judge)
    for question, answer in pairs:
        metric.measure(LLMTestCase(input=question, actual_output=answer))


if __name__ == "__main__":
    main()
