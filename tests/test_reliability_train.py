"""Issue 17, the curate and train paths, tried as a careless user would: each case on real files, the real
embedded model (its tokenizer for curate, its weights for training) and real training runs of a step on 2 pairs.

Numbers in test names are the issue's cases. A usage error is one line `error: ...`, exit 2, before any stage
runs or any model loads.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from conftest import one_error_line
from typer.testing import CliRunner

from gavel import cli
from gavel.layout import DATASET, MARKER, PAIRS, READY

FIXTURES = Path(__file__).parent / "fixtures"
CURATE_DATA = FIXTURES / "curate" / "train"
PAIRS_FIXTURE = FIXTURES / "train" / "pairs.jsonl"




def curate_config(path: Path, data_root: Path = CURATE_DATA, **changes) -> Path:
    """A verdict-only curate config (no teacher call) on the fixture sources; `changes` replace top-level keys."""
    config = {"seed": 1, "data_root": str(data_root), "decontam": {"enabled": False},
              "mix": {"critique_ratio": 0.0, "max_tokens": 1024},
              "sources": {"shepherd": {}, "offsetbias": {}}} | changes
    path.write_text(yaml.safe_dump(config))
    return path


def no_stage_ran(output: str) -> bool:
    return "curate load" not in output


# -- 2. a bad source row never stops curation ----------------------------------------------------------
def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.model
def test_2_bad_source_rows_are_row_errors_and_the_mix_is_made(tmp_path, gavel):
    root = tmp_path / "train"
    shutil.copytree(CURATE_DATA, root)
    data = root / "shepherd" / "data"
    rows, raw = _lines(data / "human_data_for_model.jsonl"), _lines(data / "human_data_raw.jsonl")
    rows[1]["feedback"] = ["a list", "not a string"]  # .strip() on a list
    raw_third = next(r for r in raw if r["id"] == rows[2]["id"])
    raw_third["metadata"] = "a string, not a mapping"  # .get() on a string
    _write_lines(data / "human_data_for_model.jsonl", rows)
    _write_lines(data / "human_data_raw.jsonl", raw)
    offsetbias = root / "hub" / "offsetbias.jsonl"
    _write_lines(offsetbias, [*_lines(offsetbias), {"instruction": "1+1?", "output_1": "2", "output_2": "3",
                                                    "label": 3}])  # no usable gold label
    out = tmp_path / "out"
    result = gavel("curate", curate_config(tmp_path / "c.yaml", root), "-o", out)
    assert result.exit_code == 0, result.output
    assert (out / READY).exists() and _lines(out / PAIRS)
    errors = _lines(out / "work" / "row_errors.jsonl")
    by_field = {(e["source_name"], e["field"]): e for e in errors}
    assert by_field[("shepherd", "feedback")]["row"] == 2
    assert by_field[("shepherd", "metadata")]["source"].endswith("human_data_raw.jsonl")
    assert by_field[("offsetbias", "label")]["row"] == 2
    assert "1 or 2" in by_field[("offsetbias", "label")]["message"]
    card = json.loads((out / "card.json").read_text())
    assert card["row_errors"] == {"shepherd": 3, "offsetbias": 1}  # the fixture's own bad Shepherd row, and ours


def test_2_a_record_without_a_gold_label_never_leaves_the_load_stage():
    from gavel.curate.sources import make_item
    from gavel.judge.records import RowError

    error = make_item("x", "f.jsonl", 4, id="a", task="pairwise", instruction="q", response_a="a",
                      response_b="b", label=None)
    assert isinstance(error, RowError) and error.field == "label" and error.row == 4


# -- 3. one-line usage errors before any stage ---------------------------------------------------------
def test_3_curate_outputs_that_cannot_be_written(tmp_path, gavel):
    config = curate_config(tmp_path / "c.yaml")
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    cases = {a_file: "is a file, not a folder", a_file / "deeper" / "out": "is a file, not a folder",
             Path("/proc/sys/gavel-curate-out"): "cannot be written: permission denied"}
    for out, message in cases.items():
        result = gavel("curate", config, "-o", out)
        assert result.exit_code == 2, (out, result.output)
        assert message in one_error_line(result.output) and no_stage_ran(result.output)
    assert a_file.read_text() == "x"


def test_3_curate_data_root_typo_and_missing_teacher(tmp_path, gavel):
    typo = gavel("curate", curate_config(tmp_path / "c.yaml", tmp_path / "no-such-root"), "-o", tmp_path / "o1")
    assert typo.exit_code == 2 and "data_root:" in one_error_line(typo.output) and "is not a folder" in typo.output
    teacher = {"model": str(tmp_path / "missing.gguf")}
    missing = gavel("curate", curate_config(tmp_path / "t.yaml", mix={"critique_ratio": 0.5}, teacher=teacher),
                    "-o", tmp_path / "o2")
    assert missing.exit_code == 2 and no_stage_ran(missing.output)
    assert "teacher.model" in one_error_line(missing.output) and "no such GGUF file" in missing.output
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_3_curate_teacher_server_down_is_found_first(tmp_path, gavel):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    teacher = {"model": f"openai:teacher@http://127.0.0.1:{port}/v1"}
    result = gavel("curate", curate_config(tmp_path / "c.yaml", mix={"critique_ratio": 0.5}, teacher=teacher),
                   "-o", tmp_path / "out")
    assert result.exit_code == 2 and no_stage_ran(result.output)
    assert f"no server answers at http://127.0.0.1:{port}/v1" in one_error_line(result.output)


def train_config(path: Path, **changes) -> Path:
    """One optimizer step on 2 of the fixture's pairs, no export."""
    config = {"data": str(PAIRS_FIXTURE), "limit": 2, "batch_size": 1, "grad_accum": 1, "max_steps": 1,
              "save_steps": 1, "max_length": 512, "warmup_ratio": 0.0, "scheduler": "constant", "export": False,
              "threads": 2} | changes
    path.write_text(yaml.safe_dump(config))
    return path


