"""llama.cpp backend (llama-cpp-python) for GGUF files, the home of the embedded default model.

Requests run one after another in a single context; consecutive prompts share the template's opening
text, and the KV cache of that shared prefix is reused instead of being recomputed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from gavel.backends.base import Backend, BackendInfo, InputTooLong, Reply, Request
from gavel.backends.local import continuation, cut_at_result, label_probs_from_logits, label_token_ids
from gavel.backends.lora import check_adapter
from gavel.labels import REASONING_TAG, RESULT_TAG
from gavel.settings import DEFAULT_SEED


@contextmanager
def plain_weight_buffers() -> Iterator[None]:
    """Load without llama.cpp's extra (repacked) weight buffers.

    On CPUs with AMX (Intel Sapphire Rapids and later), llama-cpp-python 0.3.36 puts the Q4_1 weights in its AMX
    buffer and crashes (SIGSEGV) at the first eval, with or without a LoRA adapter; plain buffers work everywhere.
    The high-level `Llama` has no switch for it, so the default model parameters are patched while it loads.
    """
    import llama_cpp.llama as high_level

    defaults = high_level.llama_cpp.llama_model_default_params

    def without_repack():
        params = defaults()
        params.use_extra_bufts = False
        return params

    high_level.llama_cpp.llama_model_default_params = without_repack
    try:
        yield
    finally:
        high_level.llama_cpp.llama_model_default_params = defaults


class LlamaCppBackend(Backend):
    #: Requests run one after another anyway: one record at a time lets the runner save each as it finishes.
    batch_size = 1

    def __init__(self, model_path: str | Path, *, n_ctx: int = 8192, n_threads: int | None = None,
                 n_batch: int = 512, seed: int = DEFAULT_SEED, name: str | None = None,
                 lora_path: str | Path | None = None) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError:
            raise RuntimeError("the llama.cpp backend needs llama-cpp-python: pip install 'gavel[llama]'") from None
        path = Path(model_path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such GGUF file")
        threads = n_threads or int(os.environ.get("GAVEL_THREADS", 0)) or os.cpu_count() or 1
        if lora_path is not None and not Path(lora_path).is_file():
            raise FileNotFoundError(f"{lora_path}: no such LoRA adapter (GGUF)")
        if lora_path is not None:
            check_adapter(path, Path(lora_path))  # llama.cpp would crash on a bad one
        lora = {"lora_path": str(lora_path)} if lora_path else {}
        with plain_weight_buffers():
            self.llm = Llama(str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=n_batch,
                             seed=seed, logits_all=False, verbose=False, **lora)
        n_ctx_train = int(self.llm.metadata.get(f"{self.llm.metadata.get('general.architecture', 'llama')}"
                                                ".context_length", n_ctx))
        if n_ctx > n_ctx_train:
            with plain_weight_buffers():
                self.llm = Llama(str(path), n_ctx=n_ctx_train, n_threads=threads, n_threads_batch=threads,
                                 n_batch=n_batch, seed=seed, logits_all=False, verbose=False, **lora)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{path} has no chat template in its metadata (tokenizer.chat_template)")
        vocab = self.llm._model
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(self.llm.token_eos()),
            bos_token=vocab.token_get_text(self.llm.token_bos()) if self.llm.token_bos() != -1 else "",
        )
        self._eos = {self.llm.token_eos(), *self._end_of_turn_ids()}
        self._label_ids: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self.info = BackendInfo(name=name or path.name, kind="llama.cpp", context_length=self.llm.n_ctx())

    def _end_of_turn_ids(self) -> set[int]:
        ids = set()
        for text in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
            tokens = self.llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(tokens) == 1:
                ids.add(tokens[0])
        return ids

    # -- helpers ------------------------------------------------------------------------------------
    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text through the model's own chat template, ending with the assistant turn opener."""
        return self._formatter(messages=messages).prompt

    def _encode(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=special)

    def _labels(self, labels: tuple[str, ...]) -> dict[str, list[int]]:
        if labels not in self._label_ids:
            self._label_ids[labels] = label_token_ids(labels, lambda s: self._encode(s, special=False, bos=False))
        return self._label_ids[labels]

    def _next_token_logits(self, tokens: list[int]) -> np.ndarray:
        """Logits after `tokens`, reusing the cached prefix shared with the previous evaluation."""
        llm = self.llm
        prefix = llm.longest_token_prefix(llm._input_ids.tolist(), tokens)
        llm.n_tokens = min(prefix, len(tokens) - 1)
        llm.eval(tokens[llm.n_tokens:])
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()

    def _generate(self, tokens: list[int], request: Request) -> tuple[str, bool, int]:
        """Greedy (or sampled) continuation until a result tag, end of turn or the limit.

        Returns (critique text, whether the model wrote the tag itself, tokens generated).
        """
        out: list[int] = []
        text = ""
        temperature = request.temperature
        for token in self.llm.generate(tokens, temp=temperature, top_k=0 if temperature else 1, top_p=1.0,
                                       min_p=0.0, repeat_penalty=request.repetition_penalty):
            if token in self._eos:
                break
            out.append(token)
            text = self.llm.detokenize(out).decode("utf-8", errors="ignore")
            critique, wrote_tag = cut_at_result(text)
            if wrote_tag:
                return critique, True, len(out)
            if len(out) >= request.max_new_tokens:
                break
        return text, False, len(out)

    # -- Backend ------------------------------------------------------------------------------------
    def run(self, requests: Sequence[Request]) -> list[Reply]:
        return [self._run_one(r) for r in requests]

    def _run_one(self, request: Request) -> Reply:
        start = time.perf_counter()
        prompt = self.render(request.messages)
        tokens = self._encode(prompt)
        try:
            # every token the context will hold: prompt, the opener and closing tag, the critique, the verdict
            fixed = len(self._encode(prompt + continuation("", request.critique)))
            needed = fixed + (request.max_new_tokens if request.critique else 0) + 1
            if needed > self.llm.n_ctx():
                raise InputTooLong(len(tokens), len(tokens) + self.llm.n_ctx() - needed)
            critique, wrote_tag, generated = "", False, 0
            if request.critique:
                opened = self._encode(prompt + REASONING_TAG)
                critique, wrote_tag, generated = self._generate(opened, request)
            final = self._encode(prompt + continuation(critique, request.critique))
            if len(final) >= self.llm.n_ctx():  # re-tokenising the critique took more room than generating it
                raise InputTooLong(len(tokens), len(tokens) + self.llm.n_ctx() - len(final) - 1)
            logits = self._next_token_logits(final)
            probs = label_probs_from_logits(logits, self._labels(request.labels))
        except InputTooLong as exc:
            return Reply(error=str(exc), input_error=True, prompt_tokens=len(tokens))
        except Exception as exc:  # one bad item must not stop the batch
            return Reply(error=f"llama.cpp: {exc}", prompt_tokens=len(tokens))
        return Reply(
            text=(REASONING_TAG + critique + (RESULT_TAG if wrote_tag else "")) if request.critique else "",
            label_probs=probs, forced=request.critique and not wrote_tag,
            prompt_tokens=len(tokens), completion_tokens=generated + 1,
            latency_s=time.perf_counter() - start,
        )

    def close(self) -> None:
        self.llm.close()
