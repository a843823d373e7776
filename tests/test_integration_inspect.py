"""gavel's scorers in Inspect AI: found through the `inspect_ai` entry point, run by Inspect's own eval() on a
3-sample task (mock solver model), and used again by `inspect score` on the log."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from gavel.backends.threads import THREADS_ENV
from gavel.judge.result import JudgeResult

pytest.importorskip("inspect_ai")

INSPECT = Path(sys.executable).with_name("inspect")

EVAL = textwrap.dedent("""
    import sys
    assert "gavel.integrations.inspect" not in sys.modules
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.solver import generate
    from inspect_ai.util import registry_create

    ANSWERS = {"What is 2 + 2?": "2 + 2 = 4.", "What is the capital of France?": "The capital of France is Berlin.",
               "Name a fruit.": "An apple."}

    def answer(messages, tools, tool_choice, config):
        output = ModelOutput.from_content(model="mockllm/model", content=ANSWERS[messages[-1].text])
        output.usage = ModelUsage(input_tokens=8, output_tokens=8, total_tokens=16)  # else tiktoken downloads
        return output

    scorer = registry_create("scorer", "gavel/score", max_new_tokens=48)  # by name: the entry point loads gavel's
    assert "gavel.integrations.inspect" in sys.modules
    task = Task(dataset=[Sample(input=q, target="") for q in ANSWERS], solver=generate(), scorer=scorer)
    log = eval(task, model=get_model("mockllm/model", custom_outputs=answer), log_dir=sys.argv[1], display="none")[0]
    assert log.status == "success", log.error
    print(log.location)
""")


def _env() -> dict[str, str]:
    """The parent's environment as it is: gavel must be found as installed (prepending its source folder would
    let importlib.metadata find the source tree's bare egg-info first, and Inspect would then register the
    scorers without their `gavel/` namespace)."""
    return {**os.environ, THREADS_ENV: "1", "INSPECT_LOG_LEVEL": "warning"}


def test_gavel_registers_its_scorers_through_the_inspect_ai_entry_point():
    points = {ep.name: ep.value for ep in entry_points(group="inspect_ai")}
    assert points.get("gavel") == "gavel.integrations.inspect", (
        "gavel is installed without its inspect_ai entry point: reinstall it (pip install -e .)")


@pytest.mark.model
def test_eval_scores_with_gavel_score_and_inspect_score_rescores_with_gavel_classify(tmp_path):
    from inspect_ai.log import read_eval_log

    done = subprocess.run([sys.executable, "-c", EVAL, str(tmp_path)], env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    location = done.stdout.strip().splitlines()[-1]
    log = read_eval_log(location)
    assert len(log.samples) == 3
    for sample in log.samples:
        score = sample.scores["score"]
        assert score.value in (1, 2, 3, 4, 5) and score.answer == str(score.value)
        assert score.explanation  # the critique
        probabilities = score.metadata["probabilities"]
        assert set(probabilities) == {"1", "2", "3", "4", "5"} and math.isclose(sum(probabilities.values()), 1.0)
        assert score.metadata["status"] in ("ok", "forced", "tolerant") and score.metadata["mode"] == "critique"
    assert log.results.scores[0].metrics["mean"].value == pytest.approx(
        sum(s.scores["score"].value for s in log.samples) / 3)

    rescored = subprocess.run([str(INSPECT), "score", location, "--scorer", "gavel/classify", "-S", "mode=verdict",
                               "-S", "rubric=Is the answer correct?", "--action", "append", "--overwrite",
                               "--display", "none"],
                              env=_env(), capture_output=True, text=True, timeout=600)
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    log = read_eval_log(location)
    for sample in log.samples:
        verdict = sample.scores["classify"]
        assert verdict.value in ("C", "I") and verdict.answer in ("Yes", "No")
        assert set(verdict.metadata["probabilities"]) == {"Yes", "No"}


def test_an_unreadable_verdict_is_unscored_never_incorrect():
    from inspect_ai.scorer import INCORRECT

    from gavel.integrations.inspect import to_score

    failed = JudgeResult(id="1", task="classification", status="parse_failed", raw_output="I cannot decide.",
                         model="m", template="default/classification", mode="critique")
    score = to_score(failed, lambda verdict: INCORRECT)
    assert math.isnan(score.value) and score.value != INCORRECT
    assert score.reason == "grader_failed" and "I cannot decide." in score.explanation
    assert score.metadata["status"] == "parse_failed"
    read = JudgeResult.model_validate({**failed.model_dump(), "status": "ok", "result": "No", "critique": "Wrong.",
                                       "probabilities": {"Yes": 0.2, "No": 0.8}})
    score = to_score(read, lambda verdict: INCORRECT if verdict == "No" else "C")
    assert score.value == INCORRECT and score.explanation == "Wrong." and score.metadata["probabilities"]["No"] == 0.8


@pytest.mark.model
def test_gavel_compare_scores_the_output_against_the_target_in_both_orders():
    import asyncio

    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Target
    from inspect_ai.solver import TaskState

    from gavel.integrations.inspect import compare, shared_judge

    state = TaskState(model="mockllm/model", sample_id=1, epoch=1, input="What is 12 times 3?", messages=[],
                      output=ModelOutput.from_content(model="mockllm/model", content="It is 36."))
    score = asyncio.run(compare(mode="verdict")(state, Target("36")))
    judge = shared_judge(mode="verdict", pairwise=True)
    direct = judge.compare("What is 12 times 3?", "It is 36.", "36")
    assert judge.both_orders and score.value == pytest.approx(direct.p_a, abs=1e-4)
    assert score.answer == direct.result and score.metadata["orders_agree"] == direct.orders_agree
