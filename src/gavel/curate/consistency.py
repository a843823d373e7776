"""Consistency filter: keep a teacher critique only if it reaches the verdict it was asked for.

Every teacher output is read with the engine's own parser (`gavel.judge.parsing.parse_output`). What
counts as reaching a verdict:

- The teacher's verdict is the engine's result for the call: a strict ``**Result:** X`` in the text, else
  the label distribution at ``**Result:**`` (local backends stop generating at the tag and score the next
  token; when the teacher ran out of tokens before writing the tag, the engine appends it: status
  ``forced``). It must equal the target (gold for chosen, the intended wrong verdict for rejected).
- The critique text itself must not state another verdict: no line or sentence of it may be read as a
  different verdict by the engine's tolerant parser ("Score: 2." inside a critique meant for 4).
- Weak teachers are cut off mid-sentence: the critique is trimmed to its last complete sentence; one with
  no complete sentence (or nothing left) does not reach anything and is dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from gavel.judge.parsing import extract_critique, parse_output, tolerant_result
from gavel.judge.records import Task
from gavel.labels import Status

_SENTENCE_END = re.compile(r"[.!?](?:[\"')\]]*)(?=\s|$)")


def trim_to_sentence(text: str) -> str | None:
    """The text up to its last complete sentence, or None when it has none."""
    text = text.strip()
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return None
    return text[:ends[-1].end()].strip() or None


def stated_verdicts(task: Task, text: str) -> set[str]:
    """Verdicts the text states outright: any line or sentence the engine's tolerant parser reads as one
    ("Score: 2.", "Verdict: Response B")."""
    pieces = [p for line in text.splitlines() for p in re.split(r"(?<=[.!?])\s+", line) if p.strip()]
    return {label for p in pieces if (label := tolerant_result(task, p)) is not None}


@dataclass(frozen=True)
class Verdict:
    kept: bool
    critique: str | None
    reason: str  # "kept" or why it was dropped


def check(task: Task, row: dict, target: str) -> Verdict:
    """Judge one cached teacher output row against its target verdict."""
    raw = row.get("raw_output") or ""
    if row.get("status") in (Status.error, Status.parse_failed):
        return Verdict(False, None, f"teacher {row.get('status')}")
    parsed = parse_output(task, raw)
    result = row.get("result")
    if parsed.strict and parsed.result is not None:
        result = parsed.result
    if result != target:
        return Verdict(False, None, "wrong verdict")
    critique = extract_critique(raw) or ""  # ends before the result tag
    stated = stated_verdicts(task, critique)
    if stated - {target}:
        return Verdict(False, None, "critique names another verdict")
    trimmed = trim_to_sentence(critique)
    if trimmed is None:
        return Verdict(False, None, "no complete sentence")
    return Verdict(True, trimmed, "kept")


@dataclass
class ConsistencyReport:
    """Counts per (source, role): checked, kept, and drop reasons; and teacher statuses."""

    checked: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)

    def add(self, source: str, role: str, verdict: Verdict, status: str | None) -> None:
        self.checked[(source, role)] += 1
        self.statuses[(role, status or "-")] += 1
        if verdict.kept:
            self.kept[(source, role)] += 1
        else:
            self.reasons[(source, role, verdict.reason)] += 1

    def drop_rate(self, role: str, source: str | None = None) -> float | None:
        keys = [k for k in self.checked if k[1] == role and (source is None or k[0] == source)]
        total = sum(self.checked[k] for k in keys)
        return None if not total else 1 - sum(self.kept[k] for k in keys) / total

    def as_dict(self) -> dict:
        sources = sorted({s for s, _ in self.checked})
        return {
            "drop_rate": {role: self.drop_rate(role) for role in ("chosen", "rejected")},
            "per_source": {s: {role: {"checked": self.checked[(s, role)], "kept": self.kept[(s, role)],
                                      "drop_rate": self.drop_rate(role, s)}
                               for role in ("chosen", "rejected") if self.checked[(s, role)]} for s in sources},
            "reasons": [{"source": s, "role": r, "reason": why, "count": n}
                        for (s, r, why), n in sorted(self.reasons.items())],
            "teacher_status": [{"role": r, "status": st, "count": n} for (r, st), n in sorted(self.statuses.items())],
        }
