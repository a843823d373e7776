"""Prompt templates: the built-in set, Selene-style YAML files, Jinja2 files and wrong-task errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import one_error_line

from gavel import backends
from gavel.backends.base import Backend, BackendInfo, Reply
from gavel.bench import harness
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, Task, validate_row
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


# -- a broken file is refused when it is loaded: one line naming the file (and the line), before any model ----

BROKEN = {  # file name, content, what the one error line says after the file's path
    "broken.j2": ('Judge {{ user_input }}\n{% if task == "pairwise" %}\nA: {{ assistant_response_a }}\n',
                  ", line 3: Unexpected end of template"),
    "undef.j2": ("Judge {{ user_input }}\n{{ undefined_var.attr }}\n", ", line 2: unknown variable 'undefined_var' "
                 "(known: user_input, "),
    "attr.j2": ("Judge {{ user_input.attr }}\n", ", line 1: UndefinedError: 'str object' has no attribute 'attr'"),
    "filter.j2": ("Judge {{ user_input | no_such_filter }}\n", ", line 1: No filter named 'no_such_filter'"),
    "weird.yaml": ("user_template: 5\n", ": user_template: Input should be a valid string (got 5)"),
    "nokey.yaml": ("system_template: hello {user_input}\n", ": user_template: Field required"),
    "notyaml.yaml": ("user_template: [unclosed\n", ": not valid YAML (line 2, column 1)"),
    "typo.txt": ("Evaluate: {user_inptu}\nA: {assistant_response_a}\nB: {assistant_response_b}\n",
                 ": unknown placeholder {user_inptu} (known: user_input, assistant_response, "),
    "typo.yaml": ("user_template: 'Q: {user_input} R: {assistant_response} {rubric_score_1_descriptoin}'\n",
                  ": unknown placeholder {rubric_score_1_descriptoin}"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_template_file_is_refused_on_load(tmp_path, name):
    text, message = BROKEN[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TemplateError) as raised:
        load_templates(path)
    assert str(raised.value).startswith(f"{path}{message}"), raised.value
    assert "\n" not in str(raised.value)


def test_broken_file_in_a_template_folder_is_refused(tmp_path):
    (tmp_path / "absolute.txt").write_text("{user_input} {assistant_response} {rubric_score_1_description}\n")
    (tmp_path / "pairwise.txt").write_text("{user_input} {assistant_respons_a} {assistant_response_b}\n")
    with pytest.raises(TemplateError, match=re.escape(f"{tmp_path / 'pairwise.txt'}: unknown placeholder "
                                                      "{assistant_respons_a}")):
        load_templates(tmp_path)


def test_variable_set_in_one_branch_only_is_caught_by_the_sample_renders(tmp_path):
    path = tmp_path / "branch.j2"
    path.write_text('{% if task == "absolute" %}{% set kind = "score" %}{% endif %}\n{{ user_input }} {{ kind }}\n')
    with pytest.raises(TemplateError, match=r"branch\.j2, line 2: UndefinedError: 'kind' is undefined "
                                            r"\(rendering a classification item"):
        load_templates(path)


@pytest.mark.parametrize("name", ["default", "markdown", "json", "xml", "plain", "rubric-first"])
def test_every_builtin_set_passes_the_load_checks(name):
    assert load_templates(name).name == name


def test_only_a_bare_name_in_braces_is_a_placeholder(tmp_path):
    path = tmp_path / "braces.txt"
    path.write_text('{user_input}\n{assistant_response_a} {assistant_response_b}\n'
                    'Reply as {"winner": "A"} or { user_input } {} {0} {a b} {{assistant_response_a}}\n')
    text, _ = load_templates(path).render(_record("pairwise"), Mode.verdict)
    assert text.endswith('Reply as {"winner": "A"} or { user_input } {} {0} {a b} {RESP-A-TEXT}')


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
    assert 'Other braces stay: { not_a_placeholder }, {} {1} {a-b} and {"key": [1, 2]}' in text
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


# -- the CLI: a broken template is a usage error (exit 2, one error line) before any model loads -------------

def _no_model(monkeypatch) -> None:
    def load(*args, **kwargs):
        pytest.fail("the model must not load")

    monkeypatch.setattr(backends, "load_backend", load)
    monkeypatch.setattr(harness, "load_backend", load)


def _input(tmp_path: Path) -> Path:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "1", "task": "pairwise", "instruction": "Q", "response_a": "a", "response_b": "b", '
                      '"label": "A"}\n')
    return source


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("command", ["judge", "judge --batch 2", "serve", "bench"])
def test_cli_refuses_a_broken_template_before_loading(gavel, monkeypatch, tmp_path, name, command):
    _no_model(monkeypatch)
    text, message = BROKEN[name]
    path = tmp_path / name
    path.write_text(text)
    out = tmp_path / "out.jsonl"
    args = {"judge": ["judge", _input(tmp_path), "-t", path, "-o", out, "-q"],
            "judge --batch 2": ["judge", _input(tmp_path), "-t", path, "--batch", "2", "-o", out, "-q"],
            "serve": ["serve", "-t", path],
            "bench": ["bench", "--data", _input(tmp_path), "--formats", f"default,{path}", "-o", tmp_path / "b"]}
    result = gavel(*args[command])
    assert result.exit_code == 2, result.output
    assert one_error_line(result.output).startswith(f"error: {path}{message}")
    assert not out.exists() and not (tmp_path / "b").exists()


def test_cli_judges_with_a_valid_custom_template(gavel, monkeypatch, tmp_path):
    backend = _EchoBackend()
    monkeypatch.setattr(backends, "load_backend", lambda *args, **kwargs: backend)
    path = tmp_path / "mine.txt"
    path.write_text('Which answer is better? {user_input}\nA: {assistant_response_a}\nB: {assistant_response_b}\n'
                    'Answer like {"winner": "A"}.\n{output_format}\n')
    out = tmp_path / "out.jsonl"
    result = gavel("judge", _input(tmp_path), "-t", path, "--mode", "verdict", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["template"] == "mine" and row["result"] == "A"
    assert backend.prompts == ['Which answer is better? Q\nA: a\nB: b\nAnswer like {"winner": "A"}.\n'
                               + output_format(Task.pairwise, Mode.verdict)]
