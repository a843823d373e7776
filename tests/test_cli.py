"""`gavel judge` end to end on the embedded model (llama.cpp), through typer's CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gavel import cli

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.jsonl"

pytestmark = pytest.mark.model




def _lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _records(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_help():
    result = CliRunner().invoke(cli.app, ["judge", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--mode", "--template", "--both-orders", "--output", "--max-new-tokens", "--retries"):
        assert option in result.output
    top = CliRunner().invoke(cli.app, ["--help"])
    assert top.exit_code == 0 and "judge" in top.output


def test_quickstart_verdict_and_resume(gavel, tmp_path):
    out = tmp_path / "quick.jsonl"
    result = gavel("judge", QUICKSTART, "--mode", "verdict", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    rows = _lines(out)
    expected_ids = [json.loads(line)["id"] for line in QUICKSTART.read_text().splitlines()]
    assert [r["id"] for r in rows] == expected_ids
    for row in rows:
        assert row["status"] == "logits" and row["mode"] == "verdict"
        assert row["result"] == max(row["probabilities"], key=row["probabilities"].get)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert "label" in row  # the input's gold label passes through
    assert not (tmp_path / "quick.errors.jsonl").exists()

    again = gavel("judge", QUICKSTART, "--mode", "verdict", "-o", out, "-q")
    assert again.exit_code == 0, again.output
    assert re.search(r"already done \(skipped\)\s*│\s*6", again.output)
    assert len(_lines(out)) == 6


def test_bad_row_exit_1_and_good_rows_kept(gavel, tmp_path):
    good = [json.loads(line) for line in QUICKSTART.read_text().splitlines()][2:4]  # two absolute records
    bad = {"id": "broken", "task": "absolute", "instruction": "Say hello."}  # no response
    source = _records(tmp_path / "mixed.jsonl", [good[0], bad, good[1]])
    out = tmp_path / "mixed.out.jsonl"
    result = gavel("judge", source, "--mode", "verdict", "-o", out, "-q")
    assert result.exit_code == 1, result.output
    assert f"{source}, row 2, field 'response': required for task 'absolute'" in result.output
    assert [r["id"] for r in _lines(out)] == [good[0]["id"], good[1]["id"]]
    errors = _lines(tmp_path / "mixed.out.errors.jsonl")
    assert [(e["row"], e["id"], e["field"]) for e in errors] == [(2, "broken", "response")]


def test_missing_input_exit_2(gavel, tmp_path):
    result = gavel("judge", tmp_path / "nope.jsonl", "-o", tmp_path / "o.jsonl")
    assert result.exit_code == 2
    assert "no such file" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_an_empty_csv_or_a_header_alone_names_the_file(gavel, tmp_path):
    for name, text in (("empty.csv", ""), ("header.csv", "task,instruction,response\n")):
        source = tmp_path / name
        source.write_text(text)
        result = gavel("judge", source, "-o", tmp_path / "o.jsonl")
        assert result.exit_code == 2 and f"error: {source}: holds no records" in result.output, result.output
        assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "sloppy"], "sloppy"),
        (["-t", "/nonexistent/template.txt"], "no such template"),
        (["-m", "not a model spec"], "model spec"),
    ],
)
def test_usage_errors_exit_2(gavel, tmp_path, args, message):
    result = gavel("judge", QUICKSTART, "-o", tmp_path / "o.jsonl", "-q", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_oversized_input_fails_that_row_only(gavel, tmp_path):
    rows = [json.loads(line) for line in QUICKSTART.read_text().splitlines()]
    huge = {"id": "huge", "task": "absolute", "instruction": "Summarise this text.",
            "response": " ".join(f"word{i % 97}" for i in range(40000))}
    source = _records(tmp_path / "big.jsonl", [rows[0], huge, rows[4]])
    out = tmp_path / "big.out.jsonl"
    result = gavel("judge", source, "--mode", "verdict", "-o", out, "-q")
    assert result.exit_code == 1, result.output
    match = re.search(rf"{re.escape(str(source))}, row 2, field 'response': input is (\d+) tokens; "
                      r"the model's context allows (\d+)", result.output)
    assert match, result.output
    assert int(match.group(1)) > 40000 and int(match.group(2)) < 8192
    assert [r["id"] for r in _lines(out)] == [rows[0]["id"], rows[4]["id"]]
    errors = _lines(tmp_path / "big.out.errors.jsonl")
    assert [(e["id"], e["field"]) for e in errors] == [("huge", "response")]


def test_critique_both_orders(gavel, tmp_path):
    rows = [json.loads(line) for line in QUICKSTART.read_text().splitlines()]
    source = _records(tmp_path / "pair.jsonl", [rows[0]])
    out = tmp_path / "pair.out.jsonl"
    result = gavel("judge", source, "--both-orders", "--max-new-tokens", "24", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    (row,) = _lines(out)
    assert row["mode"] == "critique" and row["result"] in ("A", "B", "tie")
    assert len(row["result_by_order"]) == 2
    assert row["orders_agree"] == (row["result_by_order"][0] == row["result_by_order"][1] is not None)
    assert row["raw_output"].count("**Reasoning:**") == 2
    assert "=== swapped order ===" in row["raw_output"]
