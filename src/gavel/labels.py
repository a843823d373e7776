"""The answer convention every layer shares: the tags a judge writes, the answer format, the two modes,
tasks and their labels (how they are spelled, swapped and opposed, the gold-only tie), which statuses carry
a verdict, the metric each task is ranked by, and RewardBench's sections.

One definition each; backends, parsing, templates, the bench metrics, curation and training import them from
here. To change the result tag, edit ``RESULT_WORD`` (every tag, stop string and parsing pattern follows).
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Task(str, Enum):
    absolute = "absolute"
    classification = "classification"
    pairwise = "pairwise"


class Mode(str, Enum):
    """critique: reasoning then the result; verdict: the result alone (one forward pass on local backends)."""

    critique = "critique"
    verdict = "verdict"


#: The words of the two tags a judge writes: ``**Reasoning:** <critique>`` then ``**Result:** <verdict>``.
REASONING_WORD = "Reasoning"
RESULT_WORD = "Result"
REASONING_TAG = f"**{REASONING_WORD}:**"
RESULT_TAG = f"**{RESULT_WORD}:**"
#: Where generation of a critique stops (the tag, and its common misspelling with the colon outside the bold),
#: so the verdict can be scored as a distribution.
RESULT_STOPS = (RESULT_TAG, f"**{RESULT_WORD}**:")
#: Between the critique and the result tag.
ANSWER_SEPARATOR = "\n\n"


def answer_text(label: str | None, critique: str | None = None, *, verbatim: bool = False) -> str:
    """The answer format: ``**Reasoning:** <critique>\n\n**Result:** <label>``, or the result alone.

    With ``label`` None the text ends at the result tag (where a backend reads the verdict distribution).
    ``verbatim`` keeps the critique exactly as generated after the reasoning tag (its own leading space);
    otherwise it is stripped and set one space after the tag. Training pairs, the prompt's format
    instruction and the local backends' continuation are all built here.
    """
    result = RESULT_TAG if label is None else f"{RESULT_TAG} {label}"
    if critique is None:
        return result
    body = critique if verbatim else f" {critique.strip()}"
    return f"{REASONING_TAG}{body}{ANSWER_SEPARATOR}{result}"


class Status(str, Enum):
    """How a verdict was obtained. Only the first four carry a result."""

    ok = "ok"  # the model wrote `**Result:** X` and the strict parser read it
    tolerant = "tolerant"  # the model wrote the result in a non-canonical form that the tolerant parser read
    forced = "forced"  # the model wrote no result; it was read from the label distribution at `**Result:**`
    logits = "logits"  # verdict mode: read from the label distribution at `**Result:**`, nothing generated
    parse_failed = "parse_failed"  # no result could be read; raw output kept
    error = "error"  # the backend failed for this item


#: The statuses whose result counts as the judge's verdict.
SCORED: tuple[Status, ...] = (Status.ok, Status.tolerant, Status.forced, Status.logits)

#: The verdicts a judge may give, per task, in the order their probabilities are reported.
LABELS: dict[Task, tuple[str, ...]] = {
    Task.absolute: ("1", "2", "3", "4", "5"),
    Task.classification: ("Yes", "No"),
    Task.pairwise: ("A", "B"),
}

#: The metric each task type is ranked by (the paper's choice); others are reported beside it.
PRIMARY_METRIC: dict[Task, str] = {
    Task.absolute: "pearson",
    Task.classification: "accuracy",
    Task.pairwise: "accuracy",
}

#: Gold-only pairwise label: neither response is better (never a verdict).
TIE = "tie"

_YES = ("yes", "true", "1", "1.0", "supported")
_NO = ("no", "false", "0", "0.0", "unsupported", "not supported")


def is_scored(status: Status | str) -> bool:
    """True when a result with this status is the judge's verdict."""
    return Status(status) in SCORED


