"""Typed configuration of `gavel train`: the base model, the pairs, the DPO + NLL loss and the schedule.

A config file is YAML. `gavel train` accepts either a bare training config or a recipe (`gavel recipe`)
whose ``train:`` section is one; relative paths resolve against the file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

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
    max_steps: int = Field(-1, description="> 0 overrides epochs")
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

    def resolved(self, root: Path) -> TrainConfig:
        """A copy whose relative paths are taken from `root` (the config file's folder)."""
        def fix(path: Path | None) -> Path | None:
            return None if path is None or path.is_absolute() else (root / path).resolve()
        update = {"data": fix(self.data), "output_dir": fix(self.output_dir)}
        if not Path(self.base).is_absolute() and (root / self.base).exists():
            update["base"] = str(root / self.base)
        return self.model_copy(update={k: v for k, v in update.items() if v is not None})


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, with a clear error for anything else."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level")
    return data


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a training config, or the ``train:`` section of a recipe; command-line overrides (paths relative
    to the working folder) replace its values."""
    path = Path(path)
    data = read_yaml(path)
    section = data.get("train", data)
    if not isinstance(section, dict):
        raise ValueError(f"{path}: the train section must be a mapping")
    try:
        config = TrainConfig.model_validate(section).resolved(path.parent.resolve())
        given = {k: Path(v).resolve() if isinstance(v, Path) else v for k, v in overrides.items() if v is not None}
        return TrainConfig.model_validate(config.model_dump() | given)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
