"""gavel train on the real embedded model: tokenisation parity with inference, loss parts, kill + resume, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gavel.backends.local import continuation, label_token_ids
from gavel.labels import REASONING_TAG, RESULT_TAG
from gavel.train.config import TrainConfig, load_train_config
from gavel.train.trainer import load_pairs

FIXTURE = Path(__file__).parent / "fixtures" / "train" / "pairs.jsonl"
REPO = Path(__file__).resolve().parents[1]


def tiny_config(out: Path, **changes) -> TrainConfig:
    base = dict(data=FIXTURE, output_dir=out, limit=4, batch_size=1, grad_accum=1, max_steps=3, save_steps=1,
                max_length=512, learning_rate=3e-4, warmup_ratio=0.0, scheduler="constant", export=False, threads=2)
    return TrainConfig(**(base | changes))


# -- config and data (no model) ---------------------------------------------------------------------
def test_tiny_recipe_train_section_validates():
    config = load_train_config(REPO / "recipes" / "tiny-cpu.yaml")
    assert config.method == "lora" and config.nll_alpha == 1.0 and not config.bf16
    assert config.data == (REPO / "runs" / "curate" / "cpu").resolve()


def test_command_line_overrides_are_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_train_config(REPO / "recipes" / "tiny-cpu.yaml", output_dir=Path("out"), max_steps=2)
    assert config.output_dir == tmp_path / "out" and config.max_steps == 2


def test_unknown_config_key_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": "x", "learning_rat": 1e-4}))
    with pytest.raises(ValueError, match=r"(?s)bad\.yaml.*learning_rat"):
        load_train_config(bad)


def test_bad_pairs_name_row_and_field(tmp_path):
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()][:3]
    rows[2]["rejected"] = "**Result:** B"  # a string, not a message list
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"pairs\.jsonl, row 3, field 'rejected'"):  # rows count from 1
        load_pairs(path)
    with pytest.raises(FileNotFoundError, match="no such pairs file"):
        load_pairs(tmp_path / "missing")


# -- the real model ---------------------------------------------------------------------------------
@pytest.mark.model
def test_trained_tokens_equal_what_the_backends_feed(tmp_path):
    """TRL's prompt ids are the inference prompt; the answer continues it with the verdict token right after
    **Result:** (verdict mode) or after **Reasoning:** <critique> **Result:** (critique mode)."""
    from gavel.backends.embedded import embedded_gguf
    from gavel.backends.llamacpp import LlamaCppBackend
    from gavel.train.trainer import build_trainer

    trainer = build_trainer(tiny_config(tmp_path, limit=None))
    tokenizer = trainer.processing_class
    llama = LlamaCppBackend(embedded_gguf(), n_ctx=2048)
    labels = label_token_ids(("A", "B"), lambda s: tokenizer.encode(s, add_special_tokens=False))
    seen_modes = set()
    for row in trainer.train_dataset:
        messages = row["prompt"]
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert llama.render(messages) == rendered  # both backends render the same text
        prompt_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]  # the transformers backend
        assert row["prompt_ids"] == prompt_ids
        assert llama._encode(rendered) == prompt_ids  # llama.cpp tokenises it identically
        critique = None
        answer = row["chosen"][0]["content"]
        if answer.startswith(REASONING_TAG):
            critique = answer[len(REASONING_TAG):answer.index(RESULT_TAG)]
        tail = continuation(critique or "", row["mode"] == "critique")
        fed = tokenizer(rendered + tail, add_special_tokens=False)["input_ids"]  # what the verdict is read after
        trained = row["prompt_ids"] + row["chosen_ids"]
        assert trained[:len(fed)] == fed
        assert trained[len(fed)] in labels[row["chosen_label"]]
        seen_modes.add(row["mode"])
    assert seen_modes == {"verdict", "critique"}
    llama.close()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """Three steps on the fixture, killed (SIGKILL) after the first checkpoint and resumed by `gavel train`."""
    out = tmp_path_factory.mktemp("train") / "run"  # a new folder: gavel train refuses one it did not write
    config = tiny_config(out)
    path = out.parent / "config.yaml"
    path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "gavel.cli", "train", str(path)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "checkpoints" / "checkpoint-1" / "trainer_state.json"
    deadline = time.monotonic() + 600
    while not state.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert state.exists(), "the first run wrote no checkpoint"
    assert not (out / "adapter").exists(), "killed too late: the first run finished"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.model
def test_kill_and_resume_finishes_with_metrics_and_plot(trained_run):
    summary = json.loads((trained_run / "train_summary.json").read_text())
    assert summary["steps"] == 3
    assert summary["resumed_from"] and summary["resumed_from"].rsplit("-", 1)[-1] in ("1", "2")
    assert (trained_run / "adapter" / "adapter_model.safetensors").exists()
    assert (trained_run / "losses.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    assert {r["step"] for r in logged} == {1, 2, 3}
    for row in logged:  # the logged parts add up to the loss TRL optimises
        assert row["loss"] == pytest.approx(row["loss/dpo"] + 1.0 * row["loss/nll"], rel=1e-3)
        assert "rewards/accuracies" in row and "rewards/margins" in row
    assert logged[0]["loss/dpo"] == pytest.approx(0.6931, abs=1e-3)  # step 1: policy == reference, ln 2
    history = json.loads((trained_run / "log_history.json").read_text())
    assert any("train_runtime" in h for h in history)


@pytest.fixture(scope="module")
def exported_run(trained_run):
    """The killed-and-resumed run exported once: merged folder, adapter GGUF and Modelfile."""
    from gavel.backends.embedded import embedded_gguf, embedded_hf_dir
    from gavel.train.export import export

    return export(trained_run, embedded_hf_dir(), embedded_gguf(), "lora")


def p_a_on_fixture_verdicts(backend) -> list[float]:
    """P(A) from `backend` on the fixture's first four verdict-only pairs."""
    from gavel.backends.base import Request

    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if '"verdict"' in line][:4]
    requests = [Request(messages=r["prompt"], labels=("A", "B"), critique=False) for r in rows]
    with backend:
        return [reply.label_probs["A"] for reply in backend.run(requests)]


