"""Judge backends and the model-spec string that picks one.

Model specs (the same everywhere gavel takes a model):

==============================  ==========================================================================
spec                            backend
==============================  ==========================================================================
*(none)*, ``default``,          gavel's trained judge: the embedded SmolLM2-135M-Instruct GGUF with gavel's
``gavel``                       LoRA adapter, through llama.cpp (offline; see docs/model-card.md)
``smollm2``                     the embedded SmolLM2-135M-Instruct GGUF alone (the untrained base), llama.cpp
``hf:smollm2``                  the embedded base through transformers (converted once to safetensors)
``path/to/model.gguf``          llama.cpp on that GGUF file (``llamacpp:PATH`` says so explicitly)
``GGUF_SPEC+adapter.gguf``      a llama.cpp spec with a LoRA adapter (GGUF) applied at load, e.g.
                                ``smollm2+runs/tiny-cpu/train/adapter.gguf`` (what ``gavel train`` writes)
``SPEC@FORMAT``                 a spec with an adapter (``default`` too), merged into one file in FORMAT
                                (``q8_0``, ``f16``, ``bf16``, ``q4_1``), built once into the cache: Q8_0 about
                                1.7x the judgments/s, probabilities within ~0.03 (docs/performance.md)
``path/to/folder``              transformers on a local model folder (``hf:PATH`` says so explicitly)
``hf:ORG/NAME``, ``ORG/NAME``   transformers on a hub id (where the hub is reachable)
``ollama:NAME``                 Ollama's OpenAI-compatible API (``$OLLAMA_HOST``, default localhost:11434)
``openai:MODEL``                an OpenAI-compatible server at ``$OPENAI_BASE_URL`` (key: ``$OPENAI_API_KEY``)
``openai:MODEL@URL``            an OpenAI-compatible server at URL, e.g. ``openai:selene@http://127.0.0.1:8080/v1``
``http(s)://HOST/v1#MODEL``     the same, URL first
``vllm:ORG/NAME_OR_PATH``       vLLM's offline engine (``pip install 'gavel[vllm]'``, GPU)
``gavel+http://HOST:PORT``      a remote ``gavel serve`` (also ``gavel+https://``; key: ``$GAVEL_API_KEY``)
==============================  ==========================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gavel.backends.base import Backend, BackendInfo, InputTooLong, Reply, Request, ServerUnavailable
from gavel.backends.merge import FILE_TYPES

DEFAULT_SPEC = "default"
#: Specs that name gavel's default judge.
JUDGE_ALIASES = (DEFAULT_SPEC, "gavel")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: which backend, which model, and backend options."""

    kind: str  # llama.cpp | transformers | openai | ollama | vllm | gavel
    model: str
    base_url: str | None = None
    options: dict[str, str] = field(default_factory=dict)


#: Backend kinds that are HTTP clients of a server (which batches and places the model itself).
SERVER_KINDS = frozenset({"openai", "ollama", "gavel"})


def parse_spec(spec: str | None) -> ModelSpec:
    """Turn a model-spec string into a ModelSpec (see the module docstring for the forms)."""
    text = (spec or DEFAULT_SPEC).strip()
    base_text, at, fmt = text.rpartition("@")
    if at and (fmt in FILE_TYPES or base_text in JUDGE_ALIASES or base_text.endswith(".gguf")):
        return _merged(text, base_text, fmt)
    if "+" in text and text.endswith(".gguf"):
        return _with_adapter(text)
    if text in JUDGE_ALIASES:
        from gavel.backends.embedded import judge_adapter

        return _with_adapter(f"smollm2+{judge_adapter()}")
    if text in ("smollm2", "embedded"):
        from gavel.backends.embedded import embedded_gguf

        return ModelSpec("llama.cpp", str(embedded_gguf()))
    if text in ("hf:smollm2", "transformers:smollm2"):
        return ModelSpec("transformers", "smollm2")
    prefix, sep, rest = text.partition(":")
    if sep and prefix in ("llamacpp", "llama.cpp", "gguf"):
        return ModelSpec("llama.cpp", rest)
    if sep and prefix in ("hf", "transformers"):
        return ModelSpec("transformers", rest)
    if sep and prefix == "vllm":
        return ModelSpec("vllm", rest)
    if sep and prefix == "ollama":
        return ModelSpec("ollama", rest, base_url=os.environ.get("OLLAMA_HOST", "http://localhost:11434"))
    if sep and prefix == "openai":
        model, at, url = rest.partition("@")
        base = url if at else os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
        return ModelSpec("openai", model, base_url=_checked_url(text, base))
    if text.startswith(("gavel+http://", "gavel+https://")):
        url = _checked_url(text, text.removeprefix("gavel+").rstrip("/"))
        return ModelSpec("gavel", url, base_url=url)
    if text.startswith(("http://", "https://")):
        url, hash_, model = text.partition("#")
        if not hash_ or not model:
            raise ValueError(f"model spec {text!r}: name the model after '#', e.g. http://127.0.0.1:8080/v1#selene")
        return ModelSpec("openai", model, base_url=_checked_url(text, url))
    path = Path(text)
    if path.suffix == ".gguf":
        return ModelSpec("llama.cpp", text)
    if path.is_dir():
        return ModelSpec("transformers", text)
    if text.count("/") == 1 and not path.exists():
        return ModelSpec("transformers", text)
    raise ValueError(
        f"model spec {text!r}: not a .gguf file, a model folder, a hub id (org/name), or one of "
        "ollama:NAME, openai:MODEL[@URL], URL#MODEL, vllm:MODEL, hf:MODEL, gavel+http://HOST:PORT"
    )


