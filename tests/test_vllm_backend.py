"""VLLMBackend: vllm is not installed here, so only the import guard and pure helpers are tested."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from gavel.backends.base import RESULT_TAG
from gavel.backends.vllm_backend import VLLMBackend, continuation, import_vllm


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