@pytest.mark.model
def test_gguf_adapter_judges_like_the_peft_model(exported_run):
    """llama.cpp + the GGUF LoRA over the embedded Q4_1 base gives the PEFT model's verdict probabilities."""
    from gavel.backends.embedded import embedded_gguf
    from gavel.backends.llamacpp import LlamaCppBackend
    from gavel.backends.transformers_backend import TransformersBackend

    assert exported_run.gguf.stat().st_size < 20 * 2**20
    assert f"ADAPTER {exported_run.gguf}" in exported_run.modelfile.read_text()
    merged = p_a_on_fixture_verdicts(TransformersBackend(exported_run.merged))
    adapted = p_a_on_fixture_verdicts(LlamaCppBackend(embedded_gguf(), n_ctx=2048, lora_path=exported_run.gguf))
    base = p_a_on_fixture_verdicts(LlamaCppBackend(embedded_gguf(), n_ctx=2048))
    # Tolerance 0.05 in probability: llama.cpp runs the Q4_1 base with 8-bit activations, transformers the same
    # weights dequantized to fp32 (on the shipped adapter the largest gap was 0.016, docs/model-card.md).
    to_merged = [abs(x - y) for x, y in zip(merged, adapted, strict=True)]
    to_base = [abs(x - y) for x, y in zip(base, adapted, strict=True)]
    assert max(to_merged) < 0.05
    assert sum(to_merged) < 0.5 * sum(to_base)  # the adapter is really applied: closer to PEFT than to the base


