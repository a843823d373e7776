"""The record schema: validation errors that name the row and field, and the file formats read."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gavel.judge.records import JudgeRecord, Task, read_rows, record_to_dict, validate_row


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ABS = {"task": "absolute", "instruction": "What is 2+2?", "response": "4"}


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        ({"task": "absolute", "instruction": "q"}, "response", "required"),
        ({"task": "pairwise", "instruction": "q", "response_a": "x"}, "response_b", "required"),
        ({"instruction": "q", "response": "r"}, "task", "missing"),
        ({**ABS, "response": 5}, "response", "string"),
        ({**ABS, "instruction": ["a", "b"]}, "instruction", "string"),
        ({**ABS, "task": "ranking"}, "task", "unknown task type 'ranking'"),
        ({**ABS, "label": 4.5}, "label", "'4.5' is not a score from 1 to 5"),
        ({**ABS, "instruction": ""}, "instruction", "must not be empty"),
        ({**ABS, "label": 7}, "label", "not a score from 1 to 5"),
        ({**ABS, "label": "great"}, "label", "not a score from 1 to 5"),
        ({**ABS, "task": "classification", "label": "maybe"}, "label", "not one of"),
        ({"task": "pairwise", "instruction": "q", "response_a": "x", "response_b": "y", "label": "C"},
         "label", "not one of"),
        ({**ABS, "rubric": 12}, "rubric", "dictionary"),
    ],
)
def test_validation_errors_name_row_and_field(raw, field, fragment):
    loaded = validate_row(raw, "data/items.jsonl", 17)
    assert loaded.record is None
    error = loaded.error
    assert error is not None
    assert error.row == 17
    assert error.field == field
    assert fragment in error.message
    text = str(error)
    assert text.startswith(f"data/items.jsonl, row 17, field '{field}': ")


def test_non_object_row():
    loaded = validate_row(["not", "a", "dict"], "x.jsonl", 3)
    assert loaded.error is not None and loaded.record is None
    assert str(loaded.error) == "x.jsonl, row 3: row is not a JSON object"


def test_invalid_json_line_is_a_row_error_and_others_load(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(ABS) + "\n{not json\n\n" + json.dumps({**ABS, "id": "z"}) + "\n")
    rows = list(read_rows(path))
    assert [r.row for r in rows] == [1, 2, 4]
    assert rows[0].record is not None and rows[2].record is not None
    assert rows[1].error is not None and "invalid JSON" in rows[1].error.message
    assert str(rows[1].error).startswith(f"{path}, row 2")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such file"):
        list(read_rows("/nonexistent/items.jsonl"))


def test_default_id_is_row_number_and_given_ids_kept(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [ABS, {**ABS, "id": "mine"}, {**ABS, "id": 42}, ABS])
    ids = [r.record.id for r in read_rows(path)]
    assert ids == ["1", "mine", "42", "4"]


def test_extra_fields_pass_through(tmp_path):
    raw = {**ABS, "id": "e1", "source": "gsm8k", "meta": {"difficulty": 3, "tags": ["math"]}}
    record = validate_row(raw, "x", 1).record
    assert record is not None
    assert record.extra_fields() == {"source": "gsm8k", "meta": {"difficulty": 3, "tags": ["math"]}}
    out = record_to_dict(record)
    assert out["source"] == "gsm8k" and out["meta"]["tags"] == ["math"]
    assert "reference" not in out  # absent fields are not written as null


def test_rubric_string_vs_object():
    as_string = validate_row({**ABS, "rubric": "Is the arithmetic right?"}, "x", 1).record
    assert as_string.rubric.objective == "Is the arithmetic right?"
    filled = as_string.resolved_rubric()
    assert filled.objective == "Is the arithmetic right?"
    assert all(getattr(filled, f"score{i}") for i in range(1, 6))  # generic level descriptions filled in

    levels = {"objective": "Correct?", **{f"score{i}": f"level {i}" for i in range(1, 6)}}
    as_object = validate_row({**ABS, "rubric": levels}, "x", 1).record
    resolved = as_object.resolved_rubric()
    assert [getattr(resolved, f"score{i}") for i in range(1, 6)] == [f"level {i}" for i in range(1, 6)]

    partial = validate_row({**ABS, "task": "classification", "rubric": {"objective": "Polite?", "yes": "polite"}},
                           "x", 1).record.resolved_rubric()
    assert partial.yes == "polite" and partial.no  # the missing description gets a generic one

    none = validate_row(ABS, "x", 1).record
    assert none.rubric is None
    assert none.resolved_rubric().score5  # the task's default rubric


def test_label_normalisation():
    assert validate_row({**ABS, "label": 4.0}, "x", 1).record.label == "4"
    assert validate_row({**ABS, "label": "5"}, "x", 1).record.label == "5"
    cls = {**ABS, "task": "classification"}
    assert validate_row({**cls, "label": True}, "x", 1).record.label == "Yes"
    assert validate_row({**cls, "label": "no"}, "x", 1).record.label == "No"
    pw = {"task": "pairwise", "instruction": "q", "response_a": "x", "response_b": "y"}
    assert validate_row({**pw, "label": "b"}, "x", 1).record.label == "B"
    assert validate_row({**pw, "label": "TIE"}, "x", 1).record.label == "tie"


def test_swapped_exchanges_responses_and_label():
    record = JudgeRecord.model_validate(
        {"id": "p", "task": "pairwise", "instruction": "q", "response_a": "first", "response_b": "second",
         "label": "A"})
    swapped = record.swapped()
    assert (swapped.response_a, swapped.response_b, swapped.label) == ("second", "first", "B")
    assert record.response_a == "first"  # the original is untouched


def test_csv_input(tmp_path):
    frame = pd.DataFrame([
        {"id": "c1", "task": "absolute", "instruction": "2+2?", "response": "4", "rubric": "Correct?",
         "label": "5", "response_a": "", "response_b": "", "origin": "csv"},
        {"id": "c2", "task": "pairwise", "instruction": "Capital of France?", "response": "",
         "response_a": "Paris", "response_b": "Lyon", "rubric": "", "label": "A", "origin": "csv"},
        {"id": "c3", "task": "classification", "instruction": "Polite?", "response": "Go away.",
         "rubric": json.dumps({"objective": "Is it polite?", "yes": "polite", "no": "rude"}), "label": "No",
         "response_a": "", "response_b": "", "origin": "csv"},
        {"id": "c4", "task": "absolute", "instruction": "Say hi", "response": "", "rubric": "", "label": "",
         "response_a": "", "response_b": "", "origin": "csv"},
    ])
    path = tmp_path / "items.csv"
    frame.to_csv(path, index=False)
    rows = list(read_rows(path))
    assert [r.row for r in rows] == [1, 2, 3, 4]
    first, second, third, fourth = rows
    assert first.record.task is Task.absolute and first.record.label == "5"
    assert first.record.rubric.objective == "Correct?"
    assert first.record.extra_fields() == {"origin": "csv"}
    assert second.record.response_a == "Paris" and second.record.response is None and second.record.rubric is None
    assert third.record.rubric.no == "rude"  # a JSON rubric cell is decoded
    assert fourth.record.response == ""  # an empty response cell is an empty answer, judged (issue 7.8)
    assert fourth.record.label is None and fourth.record.rubric is None


def test_parquet_input(tmp_path):
    frame = pd.DataFrame([
        {"task": "absolute", "instruction": "2+2?", "response": "4", "reference": "4", "label": 5.0, "n": 1},
        {"task": "classification", "instruction": "Is it blue?", "response": "Yes", "reference": None,
         "label": None, "n": 2},
        {"task": "absolute", "instruction": "2+3?", "response": None, "reference": None, "label": 3.0, "n": 3},
    ])
    path = tmp_path / "items.parquet"
    frame.to_parquet(path)
    rows = list(read_rows(path))
    assert rows[0].record.id == "1" and rows[0].record.label == "5" and rows[0].record.reference == "4"
    assert rows[0].record.extra_fields() == {"n": 1}
    assert rows[1].record.label is None and rows[1].record.reference is None  # NaN/None cells are absent
    assert rows[2].record is None
    assert rows[2].error.row == 3 and rows[2].error.field == "response"


def test_a_saved_dataset_dict_names_the_split_it_reads_and_hf_offline_fails_at_once(tmp_path, caplog, monkeypatch):
    import time

    import datasets

    rows = {"task": ["absolute"], "instruction": ["What is 2 + 2?"], "response": ["4"]}
    folder = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                          "validation": datasets.Dataset.from_dict({**rows, "response": ["5"]})}).save_to_disk(folder)
    with caplog.at_level("WARNING"):
        loaded = list(read_rows(folder))
    assert [r.record.response for r in loaded] == ["4"]
    assert f"{folder} holds the splits train, validation: judging 'train'" in caplog.text
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ValueError, match="hf:org/name: the hub cannot be reached"):
        list(read_rows("hf:org/name"))
    assert time.perf_counter() - started < 5
