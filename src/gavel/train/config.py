"""Typed configuration of `gavel train`: the base model, the pairs, the DPO + NLL loss and the schedule.

A config file is YAML. `gavel train` accepts either a bare training config or a recipe (`gavel recipe`)
whose ``train:`` section is one; relative paths resolve against the file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gavel.config import ConfigError, read_yaml_mapping, validate_model
from gavel.settings import DEFAULT_SEED

#: Spec of the embedded base model (SmolLM2-135M-Instruct, dequantized from its GGUF).
EMBEDDED_BASE = "smollm2"


class LoraSettings(BaseModel):
    """LoRA adapter shape (PEFT)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"


class TrainConfig(BaseModel):
    """Everything one training run needs. Paths may be relative to the config file."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(EMBEDDED_BASE, description="'smollm2' (the embedded model), an HF folder or a hub id")
    data: Path = Field(..., description="a `gavel curate` output folder, its dataset/ folder, or a pairs .jsonl")
    output_dir: Path = Path("runs/train")
    method: Literal["lora", "full"] = "lora"
    lora: LoraSettings = LoraSettings()
    # loss: DPO (sigmoid) + alpha * NLL on the chosen answer, as in the paper
    beta: float = Field(0.1, gt=0)
    nll_alpha: float = Field(1.0, ge=0, description="weight of the NLL term on the chosen answer")
    # schedule
    learning_rate: float = Field(3e-4, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; overrides epochs when set")
    batch_size: int = Field(4, ge=1, description="pairs per device per forward pass")
    grad_accum: int = Field(2, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_length: int = Field(768, ge=16, description="prompt + answer tokens; longer pairs are dropped, not cut")
    limit: int | None = Field(None, ge=1, description="train on the first N pairs only")
    seed: int = DEFAULT_SEED
    # work-saving and hardware options
    precompute_ref_log_probs: bool = False
    group_by_length: bool = Field(False, description="batches of similar length (less padding when batch_size > 1)")
    bf16: bool = False
    gradient_checkpointing: bool = False
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores)")
    # bookkeeping
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(10, ge=1)
    save_total_limit: int = Field(2, ge=1)
    export: bool = Field(True, description="after training, merge LoRA into the base and save a folder")
    export_gguf: bool = Field(True, description="also write the adapter (LoRA) or model (full) as GGUF")
    extra: dict[str, Any] = Field(default_factory=dict, description="further DPOConfig arguments, passed as is")



#: Fields holding paths; relative ones are taken from the config file's folder.
PATH_FIELDS = ("data", "output_dir")

#: Command-line options of `gavel train` and the config fields they set.
OPTIONS = {"output_dir": "--output", "data": "--data", "max_steps": "--max-steps", "limit": "--limit"}


def resolve_paths(section: dict[str, Any], root: Path) -> dict[str, Any]:
    """`section` with its relative paths taken from `root` (a base is a path only when it exists there)."""
    out = dict(section)
    for name in PATH_FIELDS:
        if isinstance(out.get(name), str | Path) and not Path(out[name]).is_absolute():
            out[name] = (root / out[name]).resolve()
    base = out.get("base")
    if isinstance(base, str) and not Path(base).is_absolute() and (root / base).exists():
        out["base"] = str((root / base).resolve())
    return out


def train_section(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A bare training config, or the ``train:`` section of a recipe."""
    section = data.get("train", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: train: expected a mapping of settings")
    return section


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a training config, or the ``train:`` section of a recipe, and validate it once with the command-line
    `overrides` (paths relative to the working folder) in place. A bad value is named by the option that set it,
    else by the file and field."""
    path = Path(path)
    section = resolve_paths(train_section(path, read_yaml_mapping(path)), path.parent.resolve())
    given = {k: Path(v).resolve() if isinstance(v, Path) else v for k, v in overrides.items() if v is not None}
    return validate_model(section | given, TrainConfig, str(path), {k: OPTIONS.get(k, k) for k in given})