@pytest.mark.model
def test_whole_model_gguf_judges_like_the_transformers_model(exported_run, tmp_path):
    """The full-fine-tune export path (one GGUF holding the whole model, tokenizer included) on a trained model."""
    from gavel.backends.llamacpp import LlamaCppBackend
    from gavel.backends.transformers_backend import TransformersBackend
    from gavel.train.export import model_to_gguf

    whole = model_to_gguf(exported_run.merged, tmp_path / "model.gguf")
    gaps = [abs(x - y) for x, y in zip(p_a_on_fixture_verdicts(TransformersBackend(exported_run.merged)),
                                       p_a_on_fixture_verdicts(LlamaCppBackend(whole, n_ctx=2048)), strict=True)]
    assert max(gaps) < 0.02  # f16 weights against fp32: no quantized base in between


# -- the 8B multi-GPU recipe (checked without a GPU) ----------------------------------------------
def test_selene_recipe_builds_trainer_arguments():
    from gavel.train.trainer import dpo_args, peft_config

    config = load_train_config(REPO / "recipes" / "selene-8b.yaml")
    assert config.method == "full" and config.bf16 and config.base == "meta-llama/Llama-3.1-8B-Instruct"
    assert peft_config(config) is None
    args = dpo_args(config)  # without a GPU this builds with use_cpu=True; on the cluster, False
    assert args.train_sampling_strategy == "random"
    assert dpo_args(config.model_copy(update={"group_by_length": True})).train_sampling_strategy == "group_by_length"
    assert args.loss_type == ["sigmoid", "sft"] and args.loss_weights == [1.0, config.nll_alpha]
    assert args.bf16 and args.gradient_checkpointing and args.precompute_ref_log_probs
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps * 8 == 128
    accelerate = yaml.safe_load((REPO / "recipes" / "accelerate" / "zero3-8gpu.yaml").read_text())
    assert accelerate["num_processes"] == 8 and accelerate["distributed_type"] == "DEEPSPEED"
    deepspeed = json.loads((REPO / accelerate["deepspeed_config"]["deepspeed_config_file"]).read_text())
    assert deepspeed["zero_optimization"]["stage"] == 3
    two_nodes = yaml.safe_load((REPO / "recipes" / "accelerate" / "zero3-2x8gpu.yaml").read_text())
    assert two_nodes["num_processes"] == two_nodes["num_machines"] * 8


# -- gavel recipe: the comparison report ------------------------------------------------------------
def test_recipe_loads_with_stage_paths(tmp_path):
    from gavel.train.recipe import base_spec, load_recipe, trained_spec

    recipe = load_recipe(REPO / "recipes" / "tiny-cpu.yaml", output_dir=tmp_path / "run")
    assert recipe.train.output_dir == tmp_path / "run" / "train"
    assert recipe.curate.config == (REPO / "configs" / "curate" / "cpu.yaml").resolve()
    # the embedded base and its LoRA adapter are compared over llama.cpp, the engine the shipped judge uses
    assert base_spec(recipe.train) == "smollm2"
    assert trained_spec(recipe.train) == f"smollm2+{tmp_path / 'run' / 'train' / 'adapter.gguf'}"
    no_gguf = recipe.train.model_copy(update={"export_gguf": False})
    assert base_spec(no_gguf) == "hf:smollm2" and trained_spec(no_gguf).endswith("train/merged")
    assert set(recipe.bench.pairwise) >= {"llmbar-natural", "llmbar-adversarial", "hhh", "mt-bench-human", "auto-j"}


def _pair_row(i: int, verdict: str, status: str = "logits") -> dict:
    """One output line of `gavel bench` (record fields, then the judge's)."""
    return {"id": str(i), "task": "pairwise", "instruction": f"question {i}", "response_a": "one",
            "response_b": "two", "label": "A" if i % 2 else "B", "result": verdict, "status": status,
            "model": "m", "template": "default/pairwise", "mode": "verdict", "completion_tokens": 10 + i}


