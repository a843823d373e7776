"""Shared logic of backends that see the model's logits (llama.cpp, transformers).

Critique mode: open the assistant turn with ``**Reasoning:**`` and generate until the model writes
``**Result:**`` (or stops, or hits the token limit), then append ``**Result:**`` if it is missing and
read the next-token distribution over the allowed verdicts.
Verdict mode: one forward pass over the prompt followed by ``**Result:**``; nothing is sampled.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Sequence

import numpy as np

from gavel.backends.base import label_variants, normalise
from gavel.labels import RESULT_STOPS, answer_text


def cut_at_result(text: str) -> tuple[str, bool]:
    """Split generated text at the first result tag: (critique part, whether the tag was written)."""
    positions = [(text.find(stop), stop) for stop in RESULT_STOPS if stop in text]
    if not positions:
        return text, False
    index, _ = min(positions)
    return text[:index], True


class CritiqueText:
    """A critique decoded as it is generated: bytes of one token in, the result tag spotted at once.

    Each token costs work in proportion to its own length (no re-detokenising, no rescanning of the text
    so far); the text equals decoding all the bytes at once with errors ignored, an unfinished character
    at the end left out.
    """

    _LOOKBACK = max(map(len, RESULT_STOPS)) - 1

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._parts: list[str] = []
        self._tail = ""  # the last characters so far, where a tag may have begun
        self._length = 0
        self._cut: int | None = None

    def add(self, piece: bytes) -> bool:
        """Append one token's bytes; True once the text holds a result tag."""
        new = self._decoder.decode(piece)
        if not new:
            return False
        window = self._tail + new
        found = [i for i in (window.find(stop) for stop in RESULT_STOPS) if i >= 0]
        self._parts.append(new)
        self._length += len(new)
        if found:
            self._cut = self._length - len(window) + min(found)
            return True
        self._tail = window[-self._LOOKBACK:]
        return False

    def result(self) -> tuple[str, bool]:
        """(critique up to the tag, whether the tag was written)."""
        text = "".join(self._parts)
        return (text, False) if self._cut is None else (text[:self._cut], True)


def continuation(critique_text: str, critique_mode: bool) -> str:
    """Assistant text after which the verdict token is read."""
    return answer_text(None, critique_text.rstrip(), verbatim=True) if critique_mode else answer_text(None)


def label_token_ids(labels: Sequence[str], encode) -> dict[str, list[int]]:
    """For each label, the ids of single tokens that spell it (with or without a leading space)."""
    ids: dict[str, list[int]] = {}
    for label in labels:
        found = []
        for form in label_variants(label):
            tokens = encode(form)
            if len(tokens) == 1 and tokens[0] not in found:
                found.append(tokens[0])
        if not found:
            raise ValueError(f"verdict {label!r} is not a single token for this tokenizer")
        ids[label] = found
    return ids


def label_probs_from_logits(logits: np.ndarray, ids: dict[str, list[int]]) -> dict[str, float]:
    """Distribution over labels from full-vocabulary logits, normalised over the labels."""
    logits = logits.astype(np.float64)
    top = float(logits.max())
    log_z = top + math.log(float(np.exp(logits - top).sum()))
    per_label = {}
    for label, token_ids in ids.items():
        values = logits[token_ids] - log_z
        m = float(values.max())
        per_label[label] = m + math.log(float(np.exp(values - m).sum()))
    return normalise(per_label)
