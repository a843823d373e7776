"""End to end: a tiny config on fixture data with the real embedded SmolLM2-135M as teacher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import yaml
from typer.testing import CliRunner

from gavel.backends.threads import THREADS_ENV
from gavel.cli import app
from gavel.curate.config import load_config
from gavel.curate.pipeline import OutputFrozen, run
from gavel.labels import answer_text

FIXTURES = Path(__file__).parent / "fixtures" / "curate"
COLUMNS = {"prompt", "chosen", "rejected", "id", "source", "task", "kind", "mode", "chosen_label", "rejected_label",
           "swapped"}

pytestmark = pytest.mark.model  # every test here reads the run of the tiny_run fixture (the real embedded teacher)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("curate")
    config = {
        "seed": 1,
        "data_root": str(FIXTURES / "train"),
        "teacher": {"model": "smollm2", "max_new_tokens": 24},  # the embedded SmolLM2-135M (llama.cpp)
        "mix": {"total": 8, "critique_ratio": 0.5, "max_tokens": 1024, "max_critique_tokens": 60},
        "decontam": {"data_root": str(FIXTURES / "benchmarks")},
        "sources": {"shepherd": {}, "mr-gsm8k-pairs": {}, "prmbench": {}},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp / "out"
    report = run(load_config(path), out)
    return out, report


def test_export_follows_the_contract(tiny_run):
    out, report = tiny_run
    assert (out / "READY").exists() and (out / "card.md").exists()
    rows = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    dataset = datasets.load_from_disk(str(out / "dataset"))
    assert len(dataset) == len(rows) == len(report.rows) > 0
    assert set(dataset.column_names) == COLUMNS
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
        assert row["chosen_label"] != row["rejected_label"]
        if row["kind"] == "verdict":
            assert row["chosen"][0]["content"] == answer_text(row["chosen_label"])
            assert row["mode"] == "verdict"
        else:
            assert row["chosen"][0]["content"].startswith("**Reasoning:** ")
            assert row["rejected"][0]["content"].endswith(f"**Result:** {row['rejected_label']}")
    # pairwise items come in both orders with flipped labels
    swapped = [r for r in rows if r["swapped"]]
    assert swapped and all(r["id"].removesuffix(":swapped") in {x["id"] for x in rows} for r in swapped)


def test_card_reports_stages_consistency_and_decontamination(tiny_run):
    out, _ = tiny_run
    card = json.loads((out / "card.json").read_text())
    names = [s["name"] for s in card["stages"]]
    assert names == ["load", "dedup", "decontam", "lengths", "select", "teacher", "consistency+mix", "export"]
    assert card["row_errors"] == {"shepherd": 1, "mr-gsm8k-pairs": 1}  # the fixtures' malformed rows
    # the Shepherd item that MetaCritique evaluates (fixture benchmark tree) is removed and counted
    assert card["decontamination"]["removed"] == {"metacritique": {"shepherd": 1}}
    teacher = next(s for s in card["stages"] if s["name"] == "teacher")
    checked = sum(v["checked"] for per in card["consistency"]["per_source"].values() for v in per.values())
    assert teacher["in"]["calls"] == checked > 0
    assert len(card["examples"]) == 3
    assert "Decontamination" in (out / "card.md").read_text()


def test_rerun_refuses_a_finished_folder_and_reuses_the_teacher_cache(tiny_run, tmp_path):
    out, _ = tiny_run
    config_path = next(out.parent.glob("*.yaml"))
    with pytest.raises(OutputFrozen):
        run(load_config(config_path), out)
    # a new output folder with the old work dir: every teacher call is already cached
    config = yaml.safe_load(config_path.read_text()) | {"work_dir": str(out / "work")}
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(config))
    before = (out / "work" / "teacher.jsonl").read_text()
    again = run(load_config(path), tmp_path / "again")
    assert (out / "work" / "teacher.jsonl").read_text() == before
    assert [r["id"] for r in again.rows] == [r["id"] for r in tiny_run[1].rows]


def test_cli_only_source_and_bad_config(tiny_run, tmp_path):
    out, _ = tiny_run
    config_path = next(out.parent.glob("*.yaml"))
    config = yaml.safe_load(config_path.read_text()) | {"work_dir": str(out / "work")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["curate", str(path), "--only-source", "prmbench", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "o" / "pairs.jsonl").read_text().splitlines()]
    assert rows and {r["source"] for r in rows} == {"prmbench"}
    listed = CliRunner().invoke(app, ["curate", "--list"])
    assert listed.exit_code == 0 and "prometheus-feedback" in listed.output and "shepherd" in listed.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {prmbench: {wieght: 2}}\n")
    result = CliRunner().invoke(app, ["curate", str(bad), "-o", str(tmp_path / "b")])
    assert result.exit_code == 2 and "sources.prmbench.wieght: unknown key" in result.output


def test_ctrl_c_in_the_teacher_stage_exits_130_saying_so_and_the_rerun_resumes(tiny_run, tmp_path):
    config_path = next(tiny_run[0].parent.glob("*.yaml"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gavel.cli", "curate", str(config_path), "-o", str(out)]
    env = {**os.environ, THREADS_ENV: "1", "COLUMNS": "300"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    teacher = out / "work" / "teacher.jsonl"
    deadline = time.monotonic() + 120
    while not (teacher.exists() and teacher.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    assert "interrupted:" in output and "run the same command again to resume" in output
    assert "Traceback" not in output and not (out / "READY").exists()
    kept = teacher.read_text().splitlines()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "READY").exists() and teacher.read_text().splitlines()[:len(kept)] == kept
