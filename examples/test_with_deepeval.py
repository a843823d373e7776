"""A CI gate with DeepEval and gavel's judge (``pip install 'gavel[deepeval]'``):

    pytest examples/test_with_deepeval.py        # or: deepeval test run examples/test_with_deepeval.py

GavelMetric reads the verdict from the judge's label probabilities: no JSON to go wrong, the same verdict on every
run (greedy), and a verdict that cannot be read fails the test with gavel's reason rather than a made-up score.
Set GAVEL_JUDGE to any gavel model spec (default: gavel's embedded 135M judge, which separates answers only a little:
use a stronger judge for real gates).
"""

import os

import pytest
from deepeval import assert_test
from deepeval.test_case import LLMTestCase

from gavel import Judge
from gavel.integrations.deepeval import GavelMetric

judge = Judge(os.environ.get("GAVEL_JUDGE"), mode="verdict", cache=".gavel-judgments.db")


@pytest.mark.parametrize("question, answer", [
    ("What is 12 times 3?", "12 times 3 is 36."),
    ("What is the capital of France?", "The capital of France is Paris."),
])
def test_answers_are_good_enough(question, answer):
    assert_test(LLMTestCase(input=question, actual_output=answer),
                [GavelMetric(judge, rubric="Is the answer correct and to the point?", threshold=0.4)])


def test_answer_is_at_least_as_good_as_the_reference():
    case = LLMTestCase(input="Say thank you in French.", actual_output="Merci !", expected_output="Merci.")
    assert_test(case, [GavelMetric(judge, task="pairwise", threshold=0.4)])
