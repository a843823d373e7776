"""Backend on vLLM's offline engine (``vllm.LLM``), for judging large batches on a GPU.

Critique mode runs in two steps. First the model writes its critique, stopping at ``**Result:**``
(the tag is appended by us when the model never writes it: ``Reply.forced``). Then the prompt plus
critique plus tag is scored with one more token and its top-20 logprobs, which give the verdict
distribution. Verdict mode is the second step alone, on the prompt followed by ``**Result:**``.

Prompts are rendered with the tokenizer's chat template and sent as token ids, so the scored prefix
is exactly the critique prefix (and no second BOS is added). Needs ``pip install 'gavel[vllm]'``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gavel.backends.base import Backend, BackendInfo, InputTooLong, Reply, Request
from gavel.backends.openai_compat import TOP_LOGPROBS, label_mass
from gavel.labels import RESULT_STOPS, RESULT_TAG
from gavel.settings import DEFAULT_SEED

#: Output room kept for the tag and the verdict token when checking a prompt's length.
TAG_ROOM = 8
INSTALL_HINT = "the vLLM backend needs vllm: pip install 'gavel[vllm]' (Linux with a CUDA GPU)"


def import_vllm() -> Any:
    """The ``vllm`` module, or an ImportError that says how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return vllm


class VLLMBackend(Backend):
    """Judge with ``vllm.LLM``; extra keyword arguments go to the engine (e.g. ``quantization``)."""

    def __init__(
        self,
        model: str,
        max_model_len: int | None = None,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        batch_size: int = 64,
        seed: int = DEFAULT_SEED,
        **engine_kwargs: Any,
    ) -> None:
        vllm = import_vllm()
        engine_kwargs.setdefault("enable_prefix_caching", True)  # the template's opening is shared by every prompt
        self._sampling_params = vllm.SamplingParams
        self.llm = vllm.LLM(
            model=model,
            max_model_len=max_model_len,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            seed=seed,
            **engine_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.context_length = self._context_length() or max_model_len
        self.batch_size = batch_size
        self.info = BackendInfo(name=model, kind="vllm", context_length=self.context_length,
                                extra={"vllm": str(getattr(vllm, "__version__", "?"))})

    def _context_length(self) -> int | None:
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        return getattr(config, "max_model_len", None)

    # ---------------------------------------------------------------- rendering

    def _render(self, request: Request) -> str:
        return self.tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False
        )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _check_length(self, ids: list[int], request: Request) -> None:
        room = TAG_ROOM + (request.max_new_tokens if request.critique else 0)
        if self.context_length and len(ids) + room > self.context_length:
            raise InputTooLong(len(ids), self.context_length)

    # ---------------------------------------------------------------- running

    def run(self, requests: Sequence[Request]) -> list[Reply]:
        """Critique (where asked) and score every request that fits; the others get an input error."""
        started = time.perf_counter()
        replies: list[Reply] = [Reply() for _ in requests]
        rendered: dict[int, str] = {}
        for i, request in enumerate(requests):
            try:
                text = self._render(request)
                ids = self._ids(text)
                self._check_length(ids, request)
            except InputTooLong as exc:
                replies[i] = Reply(error=str(exc), input_error=True, prompt_tokens=exc.prompt_tokens)
                continue
            except Exception as exc:
                replies[i] = Reply(error=f"{type(exc).__name__}: {exc}", input_error=True)
                continue
            rendered[i] = text
            replies[i].prompt_tokens = len(ids)
        try:
            self._critique(requests, rendered, replies)
            self._score(requests, rendered, replies)
        except Exception as exc:  # an engine failure fails the batch, never the caller
            for i in rendered:
                replies[i].error = f"{type(exc).__name__}: {exc}"
        per_item = (time.perf_counter() - started) / max(1, len(requests))
        for reply in replies:
            reply.latency_s = per_item
        return replies

    def _critique(self, requests: Sequence[Request], rendered: dict[int, str], replies: list[Reply]) -> None:
        """Generate the critiques, stopping at the result tag; set each reply's text up to the tag."""
        todo = [i for i in rendered if requests[i].critique]
        if not todo:
            for i in rendered:
                replies[i].text = RESULT_TAG
            return
        params = [self._sampling_params(temperature=requests[i].temperature, max_tokens=requests[i].max_new_tokens,
                                        repetition_penalty=requests[i].repetition_penalty, stop=list(RESULT_STOPS))
                  for i in todo]
        prompts = [{"prompt_token_ids": self._ids(rendered[i])} for i in todo]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for i, output in zip(todo, outputs, strict=True):
            replies[i].text, replies[i].forced = continuation(output.outputs[0])
            replies[i].completion_tokens = len(output.outputs[0].token_ids)
        for i in rendered:
            if not requests[i].critique:
                replies[i].text = RESULT_TAG

    def _score(self, requests: Sequence[Request], rendered: dict[int, str], replies: list[Reply]) -> None:
        """One token after the tag: its logprobs give the verdict distribution (a reading, not a sample, so
        it is greedy whatever the request's temperature), its text completes the reply."""
        order = list(rendered)
        if not order:
            return
        prompts = [{"prompt_token_ids": self._ids(rendered[i] + replies[i].text)} for i in order]
        params = self._sampling_params(temperature=0.0, max_tokens=1, logprobs=TOP_LOGPROBS)
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for i, output in zip(order, outputs, strict=True):
            completion = output.outputs[0]
            replies[i].text += completion.text
            replies[i].completion_tokens += len(completion.token_ids)
            top = self._top_tokens(completion.logprobs[0]) if completion.logprobs else []
            replies[i].label_probs = label_mass(top, requests[i].labels)

    def _top_tokens(self, position: dict[int, Any]) -> list[tuple[str, float]]:
        """(token text, logprob) pairs from vLLM's ``{token_id: Logprob}`` map for one position."""
        pairs = []
        for token_id, entry in position.items():
            text = entry.decoded_token
            if text is None:
                text = self.tokenizer.decode([token_id])
            pairs.append((text, float(entry.logprob)))
        return pairs

    def close(self) -> None:
        self.llm = None  # type: ignore[assignment] - lets the engine and its GPU memory be freed


def continuation(completion: Any) -> tuple[str, bool]:
    """The critique followed by the result tag, and whether we had to add the tag ourselves."""
    text = completion.text
    if completion.finish_reason == "stop" and completion.stop_reason in RESULT_STOPS:
        return text + completion.stop_reason, False
    separator = "" if not text or text[-1].isspace() else "\n"
    return text + separator + RESULT_TAG, True