def test_3_train_usage_errors_before_the_model_loads(tmp_path, gavel, monkeypatch):
    import gavel.train.trainer as trainer

    monkeypatch.setattr(trainer, "build_trainer", lambda *a, **k: pytest.fail("the model must not load"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    good = train_config(tmp_path / "t.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\nlimit: 2\n")
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    cases = [
        ((broken,), f"{broken}: not valid YAML (line 2, column 6): expected ',' or ']'"),
        ((good, "-o", a_file), "is a file, not a folder"),
        ((good, "-o", a_file / "run"), "is a file, not a folder"),
        ((train_config(tmp_path / "b1.yaml", base=str(tmp_path / "no-model")),), "no such model folder"),
        ((train_config(tmp_path / "b2.yaml", base="nosuch-org/nosuch-model"),),
         "base nosuch-org/nosuch-model: not a local folder and the hub is unreachable"),
    ]
    for args, message in cases:
        result = gavel("train", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in one_error_line(result.output), result.output
    assert a_file.read_text() == "x"


def test_3_recipe_whose_curate_config_is_missing(tmp_path, gavel):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "r", "curate": {"config": "nowhere.yaml"},
                                      "train": {"data": str(PAIRS_FIXTURE)}}))
    result = gavel("recipe", recipe, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert f"{tmp_path / 'nowhere.yaml'}: no such config file" in one_error_line(result.output)
    assert not (tmp_path / "out").exists()


def _no_stage_may_run(monkeypatch) -> None:
    """Curate and train fail the test if they start."""
    import gavel.curate.pipeline as pipeline
    import gavel.train.trainer as trainer

    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("curate must not run"))
    monkeypatch.setattr(trainer, "run", lambda *a, **k: pytest.fail("train must not run"))


