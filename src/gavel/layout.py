"""Where each output file lives: the file names of every command's output, defined once.

- ``gavel judge -o OUT``: the results in OUT, the row errors in ``OUT.errors.jsonl``, the run's settings in
  ``OUT.run.json`` (:func:`sidecar`);
- ``gavel bench -o DIR``: :class:`BenchOutput`; ``gavel curate -o DIR``: :class:`CurateOutput`;
  ``gavel train -o DIR``: :class:`TrainOutput`; ``gavel recipe``: :class:`RecipeOutput`, which holds one of each.

The writers and the readers (the recipe reads a bench, curate and train output) both take their paths here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ERRORS_SUFFIX = ".errors.jsonl"
SETTINGS_SUFFIX = ".run.json"

# gavel curate -o DIR
#: Written first: the folder is a gavel curate output, which gavel may resume and write into.
MARKER = ".gavel-curate"
#: Written last: the mix is finished.
READY = "READY"
PAIRS = "pairs.jsonl"
DATASET = "dataset"


def sidecar(output: Path, suffix: str) -> Path:
    """A file beside a JSONL output: ``out.jsonl`` -> ``out.errors.jsonl``; another name gets the suffix added."""
    return output.with_name(output.name + suffix) if output.suffix != ".jsonl" else output.with_suffix(suffix)


def safe_name(name: str) -> str:
    """A file-name-safe version of a benchmark or judge name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "unnamed"


@dataclass(frozen=True)
class BenchOutput:
    """``DIR/items/<benchmark>/<judge>/<format>[-injection].jsonl``, ``results.json``, ``report.md``, plots."""

    root: Path

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def items(self, benchmark: str, judge: str, fmt: str = "default", injection: bool = False) -> Path:
        """The per-item results of one judge on one benchmark in one prompt format (or its injection probe)."""
        name = f"{fmt}-injection" if injection else fmt
        return self.root / "items" / safe_name(benchmark) / safe_name(judge) / f"{name}.jsonl"

    def plot(self, name: str) -> Path:
        return self.root / f"{name}.png"


@dataclass(frozen=True)
class CurateOutput:
    """``DIR/.gavel-curate`` (written first), ``dataset/`` (saved with ``datasets``), ``pairs.jsonl``, ``card.md``,
    ``card.json``, ``work/``, and ``READY``, written last."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def dataset(self) -> Path:
        return self.root / DATASET

    @property
    def pairs(self) -> Path:
        return self.root / PAIRS

    @property
    def card_md(self) -> Path:
        return self.root / "card.md"

    @property
    def card_json(self) -> Path:
        return self.root / "card.json"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def ready(self) -> Path:
        return self.root / READY

    @property
    def finished(self) -> bool:
        return self.ready.exists()


@dataclass(frozen=True)
class TrainOutput:
    """``DIR/checkpoints/``, ``data/`` (the pairs trained on), ``adapter/`` or ``model/``, ``merged/``,
    ``adapter.gguf`` or ``model.gguf``, ``metrics.jsonl``, ``log_history.json``, ``losses.png``,
    ``train_run.json`` (the settings and the data's identity, written before training) and
    ``train_summary.json``, written when training ends."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def trained(self, method: str) -> Path:
        """The trained weights: the LoRA adapter, or the fully fine-tuned model."""
        return self.root / ("adapter" if method == "lora" else "model")

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    def gguf(self, method: str) -> Path:
        """The GGUF export: the LoRA adapter alone, or the whole model."""
        return self.root / ("adapter.gguf" if method == "lora" else "model.gguf")

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log_history(self) -> Path:
        return self.root / "log_history.json"

    @property
    def losses(self) -> Path:
        return self.root / "losses.png"

    @property
    def run(self) -> Path:
        return self.root / "train_run.json"

    @property
    def summary(self) -> Path:
        return self.root / "train_summary.json"

    def read_summary(self) -> dict[str, Any]:
        """The finished run's summary (pairs, steps, seconds, peak memory, the config)."""
        return json.loads(self.summary.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class RecipeOutput:
    """``DIR/curate/``, ``train/``, ``bench-verdict/``, ``bench-critique/``, ``report.md`` and ``report.json``."""

    root: Path

    @property
    def curate(self) -> CurateOutput:
        return CurateOutput(self.root / "curate")

    @property
    def train(self) -> Path:
        return self.root / "train"

    def bench(self, mode: str) -> BenchOutput:
        return BenchOutput(self.root / f"bench-{mode}")

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"


__all__ = ["DATASET", "ERRORS_SUFFIX", "MARKER", "PAIRS", "READY", "SETTINGS_SUFFIX", "BenchOutput", "CurateOutput",
           "RecipeOutput", "TrainOutput", "safe_name", "sidecar"]
