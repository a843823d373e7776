"""An Inspect AI task scored by gavel's judge (``pip install 'gavel[inspect]'``).

    inspect eval examples/inspect_task.py --model mockllm/model        # no model needed: a canned answer
    inspect eval examples/inspect_task.py --model ollama/llama3.2      # any model Inspect can reach
    inspect score LOG --scorer gavel/classify -S rubric="Is the answer correct?"   # re-score a log with gavel

Run it from the repository root (Inspect takes a task path relative to the working folder). Inspect counts
mockllm's tokens with tiktoken, which downloads its encoding on first use: that first run needs the network
(gavel's own tests give mockllm its token counts instead, see tests/test_integration_inspect.py).

The scorers are also found by name (``gavel/score``, ``gavel/classify``, ``gavel/compare``) through gavel's
``inspect_ai`` entry point. A verdict gavel cannot read is unscored (left out of the metrics), never INCORRECT.
"""

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.solver import generate

from gavel.integrations.inspect import classify, compare, score


@task
def gavel_judged() -> Task:
    return Task(
        dataset=[Sample(input="What is 12 times 3?", target="36"),
                 Sample(input="What is the capital of France?", target="Paris"),
                 Sample(input="Say thank you in French.", target="Merci")],
        solver=generate(),
        scorer=[score(mode="verdict"),  # the 1-5 verdict; the target is the reference answer
                classify(rubric="Is the answer correct?", mode="verdict"),
                compare(mode="verdict")],  # P(the output beats the target), both orders
    )