def _recipe(path: Path, **bench) -> Path:
    path.write_text(yaml.safe_dump({"name": "r", "curate": {"config": str(curate_config(path.parent / "c.yaml"))},
                                    "train": {"data": str(PAIRS_FIXTURE)}, "bench": bench}))
    return path


def test_3_recipe_with_an_unknown_or_misfiled_benchmark(tmp_path, gavel, monkeypatch):
    _no_stage_may_run(monkeypatch)
    cases = {"pairwise": ["llmbar-natural", "nosuch-bench"], "critique": ["nosuch-critique"]}
    unknown = _recipe(tmp_path / "unknown.yaml", **cases)
    result = gavel("recipe", unknown, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    line = one_error_line(result.output)
    assert line.startswith(f"error: {unknown}: bench.pairwise: unknown benchmark 'nosuch-bench'; known: ")
    assert "llmbar-natural" in line
    assert f"{unknown}: bench.critique: unknown benchmark 'nosuch-critique'" in result.output
    misfiled = _recipe(tmp_path / "misfiled.yaml", pairwise=["mt-bench"], absolute=["hhh"])
    result = gavel("recipe", misfiled, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert one_error_line(result.output) == (f"error: {misfiled}: bench.pairwise: 'mt-bench' is a benchmark of task "
                                        "absolute (list it under bench.absolute)")
    assert f"{misfiled}: bench.absolute: 'hhh' is a benchmark of task pairwise (list it under bench.pairwise)" \
        in result.output
    assert not (tmp_path / "out").exists()


def test_3_recipe_whose_benchmarks_have_no_data(tmp_path, gavel, monkeypatch):
    """A fresh clone (no ../shared, no $GAVEL_DATA_ROOT), or a data root without the files: what `gavel bench`
    says, before any stage."""
    from gavel import data
    from gavel.train.recipe import load_recipe

    _no_stage_may_run(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(data.DATA_ROOT_ENV, raising=False)
    (tmp_path / "clone" / "src" / "gavel").mkdir(parents=True)
    monkeypatch.setattr(data, "__file__", str(tmp_path / "clone" / "src" / "gavel" / "data.py"))
    monkeypatch.chdir(tmp_path / "clone")
    (tmp_path / "empty").mkdir()
    for name, root in {"no-root": None, "empty-root": "empty"}.items():
        recipe = _recipe(tmp_path / f"{name}.yaml", pairwise=["llmbar-natural"], critique=["mt-bench"],
                         data_root=root)
        result = gavel("recipe", recipe, "-o", tmp_path / "out")
        assert result.exit_code == 2, (name, result.output)
        assert one_error_line(result.output) == "error: no benchmark could be loaded"
    assert load_recipe(tmp_path / "empty-root.yaml").bench.data_root == tmp_path / "empty"  # from its folder
    assert not (tmp_path / "out").exists()


def _finished_curate_output(folder: Path, rows: list[dict]) -> Path:
    """A curate output as gavel curate leaves it (marker, pairs, saved dataset, READY)."""
    import datasets

    folder.mkdir()
    (folder / MARKER).write_text("{}")
    _write_lines(folder / PAIRS, rows)
    (datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({})).save_to_disk(
        str(folder / DATASET))
    (folder / READY).touch()
    return folder


def test_3_and_11_train_on_bad_pairs_names_file_and_row(tmp_path, gavel):
    good = train_config(tmp_path / "t.yaml")
    empty_mix = _finished_curate_output(tmp_path / "empty-mix", [])
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / MARKER).write_text("{}")
    (tmp_path / "empty-folder").mkdir()
    empty_file = tmp_path / "empty.jsonl"
    empty_file.write_text("")
    torn = tmp_path / "torn.jsonl"
    torn.write_text(PAIRS_FIXTURE.read_text().splitlines()[0] + "\n" + '{"prompt": [\n')
    cases = {
        empty_mix: f"{empty_mix / DATASET}: holds no pairs",
        unfinished: "an unfinished gavel curate output (no READY)",
        tmp_path / "empty-folder": "neither a finished gavel curate output, a saved dataset, nor a pairs .jsonl",
        empty_file: f"{empty_file}: holds no pairs",
        torn: f"{torn}, row 2: invalid JSON",
    }
    for data, message in cases.items():
        result = gavel("train", good, "--data", data, "-o", tmp_path / "run")
        assert result.exit_code == 2, (data, result.output)
        assert message in one_error_line(result.output), result.output
    assert not (tmp_path / "run").exists()


# -- 8. numeric options: usage errors with their range ---------------------------------------------------
def test_8_and_11_train_numeric_options_name_the_option_not_the_file(tmp_path, gavel):
    config = train_config(tmp_path / "t.yaml")
    for option, value in (("--max-steps", 0), ("--max-steps", -5), ("--limit", 0)):
        result = gavel("train", config, option, value, "-o", tmp_path / "run")
        assert result.exit_code == 2, result.output
        line = one_error_line(result.output)
        assert line == f"error: {option}: Input should be greater than or equal to 1 (got {value})", line
        assert str(config) not in line
    in_file = gavel("train", train_config(tmp_path / "bad.yaml", max_steps=0))
    assert f"{tmp_path / 'bad.yaml'}: max_steps: Input should be greater than or equal to 1" in one_error_line(
        in_file.output)


# -- 9 and 10: the curate output folder ----------------------------------------------------------------
def test_9_curate_refuses_a_folder_it_did_not_write(tmp_path, gavel):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "pairs.jsonl").write_text("my own pairs\n")
    (out / "card.md").write_text("my notes\n")
    result = gavel("curate", curate_config(tmp_path / "c.yaml"), "-o", out)
    assert result.exit_code == 2 and no_stage_ran(result.output)
    assert "gavel curate did not write" in one_error_line(result.output)
    assert (out / "pairs.jsonl").read_text() == "my own pairs\n" and (out / "card.md").read_text() == "my notes\n"
    assert sorted(p.name for p in out.iterdir()) == ["card.md", "pairs.jsonl"]


@pytest.mark.model
def test_10_an_empty_mix_is_an_error_naming_the_stage_and_writes_no_ready(tmp_path, gavel):
    config = curate_config(tmp_path / "c.yaml", sources={"shepherd": {"cap": 0}, "offsetbias": {"cap": 0}})
    out = tmp_path / "out"
    result = gavel("curate", config, "-o", out)
    assert result.exit_code == 1, result.output
    assert "the select stage left no items" in one_error_line(result.output)
    assert not (out / READY).exists() and not (out / PAIRS).exists()
    assert (out / MARKER).exists()  # gavel's folder: a rerun with another config may use it
    again = gavel("curate", curate_config(tmp_path / "c2.yaml"), "-o", out)
    assert again.exit_code == 0, again.output
    assert (out / READY).exists()


# -- 4 and 5: a finished training run is finished; its data is part of its identity ----------------------
@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory) -> tuple[Path, Path]:
    """`gavel train` run once: one step on 2 pairs (the real embedded model, LoRA)."""
    tmp = tmp_path_factory.mktemp("trained")
    config, out = train_config(tmp / "t.yaml"), tmp / "run"
    result = CliRunner().invoke(cli.app, ["train", str(config), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return config, out


@pytest.mark.model
def test_4_rerun_of_a_finished_training_does_nothing_or_is_refused(one_step_run, gavel):
    config, out = one_step_run
    adapter = out / "adapter" / "adapter_model.safetensors"
    before = adapter.stat().st_mtime_ns, sorted(p.name for p in (out / "checkpoints").iterdir())
    same = gavel("train", config, "-o", out)
    assert same.exit_code == 0 and "already trained with these settings and data" in same.output
    other = gavel("train", config, "-o", out, "--max-steps", 2)
    assert other.exit_code == 2
    assert "max_steps: 1 then, 2 now" in one_error_line(other.output) and "--force" not in other.output
    assert (adapter.stat().st_mtime_ns, sorted(p.name for p in (out / "checkpoints").iterdir())) == before
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 1


@pytest.mark.model
def test_5_other_data_is_refused_naming_it_and_the_same_data_elsewhere_is_not(one_step_run, gavel, tmp_path):
    config, out = one_step_run
    rows = PAIRS_FIXTURE.read_text().splitlines()
    edited = json.loads(rows[0])
    edited["chosen"][0]["content"] += " (edited)"
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join([json.dumps(edited), *rows[1:]]) + "\n")
    refused = gavel("train", config, "-o", out, "--data", other)
    line = one_error_line(refused.output)
    assert refused.exit_code == 2 and f"then, {other} (" in line and "sha256" in line
    stored = json.loads((out / "train_run.json").read_text())["data"]
    assert stored["path"] == str(PAIRS_FIXTURE) and len(stored["sha256"]) == 64
    copy = tmp_path / "copy.jsonl"
    shutil.copy(PAIRS_FIXTURE, copy)  # the same pairs elsewhere: the same data
    assert gavel("train", config, "-o", out, "--data", copy).exit_code == 0


def test_4_train_refuses_a_folder_it_did_not_write(tmp_path, gavel):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.jsonl").write_text("mine\n")
    result = gavel("train", train_config(tmp_path / "t.yaml"), "-o", out)
    assert result.exit_code == 2 and "gavel train did not write" in one_error_line(result.output)
    assert (out / "metrics.jsonl").read_text() == "mine\n"


# -- 11. messages ----------------------------------------------------------------------------------------
@pytest.mark.model
def test_11_judge_accepts_dicts_and_names_a_bad_one():
    from gavel.judge.engine import Judge

    judge = Judge("smollm2", mode="verdict")
    try:
        [result] = judge.judge([{"task": "classification", "instruction": "Is 2+2=4?", "response": "Yes."}])
        assert result.result in ("Yes", "No") and result.id == "1"
        with pytest.raises(ValueError, match=r"records, row 2, field 'response': required for task 'absolute'"):
            judge.judge([{"task": "absolute", "instruction": "a", "response": "b"},
                         {"task": "absolute", "instruction": "a"}])
        with pytest.raises(TypeError, match="row 1: expected a JudgeRecord or a dict"):
            judge.judge(["not a record"])
    finally:
        judge.backend.close()


def test_11_curate_teacher_cache_conflict_does_not_advise_a_missing_force(tmp_path):
    from gavel.io import OutputError
    from gavel.judge.runner import SettingsChanged, open_output

    out = tmp_path / "teacher.jsonl"
    writer, _, _ = open_output(out, {"model": "a"})
    writer.write({"id": "x"})
    writer.close()
    with pytest.raises(SettingsChanged) as caught:
        open_output(out, {"model": "b"})
    # curate and bench have no --force; `gavel judge` adds its own (test_reliability.py::test_3_cli_refuses...)
    assert isinstance(caught.value, OutputError) and "--force" not in str(caught.value)


def test_3_one_config_loader_gives_one_line_per_bad_field(tmp_path):
    from gavel.config import ConfigError, load_yaml_model
    from gavel.curate.config import CurateConfig
    from gavel.train.recipe import load_recipe

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"sources": {"shepherd": {"cap": -1}}, "mix": {"critique_ratio": 2},
                                    "sede": 1}))
    with pytest.raises(ConfigError) as caught:
        load_yaml_model(path, CurateConfig)
    lines = str(caught.value).splitlines()
    assert lines == [f"{path}: sources.shepherd.cap: Input should be greater than or equal to 0 (got -1)",
                     f"{path}: mix.critique_ratio: Input should be less than or equal to 1 (got 2)",
                     f"{path}: sede: unknown key"]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ntrain: {data: pairs.jsonl, beta: -1}\n")
    with pytest.raises(ConfigError, match=rf"^{recipe}: train\.beta: Input should be greater than 0 \(got -1\)$"):
        load_recipe(recipe)
