"""Prompt templates: the built-in set, Selene-style YAML files, Jinja2 files and wrong-task errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gavel.backends.base import Backend, BackendInfo, Reply
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, validate_row
from gavel.judge.result import Mode, Status
from gavel.judge.runner import run_records
from gavel.judge.templates import PLACEHOLDERS, TemplateError, load_templates, output_format

FIXTURES = Path(__file__).parent / "fixtures" / "judge"
LEFTOVER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def _record(task: str, reference: str | None = None, **extra) -> JudgeRecord:
    data = {"id": f"{task}-1", "task": task, "instruction": "INSTR-TEXT", "rubric": "OBJ-TEXT"}
    if task == "pairwise":
        data |= {"response_a": "RESP-A-TEXT", "response_b": "RESP-B-TEXT"}
    else:
        data["response"] = "RESP-TEXT"
    if reference is not None:
        data["reference"] = reference
    return JudgeRecord.model_validate({**data, **extra})


TASKS = ("absolute", "classification", "pairwise")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("reference", [None, "REF-TEXT"])
@pytest.mark.parametrize("mode", list(Mode))
def test_default_set_fills_every_placeholder(task, reference, mode):
    templates = load_templates("default")
    record = _record(task, reference)
    text, template = templates.render(record, mode)
    expected_name = f"default/{task}_reference" if reference else f"default/{task}"
    assert template.name == expected_name
    assert LEFTOVER.search(text) is None, LEFTOVER.search(text)
    assert "INSTR-TEXT" in text and "OBJ-TEXT" in text
    if task == "pairwise":
        assert "RESP-A-TEXT" in text and "RESP-B-TEXT" in text
        assert text.index("RESP-A-TEXT") < text.index("RESP-B-TEXT")
    else:
        assert "RESP-TEXT" in text
    assert ("REF-TEXT" in text) == (reference is not None)
    assert output_format(record.task, mode) in text


def test_default_rubric_levels_are_rendered():
    levels = {"objective": "OBJ", **{f"score{i}": f"LEVEL-{i}" for i in range(1, 6)}}
    text, _ = load_templates().render(_record("absolute", rubric=levels), Mode.critique)
    assert [f"LEVEL-{i}" in text for i in range(1, 6)] == [True] * 5
    cls = {"objective": "OBJ", "yes": "YES-DESC", "no": "NO-DESC"}
    text, _ = load_templates().render(_record("classification", rubric=cls), Mode.critique)
    assert "YES-DESC" in text and "NO-DESC" in text


@pytest.mark.parametrize(("task", "spelling"), [("absolute", "an integer from 1 to 5"),
                                                 ("classification", "Yes or No"), ("pairwise", "A or B")])
def test_verdict_and_critique_format_text(task, spelling):
    record = _record(task)
    critique, _ = load_templates().render(record, Mode.critique)
    verdict, _ = load_templates().render(record, Mode.verdict)
    assert "**Reasoning:**" in critique and f"**Result:** <{spelling}>" in critique
    assert "**Reasoning:**" not in verdict and f"**Result:** <{spelling}>" in verdict
    assert critique != verdict


def test_selene_yaml_template_is_used_for_its_task_only():
    templates = load_templates(FIXTURES / "selene_absolute.yaml")
    levels = {"objective": "OBJ", **{f"score{i}": f"LEVEL-{i}" for i in range(1, 6)}}
    text, template = templates.render(_record("absolute", rubric=levels), Mode.critique)
    assert template.name == "selene_absolute"
    assert text.startswith("You are judging a response against a score rubric.")
    assert "INSTR-TEXT" in text and "RESP-TEXT" in text and "Score 5: LEVEL-5" in text
    assert "**Result:** <an integer between 1 and 5>" in text
    assert LEFTOVER.search(text) is None
    for task in ("classification", "pairwise"):
        other, used = templates.render(_record(task), Mode.critique)
        assert used.name == f"default/{task}"
        assert "You are judging a response against a score rubric." not in other


def test_yaml_without_user_template_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("system_template: hello {user_input}\n")
    with pytest.raises(TemplateError, match="user_template"):
        load_templates(path)


def test_template_naming_no_task_is_rejected(tmp_path):
    path = tmp_path / "vague.txt"
    path.write_text("Judge this: {user_input}\n{output_format}\n")
    with pytest.raises(TemplateError, match="cannot tell the task"):
        load_templates(path)


def test_unknown_template_spec():
    with pytest.raises(TemplateError, match="no such template"):
        load_templates("/nonexistent/template.txt")


@pytest.mark.parametrize("task", TASKS)
def test_jinja_file_serves_every_task(task):
    templates = load_templates(FIXTURES / "any_task.j2")
    text, template = templates.render(_record(task, reference="REF-TEXT"), Mode.verdict)
    assert template.name == "any_task"
    assert text.startswith(f"TASK={task} MODE=verdict")
    assert "Reference: REF-TEXT" in text
    assert output_format(_record(task).task, Mode.verdict) in text
    if task == "pairwise":
        assert "A: RESP-A-TEXT" in text and "B: RESP-B-TEXT" in text
    else:
        assert "Response: RESP-TEXT" in text
    plain, _ = templates.render(_record(task), Mode.critique)
    assert "Reference:" not in plain and "MODE=critique" in plain


def test_literal_braces_are_kept():
    templates = load_templates(FIXTURES / "json_braces_classification.txt")
    text, template = templates.render(_record("classification"), Mode.critique)
    assert template.name == "json_braces_classification"
    assert '{"verdict": "Yes"}' in text
    assert '{not_a_placeholder} and {"key": [1, 2]}' in text
    assert "Instruction: INSTR-TEXT" in text and LEFTOVER.search(text) is None


class _EchoBackend(Backend):
    """Answers `**Result:** <first label>` and records the prompts it saw."""

    def __init__(self) -> None:
        self.info = BackendInfo(name="echo", kind="fake")
        self.prompts: list[str] = []

    def run(self, requests):
        self.prompts += [r.messages[0]["content"] for r in requests]
        return [Reply(text=f"**Result:** {r.labels[0]}") for r in requests]


def test_wrong_task_template_is_a_row_error(tmp_path):
    folder = tmp_path / "myset"
    folder.mkdir()
    # a file named for absolute items whose placeholders are those of a pairwise template
    (folder / "absolute.txt").write_text("{user_input}\nA: {assistant_response_a}\nB: {assistant_response_b}\n"
                                         "{output_format}\n")
    templates = load_templates(folder)
    with pytest.raises(TemplateError, match="is for pairwise items, not absolute"):
        templates.render(_record("absolute"), Mode.verdict)
    with pytest.raises(TemplateError, match="no template for classification"):
        templates.render(_record("classification"), Mode.verdict)

    backend = _EchoBackend()
    judge = Judge(backend, mode="verdict", templates=templates)
    rows = [validate_row({"task": "absolute", "instruction": "q", "response": "r"}, "in.jsonl", 1)]
    out = tmp_path / "out.jsonl"
    summary = run_records(judge, rows, out, source="in.jsonl")
    assert summary.judged == 0
    assert len(summary.row_errors) == 1
    error = summary.row_errors[0]
    assert error.row == 1 and "pairwise" in error.message
    assert not out.exists()  # a run that judges nothing leaves no output behind
    assert backend.prompts == []  # nothing was sent to the model

    result = judge.judge([_record("absolute")])[0]
    assert result.status is Status.error and result.result is None


def test_template_set_through_judge_reaches_backend():
    backend = _EchoBackend()
    judge = Judge(backend, mode="critique", template=str(FIXTURES / "selene_absolute.yaml"))
    results = judge.judge([_record("absolute"), _record("pairwise")])
    assert [r.template for r in results] == ["selene_absolute", "default/pairwise"]
    assert backend.prompts[0].startswith("You are judging a response")
    assert "RESP-A-TEXT" in backend.prompts[1]
