"""`gavel train`: DPO (sigmoid) + NLL on the chosen answer with TRL's DPOTrainer, LoRA (PEFT) or full fine-tuning.

Output folder layout (``config.output_dir``):

- ``checkpoints/checkpoint-N/``  Trainer checkpoints; a rerun resumes from the last one
- ``data/``                      the pairs actually trained on (saved dataset; TRL's caches live beside it)
- ``adapter/`` or ``model/``     the trained LoRA adapter (PEFT) or the full model, with the tokenizer
- ``metrics.jsonl``              one line per logged step: loss, DPO and NLL parts, reward accuracy and margins, ...
- ``log_history.json``           TRL's log history at the end; ``losses.png`` the loss curves
- ``train_run.json``             written before training: the settings and the data's identity (path, pair count,
                                 SHA-256 of the rows); a rerun with other ones is refused, the same ones resume
- ``train_summary.json``         written last: steps, seconds, peak memory, the config and data; the run is finished
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import resource
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from gavel.io import OutputError, check_output_dir, is_empty_dir, iter_jsonl, write_text_atomic
from gavel.layout import READY, CurateOutput, TrainOutput
from gavel.train.config import EMBEDDED_BASE, TrainConfig

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("prompt", "chosen", "rejected")


# -- data ---------------------------------------------------------------------------------------------
def pairs_path(data: Path) -> Path:
    """The saved dataset or JSONL of pairs: inside a finished `gavel curate` folder, or `data` itself."""
    if data.is_file():
        return data
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such pairs file or curate folder")
    if (data / "dataset_info.json").exists():
        return data
    curated = CurateOutput(data)
    if curated.marker.exists() or curated.dataset.is_dir() or curated.pairs.is_file():
        if not curated.finished:
            raise ValueError(f"{data}: an unfinished gavel curate output (no {READY}); run gavel curate on it to "
                             "the end first")
        return curated.dataset if curated.dataset.is_dir() else curated.pairs
    raise ValueError(f"{data}: neither a finished gavel curate output, a saved dataset, nor a pairs .jsonl file")


def check_pair(source: Path, row: int, pair: Any) -> None:
    """A clear error naming the file, row (from 1) and field when a row breaks the curate contract."""
    if not isinstance(pair, dict):
        raise ValueError(f"{source}, row {row}: not a JSON object")
    for column in PAIR_COLUMNS:
        messages = pair.get(column)
        if not (isinstance(messages, list) and messages
                and all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)):
            raise ValueError(f"{source}, row {row}, field '{column}': expected a list of chat messages "
                             "({'role': ..., 'content': ...})")


def _jsonl_pairs(source: Path) -> list[dict[str, Any]]:
    rows = []
    for number, row, error in iter_jsonl(source):
        if error is not None:
            raise ValueError(f"{source}, row {number}: {error}")
        check_pair(source, number, row)
        rows.append(row)
    return rows


def load_pairs(data: Path):
    """The preference pairs as a `datasets.Dataset`, checked against the curate contract (ValueError naming the
    file, row and field; or that it holds no pairs)."""
    from datasets import Dataset, load_from_disk

    source = pairs_path(data)
    if source.is_dir() and _saved_without_rows(source):  # `datasets` cannot load a saved dataset of 0 shards
        raise ValueError(f"{source}: holds no pairs")
    if source.is_dir():
        dataset = load_from_disk(str(source))
        for index, row in enumerate(dataset.select(range(min(len(dataset), 50))), start=1):
            check_pair(source, index, row)  # arrow already holds one type per column
    else:
        dataset = Dataset.from_list(_jsonl_pairs(source))
    if len(dataset) == 0:
        raise ValueError(f"{source}: holds no pairs")
    return dataset


def _saved_without_rows(folder: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` whose state lists no data file (an empty dataset)."""
    try:
        return not json.loads((folder / "state.json").read_text(encoding="utf-8")).get("_data_files")
    except (OSError, ValueError):
        return False


def data_identity(data: Path, dataset) -> dict[str, Any]:
    """Where the pairs came from and a hash of their content (the same rows hash the same in any format)."""
    digest = hashlib.sha256()
    for row in dataset:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    return {"path": str(data), "sha256": digest.hexdigest(), "pairs": len(dataset)}


