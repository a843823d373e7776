"""Mixing: dedup, per-source caps and weights, critique/verdict kinds, pairs in both orders.

All randomness comes from ``random.Random`` seeded by the config seed (and the item id where a choice
belongs to one item), so a rerun with the same config selects the same items and the same teacher calls.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass

from gavel.curate.config import CurateConfig
from gavel.curate.sources import Item
from gavel.curate.teacher import wrong_label
from gavel.judge.records import JudgeRecord, Task
from gavel.judge.templates import TemplateSet
from gavel.labels import Mode, answer_text, is_pair_label, swap_label


def item_rng(seed: int, item_id: str) -> random.Random:
    return random.Random(f"{seed}:{item_id}")


def rejected_label(seed: int, item: Item) -> str:
    """The plausible wrong verdict for an item (fixed per item, so teacher and pair agree)."""
    assert item.record.label is not None
    return wrong_label(item.record.task, item.record.label, item_rng(seed, item.id))


def _key(record: JudgeRecord) -> tuple:
    norm = lambda t: " ".join((t or "").lower().split())  # noqa: E731
    pair = sorted((norm(record.response_a), norm(record.response_b)))
    return (record.task.value, norm(record.instruction), norm(record.response), *pair)


def dedup(items: list[Item]) -> tuple[list[Item], int]:
    """Drop items whose task, instruction and response(s) repeat an earlier item's (either A/B order)."""
    seen: set[tuple] = set()
    kept = []
    for item in items:
        key = _key(item.record)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept, len(items) - len(kept)


def chosen_is_longer(record: JudgeRecord) -> bool | None:
    """Pairwise: whether the gold response has more words than the other; None for a tie or another task."""
    if record.task is not Task.pairwise or not is_pair_label(record.label):
        return None
    a, b = len((record.response_a or "").split()), len((record.response_b or "").split())
    return None if a == b else (a > b) == (record.label == "A")


def length_balanced(items: list[Item], rng: random.Random) -> list[Item]:
    """The items with as many chosen-is-longer pairwise items as chosen-is-shorter ones (a seeded sample of
    the larger group); other items are all kept."""
    groups: dict[bool | None, list[Item]] = defaultdict(list)
    for item in items:
        groups[chosen_is_longer(item.record)].append(item)
    n = min(len(groups[True]), len(groups[False]))
    kept = groups[None]
    for longer in (True, False):
        kept += rng.sample(groups[longer], n)
    return sorted(kept, key=lambda i: i.id)


def _balanced_order(items: list[Item], rng: random.Random, labels: bool, length: bool = False) -> list[Item]:
    """Shuffled, then interleaved across gold labels and/or chosen-is-longer groups so a cap keeps them even."""
    items = list(items)
    rng.shuffle(items)
    if not (labels or length):
        return items
    groups: dict[tuple, list[Item]] = defaultdict(list)
    for item in items:
        groups[(item.record.label or "" if labels else "", str(chosen_is_longer(item.record)) if length else "")
               ].append(item)
    order, queues = [], [groups[k] for k in sorted(groups)]
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop())
    return order


def allocate(available: dict[str, int], weights: dict[str, float], caps: dict[str, int | None],
             total: int | None) -> dict[str, int]:
    """Items per source: shares of `total` by weight (water-filling over caps and availability)."""
    limit = {s: min(available[s], caps[s]) if caps[s] is not None else available[s] for s in available}
    if total is None:
        return limit
    counts = dict.fromkeys(available, 0)
    remaining = min(total, sum(limit.values()))
    while remaining > 0:
        open_sources = [s for s in available if counts[s] < limit[s]]
        weight = sum(weights[s] for s in open_sources)
        given = 0
        for s in sorted(open_sources):
            share = max(1, int(remaining * weights[s] / weight))
            add = min(share, limit[s] - counts[s], remaining - given)
            counts[s] += add
            given += add
            if given >= remaining:
                break
        remaining -= given
        if given == 0:
            break
    return counts


def select(items: list[Item], config: CurateConfig) -> dict[str, list[Item]]:
    """The items each source contributes, in a seeded, label-balanced order."""
    by_source: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_source[item.source].append(item)
    names = sorted(by_source)
    for s in names:
        if config.sources[s].balance_length:
            by_source[s] = length_balanced(by_source[s], random.Random(f"{config.seed}:{s}:length"))
    counts = allocate({s: len(by_source[s]) for s in names}, {s: config.sources[s].weight for s in names},
                      {s: config.sources[s].cap for s in names}, config.mix.total)
    chosen = {}
    for s in names:
        source = config.sources[s]
        order = _balanced_order(sorted(by_source[s], key=lambda i: i.id), random.Random(f"{config.seed}:{s}"),
                                source.balance_labels, source.balance_length)
        chosen[s] = order[:counts[s]]
    return chosen


def assign_kinds(selected: dict[str, list[Item]], config: CurateConfig) -> dict[str, str]:
    """item id -> "critique" | "verdict": the configured ratio per source, items with a trusted critique first."""
    kinds = {}
    for s, items in selected.items():
        ratio = config.sources[s].critique_ratio
        n_critique = round((config.mix.critique_ratio if ratio is None else ratio) * len(items))
        trusted = config.sources[s].use_source_critique
        ranked = sorted(items, key=lambda i: (not (trusted and i.critique), item_rng(config.seed, i.id).random()))
        for rank, item in enumerate(ranked):
            kinds[item.id] = (Mode.critique if rank < n_critique else Mode.verdict).value
    return kinds


# -- pairs -----------------------------------------------------------------------------------------------
_POSITION = re.compile(r"\b(Response|Assistant|Output) ([AB])\b")


def swap_positions(text: str) -> str:
    """Exchange "Response A" and "Response B" (and Assistant/Output A/B) in a pairwise critique."""
    return _POSITION.sub(lambda m: f"{m.group(1)} {'B' if m.group(2) == 'A' else 'A'}", text)


@dataclass(frozen=True)
class Pair:
    id: str
    source: str
    task: str
    kind: str
    record: JudgeRecord
    chosen_label: str
    rejected_label: str
    chosen_critique: str | None
    rejected_critique: str | None
    swapped: bool = False

    def flipped(self) -> Pair:
        swap = lambda t: None if t is None else swap_positions(t)  # noqa: E731
        return Pair(id=self.id + ":swapped", source=self.source, task=self.task, kind=self.kind,
                    record=self.record.swapped(), chosen_label=swap_label(self.chosen_label),
                    rejected_label=swap_label(self.rejected_label), chosen_critique=swap(self.chosen_critique),
                    rejected_critique=swap(self.rejected_critique), swapped=True)

    def row(self, templates: TemplateSet) -> dict:
        """The exported row (CONTRACT.md): TRL conversational preference format plus metadata."""
        mode = Mode(self.kind)
        prompt, _ = templates.render(self.record, mode)
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": answer_text(self.chosen_label, self.chosen_critique)}],
            "rejected": [{"role": "assistant", "content": answer_text(self.rejected_label, self.rejected_critique)}],
            "id": self.id, "source": self.source, "task": self.task, "kind": self.kind, "mode": mode.value,
            "chosen_label": self.chosen_label, "rejected_label": self.rejected_label, "swapped": self.swapped,
        }


def with_orders(pairs: list[Pair], both_orders: bool) -> list[Pair]:
    out = []
    for pair in pairs:
        out.append(pair)
        if both_orders and pair.task == Task.pairwise.value:
            out.append(pair.flipped())
    return out