def test_paired_delta_and_status_stats():
    from gavel.train.recipe import paired_delta, status_stats

    base = [_pair_row(i, "A") for i in range(40)]  # always A: right on the odd items only
    trained = [_pair_row(i, "A" if i % 2 else "B", "ok") for i in range(40)]  # always right
    result = paired_delta(base, trained, "pairwise")
    assert result["n"] == 40 and result["delta"] == pytest.approx(0.5)
    assert result["ci_low"] <= 0.5 <= result["ci_high"] and result["ci_low"] > 0.3
    assert paired_delta(base, base, "pairwise")["delta"] == 0
    assert status_stats(trained) == {"ok_rate": 1.0, "median_completion_tokens": 29.5}
    assert status_stats(base)["ok_rate"] == 0.0


def test_sample_keeps_both_orders_together():
    from gavel.train.trainer import sample_items

    ids = [f"item{i}" for i in range(20)] + [f"item{i}:swapped" for i in range(20)] + ["single"]
    picked = sample_items(ids, 10, seed=3)
    chosen = {ids[i] for i in picked}
    assert 10 <= len(picked) <= 11
    assert all(f"{name}:swapped" in chosen for name in chosen if name.startswith("item") and ":" not in name)
    assert sample_items(ids, 10, seed=3) == picked and sample_items(ids, 10, seed=4) != picked


def test_recipe_report_has_deltas_baselines_and_pairwise_means(tmp_path):
    from gavel.bench.results import BenchmarkResult, BenchResults, BothOrders, RunMeta, Summary
    from gavel.layout import BenchOutput
    from gavel.train.recipe import compare, load_recipe, write_report

    base, trained = "smollm2", "smollm2+run/adapter.gguf"
    folder = BenchOutput(tmp_path / "bench-verdict")
    rows = {base: [_pair_row(i, "A") for i in range(20)], trained: [_pair_row(i, "A" if i % 2 else "B") for i in
                                                                    range(20)]}
    for judge, judged in rows.items():
        path = folder.items("llmbar-natural", judge)
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in judged))

    def summary(value: float, **both_orders: float) -> Summary:
        return Summary(task="pairwise", metric="accuracy", value=value, ci_low=0.0, ci_high=1.0,
                       both_orders=BothOrders(**both_orders) if both_orders else None)

    judges = {base: summary(0.5, consistency=0.1, accuracy_order_mean=0.5, position_bias_a=0.9),
              trained: summary(1.0, consistency=0.6, accuracy_order_mean=0.8, position_bias_a=0.5),
              "baseline:random": summary(0.45), "baseline:always-a": summary(0.5),
              "baseline:longer-wins": summary(0.65)}
    results = BenchResults(meta=RunMeta(), overall={}, benchmarks={
        "llmbar-natural": BenchmarkResult(task="pairwise", metric="accuracy", judges=judges)})
    folder.results.write_text(results.model_dump_json())
    comparison = compare(folder, base, trained)
    assert comparison["llmbar-natural"].delta == pytest.approx(0.5)
    assert comparison["llmbar-natural"].baselines == {"random": 0.45, "always-a": 0.5, "longer-wins": 0.65}
    recipe = load_recipe(REPO / "recipes" / "tiny-cpu.yaml", output_dir=tmp_path)
    report = write_report(recipe, {"verdict": comparison}, {"pairs": 8, "steps": 2}, (base, trained)).read_text()
    assert "0.450 / 0.500 / 0.650" in report and "0.100 -> 0.600" in report
    assert "consistency 0.100 -> 0.600" in report and "order-mean accuracy 0.500 -> 0.800" in report
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["pairwise_summary"]["verdict"]["trained_position_bias_a"] == 0.5
    assert saved["judges"] == {"base": base, "trained": trained}
    assert saved["verdict"]["llmbar-natural"]["trained"]["summary"]["both_orders"]["consistency"] == 0.6