def sample_items(ids: list[str], limit: int, seed: int) -> list[int]:
    """Row indices of a seeded sample of about `limit` rows that keeps both orders of a pairwise item together
    (curate names the swapped row ``<id>:swapped``), so a sample never teaches one position more than the other."""
    groups: dict[str, list[int]] = {}
    for index, row_id in enumerate(ids):
        groups.setdefault(row_id.removesuffix(":swapped"), []).append(index)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    picked: list[int] = []
    for members in order:
        if len(picked) >= limit:
            break
        picked += members
    return sorted(picked)


def fit_length(dataset, tokenizer, max_length: int):
    """Drop pairs whose prompt + answer exceeds `max_length` tokens (truncation would cut off the verdict)."""
    def lengths(row: dict[str, Any]) -> dict[str, int]:
        longest = max(len(tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True,
                                                         return_dict=True)["input_ids"])
                      for side in ("chosen", "rejected"))
        return {"length": longest}

    measured = dataset.map(lengths, desc="measuring pair lengths")
    kept = measured.filter(lambda row: row["length"] <= max_length)
    if len(kept) < len(measured):
        log.warning("dropped %d of %d pairs longer than max_length=%d", len(measured) - len(kept), len(measured),
                    max_length)
    if len(kept) == 0:
        raise ValueError(f"none of the {len(measured)} pairs fits max_length={max_length} tokens; raise max_length")
    return kept


# -- model --------------------------------------------------------------------------------------------
def base_model_path(base: str) -> str:
    """A transformers-loadable path for the base: the embedded model's converted folder, or `base` itself."""
    if base == EMBEDDED_BASE:
        from gavel.backends.embedded import embedded_hf_dir

        return str(embedded_hf_dir())
    return base


def check_base(base: str) -> None:
    """Fail fast on a base that cannot load: a missing folder, a folder without model files, or a hub id while the
    hub is unreachable (and not in the local cache)."""
    if base == EMBEDDED_BASE:
        return
    from gavel.backends.transformers_backend import check_model_source

    path = Path(base).expanduser()
    looks_like_a_path = path.is_absolute() or base.startswith((".", "~")) or base.count("/") != 1
    if looks_like_a_path and not path.exists():
        raise FileNotFoundError(f"base {base}: no such model folder")
    try:
        check_model_source(base)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"base {exc}") from None


def peft_config(config: TrainConfig):
    if config.method != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=config.lora.target_modules, task_type="CAUSAL_LM")


#: TrainConfig fields passed to DPOConfig under another name; the fields in _SAME_NAME keep theirs.
DPO_RENAMES = {"epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size",
               "grad_accum": "gradient_accumulation_steps", "scheduler": "lr_scheduler_type",
               "warmup_ratio": "warmup_steps"}
_SAME_NAME = ("beta", "learning_rate", "weight_decay", "max_length", "precompute_ref_log_probs", "bf16",
              "gradient_checkpointing", "logging_steps", "save_steps", "save_total_limit", "seed")


def check_extra(config: TrainConfig) -> None:
    """ValueError naming the keys of ``extra`` that are not DPOConfig arguments."""
    import dataclasses

    from trl import DPOConfig

    unknown = sorted(set(config.extra) - {f.name for f in dataclasses.fields(DPOConfig)})
    if unknown:
        raise ValueError(f"extra: not DPOConfig argument(s): {', '.join(unknown)}")


def dpo_args(config: TrainConfig, *, use_cpu: bool | None = None):
    """The DPOConfig for `config` (builds without a GPU, so multi-GPU recipes can be checked anywhere).

    ``config.extra`` is passed on last; a key that is not a DPOConfig argument is a ValueError naming it.
    """
    import torch
    from trl import DPOConfig

    check_extra(config)
    cpu = (not torch.cuda.is_available()) if use_cpu is None else use_cpu
    args: dict[str, Any] = {DPO_RENAMES.get(name, name): getattr(config, name) for name in (*DPO_RENAMES, *_SAME_NAME)}
    args |= dict(
        output_dir=str(TrainOutput(config.output_dir).checkpoints), max_steps=config.max_steps or -1,
        loss_type=["sigmoid", "sft"], loss_weights=[1.0, config.nll_alpha], truncation_mode="keep_start",
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        use_cpu=cpu, save_strategy="steps", report_to="none", dataloader_num_workers=0,
    )
    return DPOConfig(**(args | config.extra))


