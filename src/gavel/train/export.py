"""Export a trained judge: merged Hugging Face folder, GGUF (a LoRA adapter over the base, or a whole model), Modelfile.

The GGUF converters are llama.cpp's own scripts (`convert_lora_to_gguf.py`, `convert_hf_to_gguf.py`), taken from
the llama.cpp tree vendored in the llama-cpp-python sdist; point ``GAVEL_LLAMA_CPP`` at that tree:

    pip download llama-cpp-python==0.3.36 --no-binary :all: --no-deps && tar xzf llama_cpp_python-0.3.36.tar.gz
    export GAVEL_LLAMA_CPP=$PWD/llama_cpp_python-0.3.36/vendor/llama.cpp   # the converters also need sentencepiece
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gavel.layout import TrainOutput

#: The system prompt SmolLM2's chat template adds when the conversation has none (Ollama needs it spelled out).
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@dataclass
class Exported:
    merged: Path | None = None
    gguf: Path | None = None  # adapter GGUF (LoRA) or model GGUF (full fine-tune)
    modelfile: Path | None = None


def llama_cpp_tree() -> Path:
    """The llama.cpp source tree holding the GGUF converters: ``$GAVEL_LLAMA_CPP``, else the one
    scripts/setup.sh unpacks into the environment (``<venv>/llama.cpp``)."""
    tree = Path(os.environ.get("GAVEL_LLAMA_CPP") or Path(sys.prefix) / "llama.cpp")
    if not (tree / "convert_lora_to_gguf.py").is_file():
        raise RuntimeError(
            f"GGUF export needs llama.cpp's converters: run scripts/setup.sh (it unpacks them into {sys.prefix}) "
            "or set GAVEL_LLAMA_CPP to a llama.cpp tree, e.g. the "
            "vendor/llama.cpp folder of `pip download llama-cpp-python==0.3.36 --no-binary :all: --no-deps`")
    return tree


def _convert(script: str, args: list[str]) -> None:
    tree = llama_cpp_tree()
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(tree), str(tree / "gguf-py"),
                                                                     os.environ.get("PYTHONPATH", "")])),
                        "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(tree / script), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def adapter_to_gguf(adapter: Path, base: Path, out: Path, outtype: str = "f16") -> Path:
    """A PEFT LoRA adapter as a GGUF LoRA that llama.cpp applies over the base at load (`Llama(lora_path=...)`)."""
    _convert("convert_lora_to_gguf.py", ["--base", str(base), "--outfile", str(out), "--outtype", outtype,
                                         str(adapter)])
    return out


def model_to_gguf(model_dir: Path, out: Path, outtype: str = "f16") -> Path:
    """A whole Hugging Face model folder as one GGUF (for full fine-tunes, or the merged model)."""
    _convert("convert_hf_to_gguf.py", [str(model_dir), "--outfile", str(out), "--outtype", outtype])
    return out


def merge_lora(base: Path, adapter: Path, out: Path) -> Path:
    """Fold the LoRA adapter into the base weights and save a plain transformers folder."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype="float32")
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(adapter if (adapter / "tokenizer.json").exists() else base)).save_pretrained(
        str(out))
    return out


def write_modelfile(out: Path, base_gguf: Path, adapter_gguf: Path | None, system: str | None = SMOLLM2_SYSTEM) -> Path:
    """An Ollama Modelfile: the base GGUF, the adapter over it, a ChatML template, greedy decoding."""
    lines = [f"FROM {base_gguf}"]
    if adapter_gguf is not None:
        lines.append(f"ADAPTER {adapter_gguf}")
    lines += [
        'TEMPLATE """{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
        '<|im_start|>assistant\n"""',
    ]
    if system:
        lines.append(f'SYSTEM "{system}"')
    lines += ["PARAMETER temperature 0", 'PARAMETER stop "<|im_end|>"', ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def export(output_dir: Path, base: Path, base_gguf: Path | None, method: str, gguf: bool = True) -> Exported:
    """Everything for one finished run: merged folder, GGUF and Modelfile, beside the trained weights."""
    result = Exported()
    layout = TrainOutput(output_dir)
    if method == "lora":
        adapter = layout.trained(method)
        result.merged = merge_lora(base, adapter, layout.merged)
        if gguf:
            result.gguf = adapter_to_gguf(adapter, base, layout.gguf(method))
            if base_gguf is not None:
                result.modelfile = write_modelfile(output_dir / "Modelfile", base_gguf, result.gguf)
    else:
        result.merged = layout.trained(method)
        if gguf:
            result.gguf = model_to_gguf(result.merged, layout.gguf(method))
            result.modelfile = write_modelfile(output_dir / "Modelfile", result.gguf, None)
    return result