@pytest.mark.model
def test_gavel_recipe_trains_benches_both_judges_on_the_same_items_and_reports(tmp_path, monkeypatch):
    """`gavel recipe` end to end: the fixture pairs, one training step exported to GGUF, both judges benched
    on the same fixture items, report.md and report.json written; a rerun trains nothing again."""
    from typer.testing import CliRunner

    from gavel.backends.threads import THREADS_ENV
    from gavel.cli import app
    from gavel.layout import RecipeOutput

    monkeypatch.setenv(THREADS_ENV, "2")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "e2e",
        "train": {"data": str(FIXTURE), "limit": 2, "batch_size": 1, "grad_accum": 1, "max_steps": 1,
                  "save_steps": 1, "max_length": 512, "warmup_ratio": 0.0, "scheduler": "constant", "threads": 2},
        "bench": {"pairwise": ["llmbar-natural"], "limit": 3, "critique": [],
                  "data_root": str(Path(__file__).parent / "fixtures" / "bench" / "local")}}))
    out = RecipeOutput(tmp_path / "run")
    result = CliRunner().invoke(app, ["recipe", str(recipe), "-o", str(out.root)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.report_json.read_text())
    row = report["verdict"]["llmbar-natural"]
    assert report["judges"]["base"] == "smollm2" and report["judges"]["trained"].endswith(".gguf")
    assert row["n"] == 3 and row["base"]["summary"]["n"] == 3 and row["trained"]["summary"]["n"] == 3
    assert row["base"]["summary"]["both_orders"]["n_both_orders"] == 3
    assert set(row["baselines"]) >= {"random", "always-a", "longer-wins"}
    assert report["pairwise_summary"]["verdict"]["n_benchmarks"] == 1
    assert "| llmbar-natural | accuracy |" in out.report_md.read_text()
    adapter = out.train / "adapter" / "adapter_model.safetensors"
    trained_at = adapter.stat().st_mtime_ns
    again = CliRunner().invoke(app, ["recipe", str(recipe), "-o", str(out.root)])
    assert again.exit_code == 0, again.output
    assert adapter.stat().st_mtime_ns == trained_at
    assert json.loads(out.report_json.read_text())["verdict"] == report["verdict"]


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_recipe_and_its_curate_config_validate(path):
    from gavel.curate.config import load_config
    from gavel.train.recipe import load_recipe

    recipe = load_recipe(path, output_dir=Path("out"))
    assert recipe.name == path.stem
    if recipe.curate.config is not None:
        assert load_config(recipe.curate.config).sources


def test_recipe_mix_token_limit_follows_the_trainer_unless_the_curate_config_sets_it(tmp_path):
    import yaml

    from gavel.train.recipe import curate_config, load_recipe

    recipe = load_recipe(REPO / "recipes" / "tiny-cpu.yaml", output_dir=tmp_path / "run")
    assert curate_config(recipe).mix.max_tokens == 1024  # configs/curate/cpu.yaml sets it
    curate = yaml.safe_load((REPO / "configs" / "curate" / "cpu.yaml").read_text())
    del curate["mix"]["max_tokens"]
    (tmp_path / "curate.yaml").write_text(yaml.safe_dump(curate))
    data = yaml.safe_load((REPO / "recipes" / "tiny-cpu.yaml").read_text())
    data["curate"] = {"config": "curate.yaml"}
    data["train"] |= {"max_length": 640, "data": str(REPO / "tests" / "fixtures" / "train" / "pairs.jsonl")}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(data))
    assert curate_config(load_recipe(tmp_path / "recipe.yaml")).mix.max_tokens == 640


def test_extra_dpo_arguments_are_checked_against_dpoconfig(tmp_path):
    from gavel.train.trainer import DPO_RENAMES, check_extra, dpo_args

    config = load_train_config(REPO / "recipes" / "tiny-cpu.yaml", output_dir=tmp_path / "out")
    args = dpo_args(config.model_copy(update={"extra": {"adam_beta2": 0.99}}))
    assert args.adam_beta2 == 0.99 and args.num_train_epochs == config.epochs  # a renamed field arrives
    assert all(getattr(args, renamed) is not None for renamed in DPO_RENAMES.values())
    with pytest.raises(ValueError, match=r"extra: not DPOConfig argument.*adam_beta_two"):
        check_extra(config.model_copy(update={"extra": {"adam_beta_two": 0.99}}))