# -- logging ------------------------------------------------------------------------------------------
class _LossPart:
    """A loss weight that records the term it multiplies, so the DPO and NLL parts are logged separately.

    TRL computes ``loss += term.mean() * weight`` for each loss type; this object stands in for ``weight``.
    """

    def __init__(self, trainer, name: str, weight: float) -> None:
        self.trainer, self.name, self.weight = trainer, name, weight

    def __rmul__(self, term):
        mode = "train" if self.trainer.model.training else "eval"
        self.trainer._metrics[mode][self.name].append(float(term.detach()))
        return term * self.weight


def log_loss_parts(trainer) -> None:
    names = {"sigmoid": "loss/dpo", "sft": "loss/nll"}
    trainer.loss_weights = [_LossPart(trainer, names.get(t, f"loss/{t}"), float(w))
                            for t, w in zip(trainer.loss_types, trainer.loss_weights, strict=True)]


def metrics_callback(path: Path):
    """A TrainerCallback appending every log entry to a JSONL file (survives a kill)."""
    from transformers import TrainerCallback

    class _Metrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                with path.open("a", encoding="utf-8") as sink:
                    sink.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")

    return _Metrics()


def plot_losses(history: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss curves (total, DPO, NLL) and reward accuracy against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [h for h in history if "loss" in h and "step" in h]
    if not rows:
        return None
    steps = [h["step"] for h in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "total"), ("loss/dpo", "DPO (sigmoid)"), ("loss/nll", "NLL on chosen")):
        if all(key in h for h in rows):
            left.plot(steps, [h[key] for h in rows], label=label)
    left.set_xlabel("optimizer step")
    left.set_ylabel("loss")
    left.legend()
    for key, label in (("rewards/accuracies", "reward accuracy"), ("rewards/margins", "reward margin")):
        if all(key in h for h in rows):
            right.plot(steps, [h[key] for h in rows], label=label)
    right.set_xlabel("optimizer step")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- run ----------------------------------------------------------------------------------------------
def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class TrainOutcome:
    output_dir: str
    trained: str  # the adapter/ or model/ folder
    pairs: int
    steps: int
    seconds: float
    peak_rss_mib: float
    resumed_from: str | None
    final: dict[str, float]


def last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = TrainOutput(output_dir).checkpoints
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


#: Settings that do not change what is trained: a rerun may differ in these.
_BOOKKEEPING = ("data", "output_dir", "threads", "logging_steps", "save_steps", "save_total_limit", "export",
                "export_gguf")


@dataclass
class RunPlan:
    """A checked training run: the pairs, what identifies the run, and its outcome when it is already finished."""

    pairs: Any  # datasets.Dataset
    identity: dict[str, Any]
    finished: TrainOutcome | None = None


def run_identity(config: TrainConfig, data: dict[str, Any]) -> dict[str, Any]:
    settings = {k: v for k, v in json.loads(config.model_dump_json()).items() if k not in _BOOKKEEPING}
    return {"gavel_train": 1, "settings": settings, "data": data}


