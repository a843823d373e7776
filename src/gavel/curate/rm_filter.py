"""Reward-model filter: score items with any Hugging Face sequence-classification reward model.

Absolute and classification items are scored on (instruction, response); pairwise items by the margin
of the gold-preferred response over the other. Items under their source's threshold are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from gavel.curate.sources import Item
from gavel.judge.records import Task


class RewardModel:
    """A sequence-classification model whose first logit is the reward."""

    def __init__(self, name: str, max_length: int = 1024, batch_size: int = 8) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model = AutoModelForSequenceClassification.from_pretrained(name).eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.max_length = max_length
        self.batch_size = batch_size

    def _text(self, instruction: str, response: str) -> str:
        messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return f"User: {instruction}\n\nAssistant: {response}"

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        scores: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            texts = [self._text(i, r) for i, r in pairs[start:start + self.batch_size]]
            batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                                   max_length=self.max_length)
            with torch.no_grad():
                logits = self.model(**batch).logits
            scores.extend(float(v) for v in logits[:, 0])
        return scores


def item_scores(items: list[Item], score: Callable[[list[tuple[str, str]]], list[float]]) -> list[float]:
    """One reward per item (pairwise: preferred minus other)."""
    flat: list[tuple[str, str]] = []
    for item in items:
        r = item.record
        if r.task is Task.pairwise:
            first, second = (r.response_a, r.response_b) if r.label == "A" else (r.response_b, r.response_a)
            flat += [(r.instruction, first or ""), (r.instruction, second or "")]
        else:
            flat.append((r.instruction, r.response or ""))
    values = iter(score(flat))
    return [next(values) - next(values) if i.record.task is Task.pairwise else next(values) for i in items]


def rm_filter(items: list[Item], model: RewardModel, thresholds: dict[str, float | None]
              ) -> tuple[list[Item], dict[str, int], list[float]]:
    """Items kept, drops per source, and every item's score (in input order)."""
    todo = [i for i in items if thresholds.get(i.source) is not None]
    scores = dict(zip((i.id for i in todo), item_scores(todo, model.score), strict=True))
    kept, dropped = [], {}
    for item in items:
        threshold = thresholds.get(item.source)
        if threshold is not None and scores[item.id] < threshold:
            dropped[item.source] = dropped.get(item.source, 0) + 1
        else:
            kept.append(item)
    return kept, dropped, [scores.get(i.id, float("nan")) for i in items]
