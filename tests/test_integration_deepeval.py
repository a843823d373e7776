"""GavelMetric in DeepEval's own assert_test (deepeval's pytest plugin is off for gavel's runs; assert_test does not
need it): an answer scored above the threshold passes, one below fails naming the threshold, and a verdict that
cannot be read fails with gavel's reason instead of a made-up score."""

from __future__ import annotations

import pytest

from gavel import Judge
from gavel.backends import load_backend
from gavel.judge.reward import reward_from_result

pytest.importorskip("deepeval")

from deepeval import assert_test
from deepeval.test_case import LLMTestCase

from gavel.integrations.deepeval import GavelMetric

pytestmark = pytest.mark.model

QUESTION = "What is 12 times 3?"
GOOD, WRONG = "12 times 3 is 36.", "I like turtles."


@pytest.fixture(scope="module")
def judge():
    backend = load_backend(None, n_threads=1)
    yield Judge(backend, mode="verdict")
    backend.close()


def test_assert_test_passes_above_the_threshold_and_fails_below(judge):
    good, wrong = (reward_from_result(judge.score(QUESTION, answer)) for answer in (GOOD, WRONG))
    # The 135M default judge separates these two only a little (docs/model-card.md); the threshold sits between.
    assert good > wrong
    threshold = (good + wrong) / 2
    metric = GavelMetric(judge, threshold=threshold)
    assert_test(LLMTestCase(input=QUESTION, actual_output=GOOD), [metric])
    with pytest.raises(AssertionError, match=f"threshold: {threshold}") as failed:
        assert_test(LLMTestCase(input=QUESTION, actual_output=WRONG), [metric])
    assert "gavel absolute" in str(failed.value)

    metric.measure(LLMTestCase(input=QUESTION, actual_output=GOOD))
    assert metric.score == pytest.approx(good, abs=1e-4) and metric.success and metric.error is None


def test_classification_and_pairwise_scores_are_the_judges_probabilities(judge):
    case = LLMTestCase(input=QUESTION, actual_output=GOOD, expected_output="36")
    classify = GavelMetric(judge, task="classification", rubric="Is the answer correct?", threshold=0.0)
    classify.measure(case)
    direct = judge.classify(QUESTION, GOOD, "Is the answer correct?", "36")
    assert classify.score == pytest.approx(direct.p_yes, abs=1e-4)
    pairwise = GavelMetric(judge, task="pairwise", threshold=0.0)
    pairwise.measure(case)
    both = Judge(judge.backend, mode="verdict", both_orders=True)
    assert pairwise.score == pytest.approx(both.compare(QUESTION, GOOD, "36").p_a, abs=1e-4)


def test_an_unreadable_verdict_fails_with_gavels_reason(openai_server):
    # The server model without logprobs, cut after 4 critique tokens: no verdict can be read from its text.
    unreadable = Judge(load_backend(f"openai:smollm2@{openai_server}", logprobs=False), max_new_tokens=4)
    metric = GavelMetric(unreadable, threshold=0.0)  # any score would pass: only the missing verdict can fail
    with pytest.raises(AssertionError, match="gavel: no verdict could be read"):
        assert_test(LLMTestCase(input=QUESTION, actual_output=GOOD), [metric])
    metric.measure(LLMTestCase(input=QUESTION, actual_output=GOOD))
    assert metric.score is None and metric.success is False and "status parse_failed" in metric.error
    unreadable.backend.close()
