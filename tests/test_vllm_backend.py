"""VLLMBackend: vllm is not installed here, so only the import guard and pure helpers are tested."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from gavel.backends.vllm_backend import VLLMBackend, continuation, import_vllm
from gavel.labels import RESULT_TAG
from gavel.settings import DEFAULTS


def test_missing_vllm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail even where it is installed
    with pytest.raises(ImportError, match=r"pip install 'gavel\[vllm\]'"):
        import_vllm()
    with pytest.raises(ImportError, match=r"gavel\[vllm\]"):
        VLLMBackend("AtlaAI/Selene-1-Mini-Llama-3.1-8B")


def test_continuation_keeps_the_tag_the_model_wrote() -> None:
    done = SimpleNamespace(text="**Reasoning:** fine.\n", finish_reason="stop", stop_reason="**Result:**")
    assert continuation(done) == ("**Reasoning:** fine.\n**Result:**", False)


def test_continuation_forces_the_tag_when_missing() -> None:
    cut = SimpleNamespace(text="**Reasoning:** it goes on", finish_reason="length", stop_reason=None)
    assert continuation(cut) == (f"**Reasoning:** it goes on\n{RESULT_TAG}", True)
    empty = SimpleNamespace(text="", finish_reason="stop", stop_reason=None)
    assert continuation(empty) == (RESULT_TAG, True)


def test_sampling_settings_come_from_each_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM needs a CUDA GPU, so a stand-in engine records the SamplingParams the backend builds."""
    from gavel.backends.base import Request

    made: list[dict] = []

    class Tokenizer:
        def apply_chat_template(self, messages, add_generation_prompt, tokenize):
            return messages[0]["content"]

        def encode(self, text, add_special_tokens=False):
            return list(range(len(text.split())))

        def decode(self, ids):
            return " A"

    class Engine:
        def __init__(self, **kwargs):
            self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=4096))

        def get_tokenizer(self):
            return Tokenizer()

        def generate(self, prompts, params, use_tqdm=False):
            params = params if isinstance(params, list) else [params] * len(prompts)
            outputs = []
            for p in params:
                text = "fine **Result:**" if p["max_tokens"] > 1 else " A"
                outputs.append(SimpleNamespace(outputs=[SimpleNamespace(
                    text=text.removesuffix("**Result:**"), token_ids=[1, 2], finish_reason="stop",
                    stop_reason="**Result:**" if p["max_tokens"] > 1 else None, logprobs=None)]))
            return outputs

    def sampling_params(**kwargs):
        made.append(kwargs)
        return kwargs

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=Engine, SamplingParams=sampling_params,
                                                             __version__="stub"))
    backend = VLLMBackend("stub")
    requests = [Request(messages=[{"role": "user", "content": "q one"}], labels=("A", "B"), critique=True,
                        max_new_tokens=9, temperature=0.0, repetition_penalty=1.0),
                Request(messages=[{"role": "user", "content": "q two"}], labels=("A", "B"), critique=True,
                        max_new_tokens=7, temperature=0.7)]
    replies = backend.run(requests)
    assert [r.error for r in replies] == [None, None]
    critique = [(p["temperature"], p["max_tokens"], p["repetition_penalty"]) for p in made if p["max_tokens"] > 1]
    assert critique == [(0.0, 9, 1.0), (0.7, 7, DEFAULTS.repetition_penalty)]
    assert [p["temperature"] for p in made if p["max_tokens"] == 1] == [0.0]  # the verdict is read, not sampled
