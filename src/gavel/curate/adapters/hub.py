"""Sources read from the Hugging Face hub (``datasets``), or from a local copy in the hub's row layout.

The local copy is ``<data root>/hub/<source name>.jsonl`` (or ``.parquet``, or a saved dataset folder).
No hub is reachable in the development sandbox, so each mapping is tested on small local fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from gavel.curate.sources import Yielded, make_item, register, row_error
from gavel.data import LoadContext
from gavel.io import DataUnavailable, iter_jsonl, load_hub_or_local
from gavel.judge.records import Task

RowMapper = Callable[[str, Path, int, dict], Yielded]


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
                author: str | None, config: str | None = None) -> Callable[[RowMapper], RowMapper]:
    """Register a hub source whose rows are mapped one by one by the decorated function."""

    def wrap(mapper: RowMapper) -> RowMapper:
        def adapter(ctx: LoadContext) -> Iterator[Yielded]:
            for where, number, row, error in _rows(ctx, name, hub_id, config, split):
                if error is not None:
                    yield row_error(name, where, number, error)
                    continue
                try:
                    yield mapper(name, where, number, row)
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                    yield row_error(name, where, number, f"unexpected row layout: {type(exc).__name__}: {exc}")

        register(name, tasks, description, hub_id=hub_id, critique_author=author, local=False)(adapter)
        return mapper

    return wrap


def _rubric_from_prometheus(row: dict) -> dict:
    rubric = {"objective": row["orig_criteria"]}
    for i in range(1, 6):
        if row.get(f"orig_score{i}_description"):
            rubric[f"score{i}"] = row[f"orig_score{i}_description"]
    return rubric


@_hub_source("prometheus-feedback", "prometheus-eval/Feedback-Collection", "train", (Task.absolute,),
             "Prometheus Feedback Collection: GPT-4 feedback with 1-5 scores on custom rubrics", "gpt-4")
def prometheus_feedback(name: str, path: Path, number: int, row: dict) -> Yielded:
    return make_item(name, path, number, critique=row.get("orig_feedback"), author="gpt-4",
                     id=f"{name}-{number}", task="absolute", instruction=row["orig_instruction"],
                     response=row["orig_response"], reference=row.get("orig_reference_answer"),
                     rubric=_rubric_from_prometheus(row), label=row["orig_score"])


@_hub_source("prometheus-preference", "prometheus-eval/Preference-Collection", "train", (Task.pairwise,),
             "Prometheus Preference Collection: GPT-4 pairwise feedback on custom rubrics", "gpt-4")
def prometheus_preference(name: str, path: Path, number: int, row: dict) -> Yielded:
    return make_item(name, path, number, critique=row.get("orig_feedback"), author="gpt-4",
                     id=f"{name}-{number}", task="pairwise", instruction=row["orig_instruction"],
                     response_a=row["orig_response_A"], response_b=row["orig_response_B"],
                     reference=row.get("orig_reference_answer"), rubric=row["orig_criteria"],
                     label=row["orig_preference"])


@_hub_source("ultrafeedback", "openbmb/UltraFeedback", "train", (Task.absolute,),
             "UltraFeedback: GPT-4 1-5 helpfulness ratings with rationales, one item per completion", "gpt-4")
def ultrafeedback(name: str, path: Path, number: int, row: dict) -> Yielded:
    # one item per row: the first completion with a numeric helpfulness rating
    for index, completion in enumerate(row["completions"]):
        note = completion.get("annotations", {}).get("helpfulness") or {}
        rating = note.get("Rating")
        if isinstance(rating, str) and rating.isdigit():
            return make_item(name, path, number, critique=note.get("Rationale"), author="gpt-4",
                             id=f"{name}-{number}-{index}", task="absolute", instruction=row["instruction"],
                             response=completion["response"], label=int(rating),
                             rubric="How helpful and informative is the response for the instruction?")
    return row_error(name, path, number, "no completion with a numeric helpfulness rating", field="completions")


def _split_hh(text: str) -> tuple[str, str]:
    """HH-RLHF dialogues: everything before the last Assistant turn is the prompt."""
    head, _, last = text.rpartition("\n\nAssistant:")
    if not head:
        raise ValueError("no Assistant turn")
    return head.strip(), last.strip()


@_hub_source("hh-rlhf", "Anthropic/hh-rlhf", "train", (Task.pairwise,),
             "HH-RLHF: human preference between two assistant replies", None)
def hh_rlhf(name: str, path: Path, number: int, row: dict) -> Yielded:
    prompt_a, chosen = _split_hh(row["chosen"])
    prompt_b, rejected = _split_hh(row["rejected"])
    if prompt_a != prompt_b:
        return row_error(name, path, number, "chosen and rejected dialogues differ before the last reply",
                         field="rejected")
    a_first = number % 2 == 0  # alternate the position of the preferred reply
    return make_item(name, path, number, id=f"{name}-{number}", task="pairwise", instruction=prompt_a,
                     response_a=chosen if a_first else rejected, response_b=rejected if a_first else chosen,
                     label="A" if a_first else "B")


@_hub_source("offsetbias", "NCSOFT/offsetbias", "train", (Task.pairwise,),
             "OffsetBias: pairs built to counter judge biases (length, tone, ...)", None)
def offsetbias(name: str, path: Path, number: int, row: dict) -> Yielded:
    return make_item(name, path, number, id=f"{name}-{number}", task="pairwise", instruction=row["instruction"],
                     response_a=row["output_1"], response_b=row["output_2"],
                     label={1: "A", 2: "B"}.get(int(row["label"])))


@_hub_source("judgelm", "BAAI/JudgeLM-100K", "train", (Task.pairwise,),
             "JudgeLM: GPT-4 pairwise scores (1-10 each) with an explanation", "gpt-4")
def judgelm(name: str, path: Path, number: int, row: dict) -> Yielded:
    first, second = (float(s) for s in row["score"])
    if first == second:
        return row_error(name, path, number, f"scores {row['score']!r}: tie", field="score")
    text = row.get("text") or ""
    explanation = text.split("\n", 1)[1] if "\n" in text else None
    if explanation:
        from gavel.curate.adapters.vicuna80 import rename_assistants

        explanation = rename_assistants(explanation)
    return make_item(name, path, number, critique=explanation, author="gpt-4",
                     id=f"{name}-{row.get('question_id', number)}", task="pairwise",
                     instruction=row["question_body"], response_a=row["answer1_body"],
                     response_b=row["answer2_body"], reference=(row.get("reference") or {}).get("text"),
                     label="A" if first > second else "B")


@_hub_source("pandalm", "WeOpenML/PandaLM-train", "train", (Task.pairwise,),
             "PandaLM: pairwise verdicts (1, 2 or Tie) with a reason", "gpt-3.5-turbo")
def pandalm(name: str, path: Path, number: int, row: dict) -> Yielded:
    verdict, _, reason = row["output_sequence"].partition("\n")
    label = {"1": "A", "2": "B"}.get(verdict.strip())
    if label is None:
        return row_error(name, path, number, f"verdict {verdict.strip()!r}: not 1 or 2", field="output_sequence")
    instruction = row["input_sequence"]
    return make_item(name, path, number, critique=reason.replace("Reason:", "").strip() or None,
                     author="gpt-3.5-turbo", id=f"{name}-{number}", task="pairwise", instruction=instruction,
                     response_a=row["response1"], response_b=row["response2"], label=label)


@_hub_source("autoj-pairwise", "GAIR/autoj-pairwise", "train", (Task.pairwise,),
             "Auto-J pairwise training data: GPT-4 comparisons (not in the local snapshot)", "gpt-4")
def autoj_pairwise(name: str, path: Path, number: int, row: dict) -> Yielded:
    label = {0: "A", 1: "B"}.get(int(row["label"]))
    if label is None:
        return row_error(name, path, number, f"label {row['label']!r}: a tie", field="label")
    return make_item(name, path, number, critique=row.get("target_output"), author="gpt-4", id=f"{name}-{number}",
                     task="pairwise", instruction=row["prompt"], response_a=row["response 1"],
                     response_b=row["response 2"], label=label)