def is_pair_label(label: str | None) -> bool:
    """True for a pairwise verdict (A or B); False for a tie or no label."""
    return label in LABELS[Task.pairwise]


def opposite(task: Task, label: str) -> str:
    """The other verdict of a two-label task (A <-> B, Yes <-> No); ValueError for a 1-5 score or a non-label."""
    labels = LABELS[task]
    if len(labels) != 2 or label not in labels:
        raise ValueError(f"{label!r} has no opposite in task {task.value}")
    return labels[1] if label == labels[0] else labels[0]


def swap_label(label: str | None) -> str | None:
    """A pairwise label seen from the other order: A <-> B; anything else (tie, None) unchanged."""
    return opposite(Task.pairwise, label) if is_pair_label(label) else label


def yes_no(value: Any) -> str:
    """A binary value (bool, 1/0, true/false, yes/no, supported/unsupported) as ``Yes``/``No``; else ValueError."""
    text = str(value).strip().lower()
    if text in _YES:
        return "Yes"
    if text in _NO:
        return "No"
    raise ValueError(f"{value!r} is not a yes/no label")


def canonical_label(task: Task, value: str) -> str | None:
    """The allowed verdict a raw value spells (``" yes."`` -> ``Yes``, ``"4.0"`` -> ``4``), or None."""
    text = value.strip().strip(".").strip()
    if task is Task.absolute:
        return _score(text)
    return next((label for label in LABELS[task] if text.lower() == label.lower()), None)


def _score(text: str) -> str | None:
    """``"4"``, ``"4.0"`` -> ``"4"``; None when the text is not a whole number from 1 to 5."""
    try:
        number = float(text)
    except ValueError:
        return None
    return str(int(number)) if number.is_integer() and 1 <= number <= 5 else None


def normalise_label(task: Task, label: str) -> str:
    """A gold label in its canonical spelling (verdicts, plus ``tie`` for pairwise), or ValueError."""
    text = label.strip()
    if task is Task.absolute:
        found = _score(text)
        if found is None:
            raise ValueError(f"field 'label': {label!r} is not a score from 1 to 5")
        return found
    if task is Task.classification:
        try:
            return yes_no(text)
        except ValueError:
            raise ValueError(f"field 'label': {label!r} is not one of ['No', 'Yes']") from None
    if text.lower() == TIE:
        return TIE
    found = next((x for x in LABELS[task] if text.lower() == x.lower()), None)
    if found is None:
        raise ValueError(f"field 'label': {label!r} is not one of ['A', 'B', 'tie']")
    return found


#: RewardBench's four sections and the official example count of each subset (the section weights).
REWARDBENCH_SECTIONS: dict[str, dict[str, int]] = {
    "chat": {
        "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95,
        "mt-bench-easy": 28, "mt-bench-med": 40,
    },
    "chat_hard": {
        "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
        "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    },
    "safety": {
        "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
        "xstest-should-respond": 250, "donotanswer": 136,
    },
    "reasoning": {
        "math-prm": 984, "hep-cpp": 164, "hep-go": 164, "hep-java": 164,
        "hep-js": 164, "hep-python": 164, "hep-rust": 164,
    },
}


def rewardbench_section(subset: str) -> str | None:
    """The RewardBench section a subset belongs to, or None."""
    return next((name for name, subsets in REWARDBENCH_SECTIONS.items() if subset in subsets), None)


__all__ = [
    "ANSWER_SEPARATOR",
    "LABELS",
    "PRIMARY_METRIC",
    "REASONING_TAG",
    "REASONING_WORD",
    "RESULT_STOPS",
    "RESULT_TAG",
    "RESULT_WORD",
    "REWARDBENCH_SECTIONS",
    "SCORED",
    "TIE",
    "Mode",
    "Status",
    "Task",
    "answer_text",
    "canonical_label",
    "is_pair_label",
    "is_scored",
    "normalise_label",
    "opposite",
    "rewardbench_section",
    "swap_label",
    "yes_no",
]
