"""Judge settings as one typed object, and the answer convention in one module (no model loads here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gavel import cli
from gavel.judge.engine import Judge
from gavel.judge.parsing import parse_output
from gavel.judge.templates import output_format
from gavel.labels import (
    REASONING_TAG,
    RESULT_STOPS,
    RESULT_TAG,
    Mode,
    Task,
    answer_text,
    opposite,
    swap_label,
)
from gavel.settings import DEFAULTS, JudgeSettings, SettingsError, allowed_range

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.jsonl"


def test_settings_validate_ranges_and_name_them():
    with pytest.raises(SettingsError) as caught:
        JudgeSettings.of(max_new_tokens=-5, retries=-3, repetition_penalty=-1)
    assert [name for name, _ in caught.value.problems] == ["max_new_tokens", "repetition_penalty", "retries"]
    message = caught.value.message(option=True)
    assert "--max-new-tokens: -5 is out of range (allowed: from 1 to 32768)" in message
    assert "--repetition-penalty: -1 is out of range (allowed: from 1.0 to 2.0)" in message
    assert "--retries: -3 is out of range (allowed: from 0 to 10)" in message
    assert allowed_range("retry_temperature") == "above 0.0 and at most 2.0"
    with pytest.raises(SettingsError, match="mode"):
        JudgeSettings.of(mode="sloppy")


def test_settings_changes_keep_the_base():
    base = JudgeSettings(mode=Mode.verdict, both_orders=True, max_new_tokens=64)
    changed = JudgeSettings.of(base, mode="critique")
    assert changed.mode is Mode.critique and changed.both_orders and changed.max_new_tokens == 64
    assert base.mode is Mode.verdict  # frozen: a change is a new object
    assert JudgeSettings.of().run_identity() == {"mode": "critique", "both_orders": False,
                                                  "max_new_tokens": DEFAULTS.max_new_tokens,
                                                  "repetition_penalty": DEFAULTS.repetition_penalty}
    assert "max_new_tokens" not in changed.model_copy(update={"mode": Mode.verdict}).run_identity()



def test_judge_refuses_bad_settings_before_loading_a_model():
    with pytest.raises(SettingsError, match="retries"):
        Judge("/nonexistent/model.gguf", retries=-1)
    with pytest.raises(SettingsError, match="max_new_tokens"):
        Judge("/nonexistent/model.gguf", JudgeSettings(mode=Mode.verdict), max_new_tokens=0)


@pytest.mark.parametrize(("option", "value", "shown"), [
    ("--max-new-tokens", "-5", "--max-new-tokens: -5 is out of range (allowed: from 1 to 32768)"),
    ("--repetition-penalty", "-1", "--repetition-penalty: -1.0 is out of range (allowed: from 1.0 to 2.0)"),
    ("--retries", "-3", "--retries: -3 is out of range (allowed: from 0 to 10)"),
])
def test_judge_cli_out_of_range_is_a_usage_error(tmp_path, monkeypatch, option, value, shown):
    monkeypatch.setattr(cli.console, "width", 1000)
    out = tmp_path / "o.jsonl"
    # a model spec that cannot load: the settings are refused first
    result = CliRunner().invoke(cli.app, ["judge", str(QUICKSTART), "-m", "/nonexistent/m.gguf", "-o", str(out),
                                          option, value])
    assert result.exit_code == 2, result.output
    assert shown in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_bench_cli_out_of_range_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cli.console, "width", 1000)
    result = CliRunner().invoke(cli.app, ["bench", "-j", "/nonexistent/m.gguf", "--max-new-tokens", "0",
                                          "-o", str(tmp_path / "b")])
    assert result.exit_code == 2, result.output
    assert "--max-new-tokens: 0 is out of range (allowed: from 1 to 32768)" in result.output
    assert not (tmp_path / "b").exists()


def test_answer_format_is_built_once_and_parsed_back():
    text = answer_text("B", "  Response B is correct.  ")
    assert text == f"{REASONING_TAG} Response B is correct.\n\n{RESULT_TAG} B"
    parsed = parse_output(Task.pairwise, text)
    assert parsed.result == "B" and parsed.strict and parsed.critique == "Response B is correct."
    assert answer_text("4") == f"{RESULT_TAG} 4"
    assert answer_text(None, " as generated", verbatim=True) == f"{REASONING_TAG} as generated\n\n{RESULT_TAG}"
    assert output_format(Task.classification, Mode.verdict).endswith(answer_text("<Yes or No>"))
    assert RESULT_STOPS[0] == RESULT_TAG


def test_labels_opposite_and_swap():
    assert opposite(Task.pairwise, "A") == "B" and opposite(Task.classification, "No") == "Yes"
    assert [swap_label(x) for x in ("A", "B", "tie", None)] == ["B", "A", "tie", None]
    with pytest.raises(ValueError, match="no opposite"):
        opposite(Task.absolute, "3")


def test_a_recipe_sets_every_judge_setting_of_its_bench_stage(tmp_path):
    import yaml

    from gavel.train.recipe import load_recipe

    source = Path(__file__).resolve().parents[1] / "recipes" / "tiny-cpu.yaml"
    recipe = load_recipe(source)
    assert recipe.bench.judge.both_orders and recipe.bench.judge.max_new_tokens == DEFAULTS.max_new_tokens
    data = {k: v for k, v in yaml.safe_load(source.read_text()).items() if k != "curate"}  # paths relative to recipes/
    edited = tmp_path / "r.yaml"
    for judge in ({"repetition_penalty": 1.3, "retries": 2}, {"repetition_penalty": -1}):
        edited.write_text(yaml.safe_dump(data | {"bench": data["bench"] | {"judge": judge}}))
        if judge["repetition_penalty"] > 0:
            assert load_recipe(edited).bench.judge.repetition_penalty == 1.3
            continue
        with pytest.raises(ValueError, match="repetition_penalty"):
            load_recipe(edited)
