"""Sources read from the Hugging Face hub (``datasets``), or from a local copy in the hub's row layout.

The local copy is ``<data root>/hub/<source name>.jsonl`` (or ``.parquet``, or a saved dataset folder).
No hub is reachable in the development sandbox, so each mapping is tested on small local fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from gavel.curate.sources import Item, SourceRow, Yielded, make_item, parse_row, register, row_error
from gavel.data import LoadContext, place_pair
from gavel.io import DataUnavailable, iter_jsonl, load_hub_or_local
from gavel.judge.records import RowError, Task

RowMapper = Callable[[str, Path, int, Any], Yielded]


def _local(ctx: LoadContext, name: str) -> list[Path]:
    if ctx.data_root is None:
        return []
    folder = ctx.data_root / "hub"
    return [folder / f"{name}.jsonl", folder / f"{name}.parquet", folder / name]


def _rows(ctx: LoadContext, name: str, hub_id: str, config: str | None, split: str
          ) -> Iterator[tuple[Path, int, dict | None, str | None]]:
    """(where, row number, row, error): a local JSONL line by line (a bad line is an error, not fatal),
    else a local Parquet/saved dataset or the hub through ``load_hub_or_local``."""
    local = _local(ctx, name)
    if local and local[0].is_file():
        for number, row, error in iter_jsonl(local[0]):
            yield local[0], number, row, error
        return
    try:
        rows = load_hub_or_local(hub_id, config, split, local[1:])
    except DataUnavailable as exc:
        yield Path(hub_id), 0, None, f"source unavailable: {exc}"
        return
    where = next((p for p in local[1:] if p.exists()), Path(f"hf:{hub_id}"))
    for number, row in enumerate(rows, start=1):
        yield where, number, row, None


def _hub_source(name: str, hub_id: str, split: str, tasks: tuple[Task, ...], description: str,
                author: str | None, row: type[SourceRow], config: str | None = None, placed: bool = False
                ) -> Callable[[RowMapper], RowMapper]:
    """Register a hub source whose rows are validated as `row` and mapped one by one by the decorated function.

    ``placed``: the mapper builds each pair better-first (response A, label A); the pair is then placed at A or B
    by :func:`gavel.data.place_pair`."""

    def wrap(mapper: RowMapper) -> RowMapper:
        def adapter(ctx: LoadContext) -> Iterator[Yielded]:
            for where, number, raw, error in _rows(ctx, name, hub_id, config, split):
                if error is not None:
                    yield row_error(name, where, number, error)
                    continue
                parsed = parse_row(row, name, where, number, raw)
                item = parsed if isinstance(parsed, RowError) else mapper(name, where, number, parsed)
                yield _place(item, ctx.seed) if placed and isinstance(item, Item) else item

        register(name, tasks, description, hub_id=hub_id, critique_author=author, local=False)(adapter)
        return mapper

    return wrap


def _place(item: Item, seed: int) -> Item:
    record = item.record
    a, b, label = place_pair(record.response_a, record.response_b, item.id, seed)
    return item.model_copy(update={"record": record.model_copy(update={"response_a": a, "response_b": b,
                                                                       "label": label})})


Score = str | int | float  # a gold score as the source writes it; the record checks its range


class PrometheusFeedbackRow(SourceRow):
    orig_instruction: str
    orig_response: str
    orig_reference_answer: str | None = None
    orig_criteria: str
    orig_score1_description: str | None = None
    orig_score2_description: str | None = None
    orig_score3_description: str | None = None
    orig_score4_description: str | None = None
    orig_score5_description: str | None = None
    orig_feedback: str | None = None
    orig_score: Score


@_hub_source("prometheus-feedback", "prometheus-eval/Feedback-Collection", "train", (Task.absolute,),
             "Prometheus Feedback Collection: GPT-4 feedback with 1-5 scores on custom rubrics", "gpt-4",
             PrometheusFeedbackRow)
def prometheus_feedback(name: str, path: Path, number: int, row: PrometheusFeedbackRow) -> Yielded:
    rubric = {"objective": row.orig_criteria} | {
        f"score{i}": text for i in range(1, 6) if (text := getattr(row, f"orig_score{i}_description"))}
    return make_item(name, path, number, critique=row.orig_feedback, author="gpt-4",
                     id=f"{name}-{number}", task="absolute", instruction=row.orig_instruction,
                     response=row.orig_response, reference=row.orig_reference_answer, rubric=rubric,
                     label=row.orig_score)


class PrometheusPreferenceRow(SourceRow):
    orig_instruction: str
    orig_response_A: str
    orig_response_B: str
    orig_reference_answer: str | None = None
    orig_criteria: str
    orig_feedback: str | None = None
    orig_preference: str


@_hub_source("prometheus-preference", "prometheus-eval/Preference-Collection", "train", (Task.pairwise,),
             "Prometheus Preference Collection: GPT-4 pairwise feedback on custom rubrics", "gpt-4",
             PrometheusPreferenceRow)
def prometheus_preference(name: str, path: Path, number: int, row: PrometheusPreferenceRow) -> Yielded:
    return make_item(name, path, number, critique=row.orig_feedback, author="gpt-4",
                     id=f"{name}-{number}", task="pairwise", instruction=row.orig_instruction,
                     response_a=row.orig_response_A, response_b=row.orig_response_B,
                     reference=row.orig_reference_answer, rubric=row.orig_criteria, label=row.orig_preference)


class UltraFeedbackNote(SourceRow):
    Rating: str | int | None = None
    Rationale: str | None = None


class UltraFeedbackAnnotations(SourceRow):
    helpfulness: UltraFeedbackNote | None = None


class UltraFeedbackCompletion(SourceRow):
    response: str
    annotations: UltraFeedbackAnnotations = UltraFeedbackAnnotations()


class UltraFeedbackRow(SourceRow):
    instruction: str
    completions: list[UltraFeedbackCompletion]


@_hub_source("ultrafeedback", "openbmb/UltraFeedback", "train", (Task.absolute,),
             "UltraFeedback: GPT-4 1-5 helpfulness ratings with rationales, one item per completion", "gpt-4",
             UltraFeedbackRow)
def ultrafeedback(name: str, path: Path, number: int, row: UltraFeedbackRow) -> Yielded:
    # one item per row: the first completion with a numeric helpfulness rating
    for index, completion in enumerate(row.completions):
        note = completion.annotations.helpfulness or UltraFeedbackNote()
        if str(note.Rating).isdigit():
            return make_item(name, path, number, critique=note.Rationale, author="gpt-4",
                             id=f"{name}-{number}-{index}", task="absolute", instruction=row.instruction,
                             response=completion.response, label=int(str(note.Rating)),
                             rubric="How helpful and informative is the response for the instruction?")
    return row_error(name, path, number, "no completion with a numeric helpfulness rating", field="completions")


def _split_hh(text: str) -> tuple[str, str] | None:
    """HH-RLHF dialogues: everything before the last Assistant turn is the prompt (None: no Assistant turn)."""
    head, _, last = text.rpartition("\n\nAssistant:")
    return (head.strip(), last.strip()) if head else None


class HHRow(SourceRow):
    chosen: str
    rejected: str


@_hub_source("hh-rlhf", "Anthropic/hh-rlhf", "train", (Task.pairwise,),
             "HH-RLHF: human preference between two assistant replies", None, HHRow, placed=True)
def hh_rlhf(name: str, path: Path, number: int, row: HHRow) -> Yielded:
    first, second = _split_hh(row.chosen), _split_hh(row.rejected)
    if first is None or second is None:
        return row_error(name, path, number, "no Assistant turn", field="chosen" if first is None else "rejected")
    (prompt_a, chosen), (prompt_b, rejected) = first, second
    if prompt_a != prompt_b:
        return row_error(name, path, number, "chosen and rejected dialogues differ before the last reply",
                         field="rejected")
    return make_item(name, path, number, id=f"{name}-{number}", task="pairwise", instruction=prompt_a,
                     response_a=chosen, response_b=rejected, label="A")  # placed by the source


class OffsetBiasRow(SourceRow):
    instruction: str
    output_1: str
    output_2: str
    label: Literal[1, 2]


@_hub_source("offsetbias", "NCSOFT/offsetbias", "train", (Task.pairwise,),
             "OffsetBias: pairs built to counter judge biases (length, tone, ...)", None, OffsetBiasRow)
def offsetbias(name: str, path: Path, number: int, row: OffsetBiasRow) -> Yielded:
    return make_item(name, path, number, id=f"{name}-{number}", task="pairwise", instruction=row.instruction,
                     response_a=row.output_1, response_b=row.output_2, label={1: "A", 2: "B"}[row.label])


class JudgeLMReference(SourceRow):
    text: str | None = None


class JudgeLMRow(SourceRow):
    question_id: str | int | None = None
    question_body: str
    answer1_body: str
    answer2_body: str
    score: tuple[float, float]
    text: str | None = None
    reference: JudgeLMReference | None = None


@_hub_source("judgelm", "BAAI/JudgeLM-100K", "train", (Task.pairwise,),
             "JudgeLM: GPT-4 pairwise scores (1-10 each) with an explanation", "gpt-4", JudgeLMRow)
def judgelm(name: str, path: Path, number: int, row: JudgeLMRow) -> Yielded:
    first, second = row.score
    if first == second:
        return row_error(name, path, number, f"scores {list(row.score)!r}: tie", field="score")
    text = row.text or ""
    explanation = text.split("\n", 1)[1] if "\n" in text else None
    if explanation:
        from gavel.curate.adapters.vicuna80 import rename_assistants

        explanation = rename_assistants(explanation)
    return make_item(name, path, number, critique=explanation, author="gpt-4",
                     id=f"{name}-{row.question_id if row.question_id is not None else number}", task="pairwise",
                     instruction=row.question_body, response_a=row.answer1_body, response_b=row.answer2_body,
                     reference=row.reference.text if row.reference else None, label="A" if first > second else "B")


class PandaLMRow(SourceRow):
    input_sequence: str
    response1: str
    response2: str
    output_sequence: str


@_hub_source("pandalm", "WeOpenML/PandaLM-train", "train", (Task.pairwise,),
             "PandaLM: pairwise verdicts (1, 2 or Tie) with a reason", "gpt-3.5-turbo", PandaLMRow)
def pandalm(name: str, path: Path, number: int, row: PandaLMRow) -> Yielded:
    verdict, _, reason = row.output_sequence.partition("\n")
    label = {"1": "A", "2": "B"}.get(verdict.strip())
    if label is None:
        return row_error(name, path, number, f"verdict {verdict.strip()!r}: not 1 or 2", field="output_sequence")
    return make_item(name, path, number, critique=reason.replace("Reason:", "").strip() or None,
                     author="gpt-3.5-turbo", id=f"{name}-{number}", task="pairwise", instruction=row.input_sequence,
                     response_a=row.response1, response_b=row.response2, label=label)


class AutoJPairwiseRow(SourceRow):
    prompt: str
    response_1: str = Field(alias="response 1")
    response_2: str = Field(alias="response 2")
    label: int
    target_output: str | None = None


@_hub_source("autoj-pairwise", "GAIR/autoj-pairwise", "train", (Task.pairwise,),
             "Auto-J pairwise training data: GPT-4 comparisons (not in the local snapshot)", "gpt-4",
             AutoJPairwiseRow)
def autoj_pairwise(name: str, path: Path, number: int, row: AutoJPairwiseRow) -> Yielded:
    label = {0: "A", 1: "B"}.get(row.label)
    if label is None:
        return row_error(name, path, number, f"label {row.label!r}: a tie", field="label")
    return make_item(name, path, number, critique=row.target_output, author="gpt-4", id=f"{name}-{number}",
                     task="pairwise", instruction=row.prompt, response_a=row.response_1,
                     response_b=row.response_2, label=label)
