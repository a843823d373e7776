"""Reading verdicts out of judge text: the strict `**Result:** X` form first, then tolerant forms."""

from __future__ import annotations

import pytest

from gavel.judge.parsing import canonical_label, extract_critique, parse_output
from gavel.judge.records import Task


@pytest.mark.parametrize(
    ("task", "text", "expected"),
    [
        (Task.absolute, "**Reasoning:** fine.\n\n**Result:** 4", "4"),
        (Task.classification, "**Reasoning:** wrong.\n\n**Result:** No", "No"),
        (Task.pairwise, "**Reasoning:** A is better.\n\n**Result:** A", "A"),
        (Task.absolute, "**Result:** 4   ", "4"),
    ],
)
def test_strict_result(task, text, expected):
    parsed = parse_output(task, text)
    assert parsed.result == expected
    assert parsed.strict is True


def test_first_strict_result_wins_and_a_different_second_is_a_conflict():
    text = "**Result:** 2\nOn reflection I change my mind.\n**Result:** 5"
    parsed = parse_output(Task.absolute, text)
    assert parsed.result == "2"
    assert not parsed.strict and parsed.conflict
    same = parse_output(Task.absolute, "**Result:** 2\nas said, **Result:** 2")
    assert same.result == "2" and same.strict and not same.conflict


def test_invalid_last_strict_result_falls_back_to_earlier_valid_one():
    text = "**Result:** 3\n**Result:** 9"
    assert parse_output(Task.absolute, text).result == "3"


@pytest.mark.parametrize(
    ("task", "text", "expected"),
    [
        (Task.pairwise, "**Reasoning:** B is correct.\n**Result**: B", "B"),
        (Task.classification, "It is right.\nResult: yes", "Yes"),
        (Task.classification, "It is wrong.\nVerdict - NO", "No"),
        (Task.pairwise, "A wins.\n**result:** a.", "A"),
        (Task.absolute, "Feedback: decent but thin. [RESULT] 3", "3"),
        (Task.absolute, "Mostly right.\nScore: 4/5", "4"),
        (Task.absolute, "Mostly right.\nScore: 2 out of 5", "2"),
        (Task.pairwise, "**Reasoning:** A is shorter.\n**Result:** Response A", "A"),
        (Task.pairwise, "Final verdict: [[B]]", "B"),
    ],
)
def test_tolerant_variants(task, text, expected):
    parsed = parse_output(task, text)
    assert parsed.result == expected
    assert parsed.strict is False


@pytest.mark.parametrize(
    ("task", "text"),
    [
        (Task.absolute, "**Reasoning:** excellent.\n\n**Result:** 7"),
        (Task.absolute, "**Result:** 0"),
        (Task.absolute, "Score: 6/5"),
        (Task.classification, "**Result:** Maybe"),
        (Task.pairwise, "**Result:** C"),
        (Task.pairwise, "**Result:** tie"),
    ],
)
def test_out_of_range_or_unknown_result_is_none(task, text):
    assert parse_output(task, text).result is None


@pytest.mark.parametrize("text", ["", "The response is fine and well written.", "**Reasoning:** ok but no verdict"])
def test_no_result_is_none(text):
    parsed = parse_output(Task.absolute, text)
    assert parsed.result is None
    assert parsed.strict is False


def test_critique_extraction():
    text = "**Reasoning:** The answer names Canberra,\nwhich is correct.\n\n**Result:** B"
    assert parse_output(Task.pairwise, text).critique == "The answer names Canberra,\nwhich is correct."
    # without the reasoning tag: the text before the result
    assert extract_critique("Looks right to me.\nResult: Yes") == "Looks right to me."
    # a result only: no critique
    assert parse_output(Task.absolute, "**Result:** 3").critique is None
    # a critique cut off before any result is kept whole
    assert extract_critique("**Reasoning:** The response starts well but") == "The response starts well but"


def test_canonical_label():
    assert canonical_label(Task.absolute, "4.0") == "4"
    assert canonical_label(Task.absolute, "4.5") is None
    assert canonical_label(Task.classification, "YES.") == "Yes"
    assert canonical_label(Task.pairwise, "b") == "B"
    assert canonical_label(Task.pairwise, "Yes") is None