def changes(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two run identities, one 'name: X then, Y now' each (the data by content)."""
    before, after = stored.get("settings", {}), now["settings"]
    out = [f"{k}: {before.get(k)!r} then, {after.get(k)!r} now" for k in sorted(set(before) | set(after))
           if before.get(k) != after.get(k)]
    old, new = stored.get("data") or {}, now["data"]
    if old.get("sha256") != new["sha256"]:
        out.append(f"data: {old.get('path')} ({old.get('pairs')} pairs, sha256 {str(old.get('sha256'))[:12]}) then, "
                   f"{new['path']} ({new['pairs']} pairs, sha256 {new['sha256'][:12]}) now")
    return out


def check_run(config: TrainConfig) -> RunPlan:
    """Everything that can be checked before a model loads: the output folder, the base, the pairs, and a run
    already in the output folder (same settings and data: resumed, or finished; others: refused)."""
    out = config.output_dir
    check_output_dir(out)
    check_extra(config)
    check_base(config.base)
    pairs = load_pairs(config.data)
    identity = run_identity(config, data_identity(config.data, pairs))
    stored_file = TrainOutput(out).run
    if not stored_file.exists():
        if not is_empty_dir(out):
            raise OutputError(f"output {out} is a folder that gavel train did not write (no {stored_file.name} in it); "
                              "choose a new or empty --output")
        return RunPlan(pairs, identity)
    try:
        stored = json.loads(stored_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputError(f"{stored_file} is damaged ({exc}); choose another --output") from None
    changed = changes(stored, identity)
    if changed:
        raise OutputError(f"{out} holds a training run with other settings or data ({'; '.join(changed)}); "
                          "choose another --output")
    summary = TrainOutput(out).summary
    finished = None
    if summary.exists():
        saved = json.loads(summary.read_text(encoding="utf-8"))
        finished = TrainOutcome(**{f.name: saved.get(f.name) for f in fields(TrainOutcome)})
    return RunPlan(pairs, identity, finished)


def prepare_data(config: TrainConfig, tokenizer, pairs=None):
    """Limit and length-filter the pairs, and save them under the output folder (TRL caches beside them). The
    saved copy is reused on a resume: `check_run` has made sure it came from the same data and settings."""
    from datasets import load_from_disk

    saved = TrainOutput(config.output_dir).data
    if (saved / "dataset_info.json").exists():
        return load_from_disk(str(saved))
    dataset = load_pairs(config.data) if pairs is None else pairs
    if config.limit and config.limit < len(dataset):
        dataset = dataset.select(sample_items(dataset["id"], config.limit, config.seed))
    dataset = fit_length(dataset, tokenizer, config.max_length)
    dataset.save_to_disk(str(saved))
    return load_from_disk(str(saved))


def build_trainer(config: TrainConfig, pairs=None):
    """Model, tokenizer, pairs and a DPOTrainer ready to train."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    if config.threads:
        torch.set_num_threads(config.threads)
    base = base_model_path(config.base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = prepare_data(config, tokenizer, pairs)
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    trainer = DPOTrainer(model=model, ref_model=None, args=dpo_args(config), train_dataset=dataset,
                         processing_class=tokenizer, peft_config=peft_config(config),
                         callbacks=[metrics_callback(TrainOutput(config.output_dir).metrics)])
    log_loss_parts(trainer)
    return trainer


def run(config: TrainConfig, plan: RunPlan | None = None) -> TrainOutcome:
    """Train (resuming from the last checkpoint if there is one), save the result, metrics and loss plot.

    A run already finished in the output folder with the same settings and data is returned as it is.
    """
    plan = plan or check_run(config)
    if plan.finished is not None:
        return plan.finished
    layout = TrainOutput(config.output_dir)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(layout.run, json.dumps(plan.identity | {"config": json.loads(
        config.model_dump_json())}, indent=2))
    trainer = build_trainer(config, plan.pairs)
    resume = last_checkpoint(config.output_dir)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - start
    trained = layout.trained(config.method)
    trainer.save_model(str(trained))
    trainer.processing_class.save_pretrained(str(trained))
    history = trainer.state.log_history
    layout.log_history.write_text(json.dumps(history, indent=1))
    plot_losses(_history_with_steps(config.output_dir), layout.losses)
    outcome = TrainOutcome(
        output_dir=str(config.output_dir), trained=str(trained), pairs=len(trainer.train_dataset),
        steps=trainer.state.global_step, seconds=round(seconds, 1),
        peak_rss_mib=round(peak_rss_mib(), 1),
        resumed_from=resume, final={k: v for k, v in result.metrics.items() if isinstance(v, int | float)},
    )
    if config.export:
        export_run(config)
    write_text_atomic(layout.summary, json.dumps(
        asdict(outcome) | {"config": json.loads(config.model_dump_json()), "data": plan.identity["data"]}, indent=2))
    return outcome


def export_run(config: TrainConfig):
    """Merged folder, plus GGUF and Modelfile when llama.cpp's converters are at hand (see gavel.train.export)."""
    from gavel.train.export import export

    base_gguf = None
    if config.base == EMBEDDED_BASE:
        from gavel.backends.embedded import embedded_gguf

        base_gguf = embedded_gguf()
    try:
        return export(config.output_dir, Path(base_model_path(config.base)), base_gguf, config.method,
                      gguf=config.export_gguf)
    except RuntimeError as exc:  # no converter: the merged folder is there, the GGUF is not
        log.warning("GGUF export skipped: %s", exc)
        return None


def _history_with_steps(output_dir: Path) -> list[dict[str, Any]]:
    """Every logged step of this run and of the runs it resumed from (metrics.jsonl keeps them all)."""
    path = TrainOutput(output_dir).metrics
    if not path.exists():
        return []
    rows: dict[int, dict[str, Any]] = {}
    for _, row, _error in iter_jsonl(path, complete_only=True):
        if row is not None and "loss" in row:
            rows[row["step"]] = row  # a resumed run re-logs steps after the checkpoint: keep the latest
    return [rows[s] for s in sorted(rows)]
