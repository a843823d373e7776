"""Reading `**Reasoning:** ... **Result:** X` out of a judge's output: strict first, then tolerant."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gavel.labels import Task, canonical_label

_STRICT_RESULT = re.compile(r"\*\*Result:\*\*[ \t]*([A-Za-z0-9]+)[ \t]*$", re.MULTILINE)
# Tolerant: optional markdown around "Result"/"Verdict"/"Score"/"Answer", any case, ":" or "-" or "=",
# or a bracketed tag ("[RESULT] 3"),
# optional brackets/quotes/bold around the value, "Response A", "4/5", "4 out of 5", a trailing period.
_TOLERANT_RESULT = re.compile(
    r"""(?:\*\*|__|\#+\s*)?\[?\s*(?:final\s+)?(?:result|verdict|score|answer|judg(?:e)?ment|decision)\s*
        (?:\][ \t]*[:\-=]?|(?:\*\*|__)?\s*[:\-=])\s*(?:\*\*|__)?\s*
        [\[\("'`*]*\s*(?:response|output|assistant)?\s*
        (?P<value>[A-Za-z]+|\d(?:\.\d+)?)
        \s*(?:/\s*5|out\s+of\s+5)?[\]\)"'`*]*\s*\.?""",
    re.IGNORECASE | re.VERBOSE,
)
_REASONING = re.compile(r"\*\*Reasoning:?\*\*:?\s*(.*?)(?=\*\*Result|\Z)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    result: str | None
    critique: str | None
    strict: bool


def extract_critique(text: str) -> str | None:
    match = _REASONING.search(text)
    if match:
        return match.group(1).strip() or None
    before = re.split(r"\*\*Result|\bResult\s*:", text, maxsplit=1, flags=re.IGNORECASE)[0].strip()
    return before or None


def parse_output(task: Task, text: str) -> Parsed:
    """Parse a judge output. The last strict `**Result:** X` line wins; else the last tolerant match."""
    critique = extract_critique(text)
    for match in reversed(list(_STRICT_RESULT.finditer(text))):
        label = canonical_label(task, match.group(1))
        if label is not None:
            return Parsed(result=label, critique=critique, strict=True)
    for match in reversed(list(_TOLERANT_RESULT.finditer(text))):
        label = canonical_label(task, match.group("value"))
        if label is not None:
            return Parsed(result=label, critique=critique, strict=False)
    return Parsed(result=None, critique=critique, strict=False)
