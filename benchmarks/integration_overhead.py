"""What the integrations add on top of the judge, and what the judgment cache saves.

One process, one loaded judge, the same items for every path, measured side by side:
- ``Judge.judge`` on the records (the baseline, run first and last: the machine is shared, its drift shows);
- the TRL reward function (``JudgeReward``) on the same prompts and completions, one call;
- the Inspect scorer (``gavel/score``) on the same items, one sample at a time (each call goes through a thread);
- the DeepEval metric (``GavelMetric.measure``), one test case at a time;
- the reward function with a judgment cache: a first pass that fills it, a second that reads it back.

Each path is timed in wall-clock seconds, and so is the backend's own work inside it (every ``backend.run``
call): the overhead of a path is its time outside the backend, which neighbours on a shared machine disturb far
less than the totals (run with GAVEL_THREADS=1 there).

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


class BackendClock:
    """Wall seconds spent inside the backend's ``run`` (the real backend still does the work)."""

    def __init__(self, backend) -> None:
        self.seconds = 0.0
        self._run = backend.run
        backend.run = self

    def __call__(self, requests):
        start = time.perf_counter()
        try:
            return self._run(requests)
        finally:
            self.seconds += time.perf_counter() - start


def timed(run: Callable[[], object], clock: BackendClock | None = None) -> tuple[float, float]:
    """(wall seconds of the whole call, wall seconds inside the backend)."""
    inside = clock.seconds if clock else 0.0
    start = time.perf_counter()
    run()
    return time.perf_counter() - start, (clock.seconds - inside) if clock else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--mode", default="verdict", choices=["verdict", "critique"])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    import gavel.integrations.deepeval  # noqa: F401 - imported before timing: an import is nobody's overhead
    from gavel.integrations.inspect import shared_judge

    judge = shared_judge(mode=args.mode, max_new_tokens=args.max_new_tokens)  # the one the Inspect scorer uses
    pairs = items(args.items)
    records = [JudgeRecord(id=str(i), task="absolute", instruction=q, response=a) for i, (q, a) in enumerate(pairs)]
    prompts, completions = [q for q, _ in pairs], [a for _, a in pairs]
    judge.judge(records[:2])  # warm-up: first-call costs are nobody's overhead
    clock = BackendClock(judge.backend)

    seconds = {"Judge.judge (before)": timed(lambda: judge.judge(records), clock),
               "TRL reward (JudgeReward)": timed(lambda: JudgeReward(judge)(prompts, completions), clock),
               "Inspect scorer (gavel/score)": timed(lambda: asyncio.run(_inspect(pairs, args)), clock),
               "DeepEval metric (GavelMetric)": timed(lambda: _deepeval(judge, pairs), clock),
               "Judge.judge (after)": timed(lambda: judge.judge(records), clock)}
    n = len(records)
    print(f"{n} items, {args.mode} mode, {judge.model_name}")
    print(f"{'path':32} {'total ms/item':>14} {'in backend':>11} {'outside':>9} {'outside / in backend':>21}")
    for name, (total, inside) in seconds.items():
        outside = total - inside
        print(f"{name:32} {total / n * 1000:14.1f} {inside / n * 1000:11.1f} {outside / n * 1000:9.2f} "
              f"{outside / inside:21.2%}")

    with tempfile.TemporaryDirectory() as tmp:
        cached = Judge(judge.backend, judge.settings, cache=Path(tmp) / "c.db")
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
