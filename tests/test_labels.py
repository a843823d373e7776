"""gavel.labels: the one definition of labels, spelling, swap, scored statuses and primary metrics."""

from __future__ import annotations

import pytest

from gavel import labels
from gavel.labels import Status, Task, canonical_label, is_scored, normalise_label, swap_label, yes_no


def test_every_layer_uses_the_one_definition():
    from gavel.bench import metrics, registry
    from gavel.bench.loaders import hub
    from gavel.judge import engine, parsing, records, result

    assert records.LABELS is labels.LABELS and records.Task is labels.Task
    assert records.normalise_label is labels.normalise_label and parsing.canonical_label is labels.canonical_label
    assert result.SCORED is labels.SCORED and result.Status is labels.Status
    assert registry.PRIMARY_METRIC is labels.PRIMARY_METRIC
    assert engine.swap_label is metrics.swap_label is labels.swap_label
    assert metrics.REWARDBENCH_SECTIONS is labels.REWARDBENCH_SECTIONS
    assert not hasattr(hub, "yes_no") and not hasattr(hub, "REWARDBENCH_SECTIONS")


def test_swap_label():
    assert [swap_label(x) for x in ("A", "B", "tie", None)] == ["B", "A", "tie", None]


def test_swapped_record_follows_the_gold():
    from gavel.judge.records import JudgeRecord

    record = JudgeRecord(id="1", task="pairwise", instruction="q", response_a="x", response_b="y", label="A")
    swapped = record.swapped()
    assert (swapped.response_a, swapped.response_b, swapped.label) == ("y", "x", "B")


@pytest.mark.parametrize(("value", "expected"), [(True, "Yes"), (0, "No"), ("1.0", "Yes"), (" Supported ", "Yes"),
                                                 ("not supported", "No"), ("FALSE", "No")])
def test_yes_no(value, expected):
    assert yes_no(value) == expected


def test_yes_no_rejects_other_values():
    with pytest.raises(ValueError, match="'maybe' is not a yes/no label"):
        yes_no("maybe")


def test_gold_labels_and_verdicts():
    assert normalise_label(Task.absolute, " 4.0 ") == "4"
    assert normalise_label(Task.classification, "true") == "Yes"
    assert normalise_label(Task.pairwise, "Tie") == "tie" and normalise_label(Task.pairwise, "b") == "B"
    for task, bad in ((Task.absolute, "6"), (Task.absolute, "4.5"), (Task.classification, "maybe"),
                      (Task.pairwise, "C"), (Task.pairwise, "A.")):
        with pytest.raises(ValueError, match="field 'label'"):
            normalise_label(task, bad)
    assert canonical_label(Task.pairwise, " b. ") == "B" and canonical_label(Task.pairwise, "tie") is None
    assert canonical_label(Task.classification, "YES") == "Yes" and canonical_label(Task.absolute, "3.") == "3"


def test_scored_statuses_and_primary_metrics():
    assert [s.value for s in Status if is_scored(s)] == ["ok", "tolerant", "forced", "logits"]
    assert not is_scored("parse_failed") and not is_scored(Status.error)
    assert {Task.absolute: "pearson", Task.classification: "accuracy",
                                     Task.pairwise: "accuracy"} == labels.PRIMARY_METRIC
    assert labels.rewardbench_section("llmbar-natural") == "chat_hard" and labels.rewardbench_section("x") is None
