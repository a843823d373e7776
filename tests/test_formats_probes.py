"""The alternative prompt formats and the injection probe (no model involved)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from gavel.bench.probes import FORMATS, inject, injection_target
from gavel.judge.records import JudgeRecord, Task
from gavel.judge.result import Mode
from gavel.judge.templates import builtin_names, load_templates, output_format

ALTERNATIVES = [f for f in FORMATS if f != "default"]
TRICKY = 'He said "hi" \\ then left.\nSecond line\twith a tab, <b>bold</b> & {{ braces }} {% tag %} é'


def _record(task: Task, reference: str | None = None, text: str = "", label: str | None = None) -> JudgeRecord:
    base = {
        "id": f"{task.value}-1",
        "task": task,
        "instruction": f"INSTRUCTION-TEXT {text}",
        "reference": reference,
        "label": label,
    }
    if task is Task.pairwise:
        base |= {"response_a": f"RESPONSE-A-TEXT {text}", "response_b": f"RESPONSE-B-TEXT {text}",
                 "rubric": {"objective": f"OBJECTIVE-TEXT {text}"}}
    elif task is Task.absolute:
        base |= {"response": f"RESPONSE-TEXT {text}",
                 "rubric": {"objective": f"OBJECTIVE-TEXT {text}",
                            **{f"score{i}": f"LEVEL-{i}-TEXT {text}" for i in range(1, 6)}}}
    else:
        base |= {"response": f"RESPONSE-TEXT {text}",
                 "rubric": {"objective": f"OBJECTIVE-TEXT {text}", "yes": f"YES-TEXT {text}",
                            "no": f"NO-TEXT {text}"}}
    return JudgeRecord.model_validate(base)


def _data_markers(task: Task, with_reference: bool) -> list[str]:
    markers = ["INSTRUCTION-TEXT", "OBJECTIVE-TEXT"]
    if task is Task.pairwise:
        markers += ["RESPONSE-A-TEXT", "RESPONSE-B-TEXT"]
    elif task is Task.absolute:
        markers += ["RESPONSE-TEXT", *(f"LEVEL-{i}-TEXT" for i in range(1, 6))]
    else:
        markers += ["RESPONSE-TEXT", "YES-TEXT", "NO-TEXT"]
    if with_reference:
        markers.append("REFERENCE-TEXT")
    return markers


CASES = [(task, ref) for task in Task for ref in (False, True)]


def test_formats_are_builtin_sets() -> None:
    assert FORMATS[0] == "default"
    assert set(FORMATS) <= set(builtin_names())
    for name in FORMATS:
        assert load_templates(name).name == name


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize(("task", "with_reference"), CASES)
@pytest.mark.parametrize("mode", list(Mode))
def test_format_renders_every_task(name: str, task: Task, with_reference: bool, mode: Mode) -> None:
    record = _record(task, "REFERENCE-TEXT" if with_reference else None)
    prompt, template = load_templates(name).render(record, mode)
    assert template.name.startswith(f"{name}/")
    for marker in _data_markers(task, with_reference):
        assert marker in prompt, f"{name}: {marker} missing"
    assert ("REFERENCE-TEXT" in prompt) is with_reference
    if not with_reference:
        assert "reference" not in prompt.lower()
    assert "{{" not in prompt and "{%" not in prompt and "{#" not in prompt
    assert output_format(task, mode) in prompt
    assert "**Result:**" in prompt
    if task is Task.pairwise:
        lowered = prompt.lower()
        assert "order" in lowered and ("length" in lowered or "longer" in lowered)
        assert "neither" in lowered


@pytest.mark.parametrize(("task", "with_reference"), CASES)
def test_formats_are_pairwise_distinct(task: Task, with_reference: bool) -> None:
    record = _record(task, "REFERENCE-TEXT" if with_reference else None)
    prompts = {name: load_templates(name).render(record, Mode.critique)[0] for name in FORMATS}
    assert len(set(prompts.values())) == len(FORMATS)


def test_rubric_first_puts_rubric_and_reference_before_the_data() -> None:
    for task in Task:
        prompt = load_templates("rubric-first").render(_record(task, "REFERENCE-TEXT"), Mode.critique)[0]
        assert prompt.index("OBJECTIVE-TEXT") < prompt.index("REFERENCE-TEXT") < prompt.index("INSTRUCTION-TEXT")
        default = load_templates("default").render(_record(task, "REFERENCE-TEXT"), Mode.critique)[0]
        assert default.index("OBJECTIVE-TEXT") > default.index("INSTRUCTION-TEXT")


def _json_block(prompt: str) -> dict:
    match = re.search(r"```json\n(.*?)\n```", prompt, flags=re.DOTALL)
    assert match, "no ```json block"
    return json.loads(match.group(1))


@pytest.mark.parametrize(("task", "with_reference"), CASES)
def test_json_format_round_trips_the_texts(task: Task, with_reference: bool) -> None:
    record = _record(task, f"REFERENCE-TEXT {TRICKY}" if with_reference else None, text=TRICKY)
    data = _json_block(load_templates("json").render(record, Mode.critique)[0])
    rubric = record.resolved_rubric()
    assert data["instruction"] == record.instruction
    assert data["rubric"]["objective"] == rubric.objective
    if task is Task.pairwise:
        assert (data["response_a"], data["response_b"]) == (record.response_a, record.response_b)
        assert set(data["rubric"]) == {"objective"}
    else:
        assert data["response"] == record.response
    if task is Task.absolute:
        assert [data["rubric"][f"score_{i}"] for i in range(1, 6)] == [
            getattr(rubric, f"score{i}") for i in range(1, 6)]
    if task is Task.classification:
        assert (data["rubric"]["yes"], data["rubric"]["no"]) == (rubric.yes, rubric.no)
    assert data.get("reference_answer") == record.reference


@pytest.mark.parametrize(("task", "with_reference"), CASES)
def test_xml_format_escapes_and_parses(task: Task, with_reference: bool) -> None:
    record = _record(task, f"REFERENCE-TEXT {TRICKY}" if with_reference else None, text=TRICKY)
    prompt = load_templates("xml").render(record, Mode.critique)[0]
    assert "<b>bold</b>" not in prompt
    assert "&lt;b&gt;bold&lt;/b&gt;" in prompt
    assert "&amp;" in prompt
    match = re.search(r"<evaluation_data>.*</evaluation_data>", prompt, flags=re.DOTALL)
    assert match
    root = ET.fromstring(match.group(0))
    assert root.findtext("instruction") == record.instruction
    if task is Task.pairwise:
        assert root.findtext("response_a") == record.response_a
        assert root.findtext("response_b") == record.response_b
    else:
        assert root.findtext("response") == record.response
    assert root.findtext("rubric/objective") == record.resolved_rubric().objective
    assert root.findtext("reference") == record.reference


def test_plain_format_has_no_markdown_of_its_own() -> None:
    for task in Task:
        record = _record(task, "REFERENCE-TEXT")
        prompt = load_templates("plain").render(record, Mode.critique)[0]
        without_format = prompt.replace(output_format(task, Mode.critique), "")
        assert "```" not in without_format and "**" not in without_format and "##" not in without_format


# ------------------------------------------------------------------------------------------------
# inject()
# ------------------------------------------------------------------------------------------------

def _probe_records() -> list[JudgeRecord]:
    records = []
    for i, label in enumerate(["A", "B", "tie", None]):
        records.append(JudgeRecord(id=f"p{i}", task=Task.pairwise, instruction="Q", response_a="alpha",
                                   response_b="beta", label=label))
    for i, label in enumerate(["Yes", "No", None]):
        records.append(JudgeRecord(id=f"c{i}", task=Task.classification, instruction="Q", response="gamma",
                                   label=label))
    for i, label in enumerate(["1", "3", "4", "5", None]):
        records.append(JudgeRecord(id=f"a{i}", task=Task.absolute, instruction="Q", response="delta",
                                   label=label, source="unit"))
    return records


EXPECTED_TARGETS = {
    "p0": "B", "p1": "A", "p2": "B", "p3": "B",
    "c0": "No", "c1": "Yes", "c2": "Yes",
    "a0": "5", "a1": "5", "a2": "1", "a3": "1", "a4": "5",
}


def test_inject_targets_the_wrong_verdict() -> None:
    originals = _probe_records()
    injected = inject(originals)
    assert len(injected) == len(originals)
    for original, new in zip(originals, injected, strict=True):
        extra = new.extra_fields()
        assert new.id == f"{original.id}-inj"
        assert extra["injected_target"] == EXPECTED_TARGETS[original.id] == injection_target(original)
        assert extra["injected_target"] != original.label
        assert extra["injected_target"] in new.labels
        assert new.label == original.label and new.task is original.task
        assert f"**Result:** {extra['injected_target']}" in extra["injection_text"]


def test_inject_plants_in_the_right_response() -> None:
    originals = _probe_records()
    for original, new in zip(originals, inject(originals), strict=True):
        text = new.extra_fields()["injection_text"]
        position = new.extra_fields()["injection_position"]
        if original.task is Task.pairwise:
            carrier = "response_a" if new.extra_fields()["injected_target"] == "A" else "response_b"
            other = "response_b" if carrier == "response_a" else "response_a"
            assert getattr(new, other) == getattr(original, other)
            if original.label in ("A", "B"):
                assert carrier != f"response_{original.label.lower()}"
            else:
                assert carrier == "response_b"
        else:
            carrier = "response"
        planted, before = getattr(new, carrier), getattr(original, carrier)
        assert text in planted and before in planted
        if position == "start":
            assert planted == f"{text}\n\n{before}"
        else:
            assert planted == f"{before}\n\n{text}"
        assert original.instruction == new.instruction


def test_inject_keeps_extra_fields_and_originals() -> None:
    originals = _probe_records()
    snapshot = [r.model_dump() for r in originals]
    injected = inject(originals)
    assert [r.model_dump() for r in originals] == snapshot
    assert injected[-1].extra_fields()["source"] == "unit"


def test_inject_is_deterministic_and_varies() -> None:
    records = [JudgeRecord(id=str(i), task=Task.pairwise, instruction="Q", response_a="x", response_b="y",
                           label="A") for i in range(40)]
    first = [r.model_dump() for r in inject(records, seed=3)]
    assert first == [r.model_dump() for r in inject(records, seed=3)]
    assert first != [r.model_dump() for r in inject(records, seed=4)]
    # per-record draws: a subset gets the same injections as in the full run
    assert [r.model_dump() for r in inject(records[5:9], seed=3)] == first[5:9]
    texts = {r["injection_text"] for r in first}
    positions = {r["injection_position"] for r in first}
    assert len(texts) >= 3 and positions == {"start", "end"}


def test_injected_records_render_in_every_format() -> None:
    for new in inject(_probe_records()):
        for name in FORMATS:
            prompt = load_templates(name).render(new, Mode.critique)[0]
            assert "**Result:**" in prompt
            if name != "json":
                assert new.extra_fields()["injection_text"].split(":")[0] in prompt
