"""The `gavel curate` configuration: typed, unknown keys fail early with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gavel.config import ConfigError, load_yaml_model

__all__ = ["ConfigError", "CurateConfig", "load_config"]

from gavel.labels import Mode
from gavel.settings import DEFAULT_SEED, JudgeSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """One source in the mix."""

    cap: int | None = Field(None, ge=0, description="at most this many items from the source (sampled, seeded)")
    weight: float = Field(1.0, gt=0, description="relative share of the mix when `mix.total` is set")
    rm_threshold: float | None = Field(None, description="keep items whose reward score is at least this")
    use_source_critique: bool = Field(True, description="a trusted critique from the source serves as chosen")
    balance_labels: bool = Field(True, description="sample the source's gold labels as evenly as it allows")
    balance_length: bool = Field(False, description="pairwise: keep as many items whose chosen response is the "
                                 "shorter as the longer, so length does not predict the verdict")
    critique_ratio: float | None = Field(None, ge=0, le=1, description="this source's critique share; None = "
                                         "mix.critique_ratio")


class TeacherConfig(_Strict):
    model: str = Field("smollm2", description="gavel model spec; default: the untrained embedded SmolLM2-135M")
    max_new_tokens: int = Field(96, ge=8)
    rejected: Literal["teacher", "flipped"] = Field(
        "teacher", description="teacher: the teacher argues for a wrong verdict (the paper); flipped: the chosen "
        "critique ending in the wrong verdict, no teacher call (teaches the verdict to follow the critique)")

    def judge_settings(self, template: str | None) -> JudgeSettings:
        """The teacher's judge settings: critique mode, the mix's template, this critique length."""
        return JudgeSettings.of(mode=Mode.critique, template=template, max_new_tokens=self.max_new_tokens)


class RewardModelConfig(_Strict):
    model: str | None = Field(None, description="HF AutoModelForSequenceClassification path or id; None = off")
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(1024, ge=16)
    default_threshold: float | None = None


class MixConfig(_Strict):
    total: int | None = Field(None, ge=1, description="target number of pairs (before pairwise order doubling)")
    critique_ratio: float = Field(0.7, ge=0, le=1, description="share of critique+verdict pairs; rest verdict-only")
    both_orders: bool = Field(True, description="pairwise items in both A/B orders, labels flipped")
    dedup: bool = True
    max_tokens: int = Field(768, ge=64, description="prompt + answer limit in tokens of the target tokenizer")
    max_critique_tokens: int = Field(150, ge=8, description="trusted critiques are cut to this many tokens")
    tokenizer: str | None = Field(None, description="tokenizer for lengths; None = the embedded SmolLM2's")


class DecontamConfig(_Strict):
    enabled: bool = True
    n: int = Field(8, ge=3, description="word n-gram length")
    threshold: float = Field(0.5, gt=0, le=1, description="drop when this share of a text's n-grams is in a "
                                                         "benchmark")
    benchmarks: list[str] | None = Field(None, description="None = every registered benchmark that loads")
    exclude: list[str] = Field([], description="benchmarks left out of the index, e.g. vicuna-bench when its "
                               "held-out half (vicuna-bench-heldout) is the one evaluated")
    data_root: str | None = Field(None, description="benchmark data root (default: gavel bench's)")


class CurateConfig(_Strict):
    seed: int = DEFAULT_SEED
    template: str | None = Field(None, description="judge template set for prompts (training and teacher); "
                                 "None = the engine's default")
    data_root: str | None = Field(None, description="training-data root (default: ../shared/data/train)")
    sources: dict[str, SourceConfig]
    teacher: TeacherConfig = TeacherConfig()
    reward_model: RewardModelConfig = RewardModelConfig()
    mix: MixConfig = MixConfig()
    decontam: DecontamConfig = DecontamConfig()
    num_proc: int | None = Field(None, ge=1, description="processes for datasets map/filter stages")
    work_dir: str | None = Field(None, description="teacher cache and logs (default: <output>/work)")

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        from gavel.curate.sources import SOURCES

        unknown = sorted(set(value) - set(SOURCES.names()))
        if unknown:
            raise ValueError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES.names())}")
        if not value:
            raise ValueError("no sources configured")
        return value

    @model_validator(mode="after")
    def _thresholds_need_model(self) -> CurateConfig:
        wants = [n for n, s in self.sources.items() if s.rm_threshold is not None]
        if wants and self.reward_model.model is None:
            raise ValueError(f"sources {', '.join(wants)} set rm_threshold but reward_model.model is not set")
        return self

    def only(self, name: str) -> CurateConfig:
        """The same config restricted to one source (``--only-source``)."""
        if name not in self.sources:
            raise ValueError(f"--only-source {name!r} is not in the config's sources ({', '.join(self.sources)})")
        return self.model_copy(update={"sources": {name: self.sources[name]}})


def load_config(path: str | Path) -> CurateConfig:
    """The curate config at `path` (ConfigError names the file and each bad field)."""
    return load_yaml_model(path, CurateConfig)
