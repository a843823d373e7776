"""Reading `**Reasoning:** ... **Result:** X` out of a judge's output: strict first, then tolerant.

Strict: the first ``**Result:** X`` line (the verdict the critique leads to; anything after it may be
quoted text). Two strict tags with different labels make the reading ``conflict``: at best tolerant.
Tolerant: only a verdict-shaped last line ("Result: yes", "[RESULT] 3", "Score: 4/5"): a result-like key
followed by the label alone. Prose such as "The answer: a capital city" is never read as a verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gavel.labels import REASONING_WORD, RESULT_TAG, RESULT_WORD, Task, canonical_label

_STRICT_RESULT = re.compile(re.escape(RESULT_TAG) + r"[ \t]*([A-Za-z0-9]+)[ \t]*$", re.MULTILINE)
# Tolerant: one whole line. Optional markdown around "Result"/"Verdict"/"Score"/"Answer"/..., any case,
# ":" or "-" or "=", or a bracketed tag ("[RESULT] 3"); then the value alone, optionally bracketed, quoted
# or bold, "Response A", "4/5", "4 out of 5", a trailing period.
_TOLERANT_LINE = re.compile(
    r"""(?:.*?[.!?:]\s+)??                                  # a sentence may precede a bracketed tag
        (?:\*\*|__|\#+\s*)?\[?\s*(?:final\s+)?(?:{result}|verdict|score|answer|judg(?:e)?ment|decision)\s*
        (?:\][ \t]*[:\-=]?|(?:\*\*|__)?\s*[:\-=])\s*(?:\*\*|__)?\s*
        [\[\("'`*]*\s*(?:response|output|assistant)?\s*
        (?P<value>[A-Za-z]+|\d(?:\.\d+)?)
        \s*(?:/\s*5|out\s+of\s+5)?[\]\)"'`*]*\s*\.?\s*""".replace("{result}", RESULT_WORD.lower()),
    re.IGNORECASE | re.VERBOSE,
)
# A critique runs from the reasoning tag (any spelling) to the bold result tag (any spelling); without a
# reasoning tag, everything before the result tag or a plain ``Result:``.
_REASONING = re.compile(rf"\*\*{REASONING_WORD}:?\*\*:?\s*(.*?)(?=\*\*{RESULT_WORD}|\Z)", re.DOTALL | re.IGNORECASE)
_BEFORE_RESULT = re.compile(rf"\*\*{RESULT_WORD}|\b{RESULT_WORD}\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    result: str | None
    critique: str | None
    strict: bool
    conflict: bool = False  # the text holds result tags with different labels


def extract_critique(text: str) -> str | None:
    match = _REASONING.search(text)
    if match:
        return match.group(1).strip() or None
    before = _BEFORE_RESULT.split(text, maxsplit=1)[0].strip()
    return before or None


def tolerant_result(task: Task, text: str) -> str | None:
    """The label on the last non-blank line when that line is verdict-shaped, else None."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    match = _TOLERANT_LINE.fullmatch(lines[-1].strip())
    return canonical_label(task, match.group("value")) if match else None


def parse_output(task: Task, text: str) -> Parsed:
    """Parse a judge output: the first strict `**Result:** X` line, else a verdict-shaped last line."""
    critique = extract_critique(text)
    labels = [label for m in _STRICT_RESULT.finditer(text)
              if (label := canonical_label(task, m.group(1))) is not None]
    if labels:
        conflict = len(set(labels)) > 1
        return Parsed(result=labels[0], critique=critique, strict=not conflict, conflict=conflict)
    return Parsed(result=tolerant_result(task, text), critique=critique, strict=False)
