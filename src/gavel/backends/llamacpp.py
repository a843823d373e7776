"""llama.cpp backend (llama-cpp-python) for GGUF files, the home of the embedded default model.

With ``batch_size`` > 1 several requests run at once, one KV-cache sequence each, in shared forward passes
(`gavel.backends.llamacpp_slots`); prompts that share an opening share its KV cache. With ``batch_size=1`` (the
default) requests run one after another in a single context, where consecutive prompts also reuse the KV cache
of their shared prefix.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from gavel.backends.base import Backend, BackendInfo, InputTooLong, Reply, Request
from gavel.backends.llamacpp_slots import Plan, SlotScheduler, Ticket
from gavel.backends.local import CritiqueText, continuation, label_probs_from_logits, label_token_ids
from gavel.backends.lora import check_adapter
from gavel.backends.merge import merged_gguf
from gavel.backends.threads import FreeCores, fixed_threads
from gavel.labels import REASONING_TAG, RESULT_TAG
from gavel.settings import DEFAULT_SEED

#: Sequences per forward pass by default (``batch_size``); 1 runs requests one after another. Batched results
#: equal one-at-a-time ones bit for bit on a GGUF without an unmerged adapter (the base, a merged judge such as
#: ``default@q8_0``) but were no faster on a 2-core CPU with the judge's short critiques, and an adapter applied at
#: every pass (the default judge) moves critique probabilities by ~0.02 when batched (docs/performance.md).
DEFAULT_BATCH = 1
#: KV cells of one slot: a prompt of about 1,500 tokens with a 512-token critique (longer requests run alone).
DEFAULT_SLOT_CTX = 2048


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
    """GGUF files through llama-cpp-python.

    ``batch_size`` is the number of sequences per forward pass (KV-cache slots); 1 keeps the one-at-a-time
    path. ``n_threads`` fixes llama.cpp's threads (else ``$GAVEL_THREADS``, else one per core that other
    processes leave idle, looked at again every few seconds: `gavel.backends.threads`). ``n_ctx`` is the
    context of one request; each slot holds ``slot_ctx`` tokens, and a request that needs more runs alone in the
    full context. ``merge`` (a format of :mod:`gavel.backends.merge`) folds ``lora_path`` into one cached file
    first.
    """

    def __init__(self, model_path: str | Path, *, n_ctx: int = 8192, n_threads: int | None = None,
                 n_batch: int = 512, seed: int = DEFAULT_SEED, name: str | None = None,
                 lora_path: str | Path | None = None, merge: str | None = None, batch_size: int = DEFAULT_BATCH,
                 slot_ctx: int = DEFAULT_SLOT_CTX) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError:
            raise RuntimeError("the llama.cpp backend needs llama-cpp-python: pip install 'gavel[llama]'") from None
        path = Path(model_path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such GGUF file")
        if batch_size < 1:
            raise ValueError(f"batch size {batch_size}: give 1 (one request at a time) or more")
        threads = n_threads or fixed_threads()
        self.free_cores = None if threads else FreeCores()
        threads = threads or len(self.free_cores.cores)
        if lora_path is not None and not Path(lora_path).is_file():
            raise FileNotFoundError(f"{lora_path}: no such LoRA adapter (GGUF)")
        if lora_path is not None:
            check_adapter(path, Path(lora_path))  # llama.cpp would crash on a bad one
        name = name or path.name + (f" + {Path(lora_path).name}" if lora_path else "") + (
            f" merged as {merge}" if lora_path and merge else "")
        if lora_path is not None and merge is not None:  # one file with the adapter folded in (gavel.backends.merge)
            path, lora_path = merged_gguf(path, Path(lora_path), merge), None
        lora = {"lora_path": str(lora_path)} if lora_path else {}
        with plain_weight_buffers():
            self.llm = Llama(str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=n_batch,
                             seed=seed, logits_all=False, verbose=False, **lora)
        n_ctx_train = int(self.llm.metadata.get(f"{self.llm.metadata.get('general.architecture', 'llama')}"
                                                ".context_length", n_ctx))
        if n_ctx > n_ctx_train:
            self.llm.close()
            with plain_weight_buffers():
                self.llm = Llama(str(path), n_ctx=n_ctx_train, n_threads=threads, n_threads_batch=threads,
                                 n_batch=n_batch, seed=seed, logits_all=False, verbose=False, **lora)
        self.n_ctx = self.llm.n_ctx()
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
        self.batch_size = batch_size
        self.threads = threads
        self.slots: SlotScheduler | None = None
        if batch_size > 1:
            vocab = self.llm._model
            self.slots = SlotScheduler(
                self.llm, slots=batch_size, slot_ctx=min(slot_ctx, self.n_ctx), chunk=self.llm.n_batch,
                n_threads=threads, eos=self._eos, detokenize=lambda token: vocab.detokenize([token]),
                new_text=CritiqueText, solo=self._run_one, pace=self._follow_free_cores)
        self.info = BackendInfo(name=name, kind="llama.cpp", context_length=self.n_ctx,
                                extra={"batch_size": str(batch_size),
                                       "threads": "idle cores" if self.free_cores else str(threads)})
        if self.free_cores is not None:
            self.set_threads(self.free_cores.first_look())

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
        generated = 0
        text = CritiqueText()
        temperature = request.temperature
        for token in self.llm.generate(tokens, temp=temperature, top_k=0 if temperature else 1, top_p=1.0,
                                       min_p=0.0, repeat_penalty=request.repetition_penalty):
            if token in self._eos:
                break
            generated += 1
            if text.add(self.llm.detokenize([token])) or generated >= request.max_new_tokens:
                break
        return *text.result(), generated

    # -- Backend ------------------------------------------------------------------------------------
    def run(self, requests: Sequence[Request]) -> list[Reply]:
        if self.slots is None:
            return [self._run_one(r) for r in requests]
        return [t.reply for t in self.slots.run(self._ticket(r) for r in requests)]

    def stream(self, requests: Iterable[Request]) -> Iterator[Reply]:
        if self.slots is None:
            yield from super().stream(requests)
            return
        for ticket in self.slots.stream(self._ticket(r) for r in requests):
            yield ticket.reply

    def _ticket(self, request: Request) -> Ticket:
        """What the scheduler needs for one request: its tokens, its room, how to finish and read it."""
        prompt = self.render(request.messages)
        tokens = self._encode(prompt)
        fixed = len(self._encode(prompt + continuation("", request.critique)))
        room = fixed + (request.max_new_tokens if request.critique else 0) + 1
        error = None
        if room > self.n_ctx:
            error = Reply(error=str(InputTooLong(len(tokens), len(tokens) + self.n_ctx - room)), input_error=True,
                          prompt_tokens=len(tokens))
        first = self._encode(prompt + (REASONING_TAG if request.critique else continuation("", False)))

        def finish(req: Request, critique: str, _wrote: bool) -> list[int]:
            return self._encode(prompt + continuation(critique, req.critique))

        return Ticket(request, Plan(prompt_tokens=len(tokens), first=first, room=room, finish=finish,
                                    read=self._reply, error=error))

    def _reply(self, request: Request, logits: np.ndarray, critique: str, wrote_tag: bool, generated: int) -> Reply:
        probs = label_probs_from_logits(logits, self._labels(request.labels))
        return Reply(
            text=(REASONING_TAG + critique + (RESULT_TAG if wrote_tag else "")) if request.critique else "",
            label_probs=probs, forced=request.critique and not wrote_tag, completion_tokens=generated + 1,
        )

    def _follow_free_cores(self) -> None:
        """One thread per core other processes leave idle, unless the user fixed the number."""
        if self.free_cores is not None:
            threads = self.free_cores.look()
            if threads != self.threads:
                self.set_threads(threads)

    def set_threads(self, n: int) -> None:
        """Threads for the next forward passes (of the batched context too)."""
        import llama_cpp

        self.threads = n
        llama_cpp.llama_set_n_threads(self.llm.ctx, n, n)
        if self.slots is not None:
            self.slots.set_threads(n)

    def _run_one(self, request: Request) -> Reply:
        """The one-at-a-time path: generate in the high-level context, then read the verdict."""
        self._follow_free_cores()
        start = time.perf_counter()
        plan = self._ticket(request).plan
        if plan.error is not None:
            return plan.error
        try:
            critique, wrote_tag, generated = "", False, 0
            if request.critique:
                critique, wrote_tag, generated = self._generate(plan.first, request)
            final = plan.finish(request, critique, wrote_tag)
            if len(final) >= self.n_ctx:  # re-tokenising the critique took more room than generating it
                raise InputTooLong(plan.prompt_tokens, plan.prompt_tokens + self.n_ctx - len(final) - 1)
            reply = self._reply(request, self._next_token_logits(final), critique, wrote_tag, generated)
        except InputTooLong as exc:
            return Reply(error=str(exc), input_error=True, prompt_tokens=plan.prompt_tokens)
        except Exception as exc:  # one bad item must not stop the batch
            return Reply(error=f"llama.cpp: {exc}", prompt_tokens=plan.prompt_tokens)
        reply.prompt_tokens = plan.prompt_tokens
        reply.latency_s = time.perf_counter() - start
        return reply

    def close(self) -> None:
        if self.slots is not None:
            self.slots.close()
            self.slots = None
        self.llm.close()