def _checked_url(spec: str, url: str) -> str:
    """`url` if it is an http(s) URL with a host and a valid port, else a ValueError naming the spec."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"model spec {spec!r}: {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"model spec {spec!r}: {url!r} is not an http(s) URL with a host")
    return url


def _with_adapter(text: str) -> ModelSpec:
    """``BASE+ADAPTER.gguf``: the llama.cpp spec BASE with a LoRA adapter applied at load."""
    base_text, _, adapter = text.rpartition("+")
    base = parse_spec(base_text)
    if base.kind != "llama.cpp" or "lora_path" in base.options:
        raise ValueError(f"model spec {text!r}: a LoRA adapter needs a plain llama.cpp base (smollm2 or a .gguf), "
                         f"not {base_text!r}")
    return ModelSpec("llama.cpp", base.model, options={"lora_path": adapter})


def _merged(text: str, base_text: str, fmt: str) -> ModelSpec:
    """``SPEC@FORMAT``: a llama.cpp spec with an adapter, as one merged file in FORMAT (built at load)."""
    if fmt not in FILE_TYPES:
        raise ValueError(f"model spec {text!r}: unknown merged format {fmt!r} (use {', '.join(FILE_TYPES)})")
    base = parse_spec(base_text)
    if "lora_path" not in base.options:
        raise ValueError(f"model spec {text!r}: @{fmt} merges an adapter into its base; {base_text!r} has none "
                         "(use default or BASE.gguf+ADAPTER.gguf)")
    return ModelSpec("llama.cpp", base.model, options={**base.options, "merge": fmt})


def check_model(spec: str | None) -> None:
    """Fail fast, without loading weights, on a model that cannot be used: a missing GGUF or adapter file, an
    adapter that does not fit its base, a folder without model files or an unreachable hub id (ValueError,
    FileNotFoundError, RuntimeError), or no server at the URL (ServerUnavailable)."""
    parsed = parse_spec(spec)
    if parsed.kind == "llama.cpp":
        for path, what in ((parsed.model, "GGUF file"), (parsed.options.get("lora_path"), "LoRA adapter (GGUF)")):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such {what}")
        if "lora_path" in parsed.options:
            from gavel.backends.lora import check_adapter

            check_adapter(Path(parsed.model), Path(parsed.options["lora_path"]))
    elif parsed.kind == "transformers" and parsed.model != "smollm2":
        from gavel.backends.transformers_backend import check_model_source

        check_model_source(parsed.model)
    elif parsed.kind in ("openai", "ollama"):
        load_backend(spec).close()  # the client checks the server once (GET /models) and holds nothing


def load_backend(spec: str | None = None, **options) -> Backend:
    """Build the backend a model spec names. Extra keyword options go to the backend's constructor."""
    from gavel.backends.identity import model_identity

    spec = (spec or "").strip() or None  # "" (an unset variable) is the default judge, named as such
    parsed = parse_spec(spec)
    backend = _build_backend(spec, parsed, options)
    if backend.info.identity is None:  # a remote gavel server reports the identity of the model it serves
        backend.info.identity = model_identity(parsed)
    return backend


def _build_backend(spec: str | None, parsed: ModelSpec, options: dict) -> Backend:
    if parsed.kind == "llama.cpp":
        from gavel.backends.llamacpp import LlamaCppBackend

        name = None
        if spec in ("smollm2", "embedded"):
            name = "smollm2-135m-instruct (embedded, llama.cpp)"
        elif spec is None or spec in JUDGE_ALIASES:
            name = "gavel-judge-135m (SmolLM2-135M + LoRA, llama.cpp)"
        elif spec.rpartition("@")[0] in JUDGE_ALIASES:
            name = f"gavel-judge-135m (SmolLM2-135M + LoRA merged, {parsed.options['merge'].upper()}, llama.cpp)"
        return LlamaCppBackend(parsed.model, name=name, **parsed.options, **options)
    if parsed.kind == "transformers":
        from gavel.backends.transformers_backend import TransformersBackend

        if parsed.model == "smollm2":
            from gavel.backends.embedded import embedded_hf_dir

            return TransformersBackend(embedded_hf_dir(), name="smollm2-135m-instruct (embedded, transformers)",
                                       **options)
        return TransformersBackend(parsed.model, **options)
    if parsed.kind == "openai":
        from gavel.backends.openai_compat import OpenAIBackend

        return OpenAIBackend(parsed.model, base_url=parsed.base_url, **options)
    if parsed.kind == "ollama":
        from gavel.backends.openai_compat import ollama_backend

        return ollama_backend(parsed.model, host=parsed.base_url, **options)
    if parsed.kind == "gavel":
        from gavel.backends.gavel_http import GavelHttpBackend

        return GavelHttpBackend(parsed.model, **options)
    if parsed.kind == "vllm":
        from gavel.backends.vllm_backend import VLLMBackend

        return VLLMBackend(parsed.model, **options)
    raise ValueError(f"unknown backend kind {parsed.kind!r}")


__all__ = ["Backend", "BackendInfo", "InputTooLong", "ModelSpec", "Reply", "Request", "ServerUnavailable",
           "load_backend", "parse_spec"]
