"""Hugging Face transformers backend: a local model folder (or a hub id where the hub is reachable).

Prompts go through the tokenizer's own chat template and run in left-padded batches. Verdict mode
keeps only the last position's logits (`logits_to_keep=1`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from gavel.backends.base import Backend, BackendInfo, InputTooLong, Reply, Request
from gavel.backends.local import continuation, cut_at_result, label_probs_from_logits, label_token_ids
from gavel.labels import REASONING_TAG, RESULT_STOPS, RESULT_TAG

_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")


def check_model_source(model: str | Path) -> bool:
    """Fail fast on a model that cannot load; True when it must load from local files only.

    A folder needs a config and weights ("no model files in FOLDER"); a hub id needs the hub, or a copy
    in the local Hugging Face cache ("not a local folder and the hub is unreachable").
    """
    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").exists() or not any(any(path.glob(p)) for p in _WEIGHTS):
            raise ValueError(f"no model files in {path} (expected config.json and *.safetensors or *.bin weights)")
        return True
    from gavel.io import hub_offline

    if not hub_offline():
        return False
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(str(model), "config.json"), str):
        return True
    raise RuntimeError(f"{model}: not a local folder and the hub is unreachable (give a local model folder "
                       "or a .gguf file)")


class TransformersBackend(Backend):
    def __init__(self, model: str | Path, *, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 8, name: str | None = None) -> None:
        local_only = check_model_source(model)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=local_only)
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{model}: the tokenizer has no chat template")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch_dtype,
                                                          local_files_only=local_only).to(self.device).eval()
        self.batch_size = batch_size
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 8192)
        self._label_ids: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self.info = BackendInfo(name=name or str(model), kind="transformers", context_length=self.context_length)

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _labels(self, labels: tuple[str, ...]) -> dict[str, list[int]]:
        if labels not in self._label_ids:
            encode = lambda s: self.tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
            self._label_ids[labels] = label_token_ids(labels, encode)
        return self._label_ids[labels]

    def _batch(self, texts: list[str]):
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)

    def _last_logits(self, texts: list[str]):
        with self.torch.inference_mode():
            out = self.model(**self._batch(texts), logits_to_keep=1)
        return out.logits[:, -1, :].float().cpu().numpy()

    def _generate(self, prompts: list[str], request: Request) -> list[tuple[str, bool, int]]:
        """Critiques for prompts that share `request`'s settings (its token limit is the chunk's largest)."""
        inputs = self._batch(prompts)
        temperature = request.temperature
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        sampling["repetition_penalty"] = request.repetition_penalty
        with self.torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=request.max_new_tokens, stop_strings=list(RESULT_STOPS),
                tokenizer=self.tokenizer, pad_token_id=self.tokenizer.pad_token_id, top_p=None, top_k=None, **sampling,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        results = []
        for row in new_tokens:
            ids = [int(t) for t in row if int(t) != self.tokenizer.pad_token_id]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            critique, wrote_tag = cut_at_result(text)
            results.append((critique, wrote_tag, len(ids)))
        return results

    def run(self, requests: Sequence[Request]) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(requests)
        prompts = [self.render(r.messages) for r in requests]
        lengths = [len(self.tokenizer.encode(p, add_special_tokens=False)) for p in prompts]
        todo = []
        for i, (request, length) in enumerate(zip(requests, lengths, strict=True)):
            # every token the context will hold: prompt, the opener and closing tag, the critique, the verdict
            tail = continuation("", request.critique)
            fixed = len(self.tokenizer.encode(prompts[i] + tail, add_special_tokens=False))
            needed = fixed + (request.max_new_tokens if request.critique else 0) + 1
            if needed > self.context_length:
                replies[i] = Reply(error=str(InputTooLong(length, length + self.context_length - needed)),
                                   input_error=True, prompt_tokens=length)
            else:
                todo.append(i)
        todo.sort(key=lambda i: lengths[i])  # similar lengths together: less padding
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            try:
                for i, reply in zip(chunk, self._run_chunk([requests[i] for i in chunk], [prompts[i] for i in chunk]),
                                    strict=True):
                    reply.prompt_tokens = lengths[i]
                    replies[i] = reply
            except Exception as exc:  # a failing batch marks its items, the others go on
                for i in chunk:
                    replies[i] = Reply(error=f"transformers: {exc}", prompt_tokens=lengths[i])
        return [r for r in replies if r is not None]

    def _run_chunk(self, requests: list[Request], prompts: list[str]) -> list[Reply]:
        start = time.perf_counter()
        critique_mode = requests[0].critique
        generated = [("", False, 0)] * len(requests)
        if critique_mode:
            longest = max(requests, key=lambda r: r.max_new_tokens)
            generated = self._generate([p + REASONING_TAG for p in prompts], longest)
        tails = [continuation(text, critique_mode) for text, _, _ in generated]
        logits = self._last_logits([p + t for p, t in zip(prompts, tails, strict=True)])
        elapsed = (time.perf_counter() - start) / len(requests)
        replies = []
        for request, row, (text, wrote_tag, n_new) in zip(requests, logits, generated, strict=True):
            probs = label_probs_from_logits(row, self._labels(request.labels))
            raw = (REASONING_TAG + text + (RESULT_TAG if wrote_tag else "")) if critique_mode else ""
            replies.append(Reply(text=raw, label_probs=probs, forced=critique_mode and not wrote_tag,
                                 completion_tokens=n_new + 1, latency_s=elapsed))
        return replies

    def close(self) -> None:
        del self.model
