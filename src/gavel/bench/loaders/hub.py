"""Benchmarks whose data lives on the Hugging Face hub, read from a local copy when there is one.

Each loader looks under ``<data_root>/<folder>/`` for ``<stem>.jsonl``, ``<stem>.json`` (an array),
``<stem>.parquet`` or a ``<stem>/`` folder written by ``Dataset.save_to_disk``, in the hub's column
layout; only when none exists and ``HF_HUB_OFFLINE`` is not 1 does it call ``datasets.load_dataset``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from gavel.bench.loaders._util import (
    build_records,
    convert_rows,
    local_candidates,
    round_score,
    text_or_empty,
)
from gavel.bench.registry import LoadContext, register
from gavel.data import place_pair
from gavel.io import load_hub_or_local, load_local_only
from gavel.judge.records import LoadedRow, RowError
from gavel.labels import Task, rewardbench_section

AGGREFACT_RUBRIC = {
    "objective": "Is the claim fully supported by the document?",
    "yes": "Every part of the claim (the response) is supported by the document (the instruction).",
    "no": "Some part of the claim (the response) is not supported by, or contradicts, the document.",
}
INSTRUSUM_RUBRIC = (
    "Which summary better satisfies the summary requirement: it covers the information from the article "
    "that the requirement asks for, leaves out what is irrelevant to it, and stays factually consistent "
    "with the article?"
)
LFQA_RUBRIC = (
    "Which answer better answers the question: more complete, factually correct, relevant and clearly "
    "explained, as a domain expert would judge it?"
)


def unique_ids(rows: list[dict[str, Any] | RowError]) -> list[dict[str, Any] | RowError]:
    """Suffix ``-2``, ``-3``, ... onto repeated ids, in order, so every id is unique (row errors pass)."""
    counts: Counter[str] = Counter()
    for row in rows:
        if isinstance(row, RowError):
            continue
        counts[row["id"]] += 1
        if counts[row["id"]] > 1:
            row["id"] = f"{row['id']}-{counts[row['id']]}"
    return rows


# --- BiGGen Bench ----------------------------------------------------------------------------------


def _biggen_rubric(raw: Any) -> dict[str, str]:
    rubric = json.loads(raw) if isinstance(raw, str) else dict(raw)
    out = {"objective": rubric["criteria"]}
    out.update({f"score{i}": rubric[f"score{i}_description"] for i in range(1, 6)})
    return out


def _biggen_row(_: int, raw: dict[str, Any]) -> dict[str, Any] | None:
    if raw.get("human_score") is None:
        return None
    model = raw.get("response_model_name") or raw.get("model_name") or "model"
    row = {"id": f"biggen-bench-{raw['id']}-{model}", "task": "absolute", "instruction": raw["input"],
           "response": text_or_empty(raw["response"]), "reference": raw.get("reference_answer"),
           "rubric": _biggen_rubric(raw["score_rubric"]), "label": round_score(float(raw["human_score"])),
           "gold_score": float(raw["human_score"]), "response_model": model}
    for key in ("capability", "task", "system_prompt"):
        if raw.get(key) is not None:
            row["biggen_task" if key == "task" else key] = raw[key]
    return row


@register(
    "biggen-bench",
    Task.absolute,
    "BiGGen Bench human evaluation: responses scored 1-5 by humans against instance rubrics",
    suites=("paper",),
    gold="human",
    subsets_field="capability",
)
def load_biggen_bench(ctx: LoadContext) -> list[LoadedRow]:
    """Hub ``prometheus-eval/BiGGen-Bench-Results`` split ``human_eval``.

    Local copy: ``<data_root>/biggen-bench-results/human_eval.{jsonl,json,parquet}`` with the hub's
    columns (``id``, ``capability``, ``task``, ``input``, ``reference_answer``, ``score_rubric`` with
    ``criteria`` and ``score1_description``..``score5_description``, ``response``,
    ``response_model_name`` (or ``model_name``) and ``human_score``). Rows without ``human_score`` are
    dropped. The ``biggen-bench/`` folder holds instances without responses or scores, so it is not used.
    """
    local = local_candidates(ctx, "biggen-bench-results", "human_eval")
    raw_rows = load_hub_or_local("prometheus-eval/BiGGen-Bench-Results", None, "human_eval", local)
    return build_records(unique_ids(convert_rows(raw_rows, _biggen_row, "biggen-bench")), "biggen-bench")


# --- RewardBench -----------------------------------------------------------------------------------


@register(
    "rewardbench",
    Task.pairwise,
    "RewardBench (filtered): chosen vs rejected over chat, chat-hard, safety and reasoning subsets",
    suites=("paper",),
    gold="construction",
    subsets_field="subset",
)
def load_rewardbench(ctx: LoadContext) -> list[LoadedRow]:
    """Hub ``allenai/reward-bench`` split ``filtered`` (2985 pairs, 23 subsets).

    Local copy: ``<data_root>/reward-bench/filtered.{jsonl,json,parquet}`` or a saved dataset folder
    ``filtered/``, columns ``id``, ``prompt``, ``chosen``, ``rejected``, ``chosen_model``,
    ``rejected_model``, ``subset``. The chosen response goes to A or B by a coin seeded on
    ``(ctx.seed, id)``; ``section`` names the RewardBench section of the subset.
    """
    raw_rows = load_hub_or_local("allenai/reward-bench", None, "filtered",
                                 local_candidates(ctx, "reward-bench", "filtered"))

    def row(_: int, raw: dict[str, Any]) -> dict[str, Any]:
        record_id = f"rewardbench-{raw['id']}"
        chosen, rejected = text_or_empty(raw["chosen"]), text_or_empty(raw["rejected"])
        response_a, response_b, label = place_pair(chosen, rejected, record_id, ctx.seed)
        return {"id": record_id, "task": "pairwise", "instruction": raw["prompt"],
                "response_a": response_a, "response_b": response_b, "label": label,
                "subset": raw["subset"], "section": rewardbench_section(raw["subset"]) or "other",
                "chosen_model": raw.get("chosen_model"), "rejected_model": raw.get("rejected_model")}

    return build_records(unique_ids(convert_rows(raw_rows, row, "rewardbench")), "rewardbench")


# --- InFoBench -------------------------------------------------------------------------------------


def _infobench_row(number: int, raw: dict[str, Any]) -> dict[str, Any]:
    instruction = raw["instruction"]
    if raw.get("input"):
        instruction = f"{instruction}\n\n{raw['input']}"
    response = raw.get("output") if raw.get("output") is not None else raw.get("response")
    row = {"id": f"infobench-{raw.get('id', number)}", "task": "classification", "instruction": instruction,
           "response": text_or_empty(response), "rubric": {"objective": raw["question"]},
           "label": raw["label"]}
    for key in ("model", "subset"):
        if raw.get(key) is not None:
            row[key] = raw[key]
    return row


@register(
    "infobench",
    Task.classification,
    "InFoBench expert annotations: does the response satisfy one decomposed requirement (yes/no)",
    suites=("paper",),
    gold="human",
)
def load_infobench(ctx: LoadContext) -> list[LoadedRow]:
    """Local only: ``<data_root>/infobench/expert_annotations.{jsonl,json,parquet}``.

    The hub dataset ``kqsong/InFoBench`` has instructions and decomposed questions but no expert labels
    (those are on Google Drive), so the loader never asks the hub. One row per (response, question):
    ``instruction``, optional ``input`` (appended to the instruction), ``output`` (or ``response``),
    ``question`` (the decomposed requirement; it becomes the rubric objective), ``label`` (Yes/No,
    1/0 or true/false), optional ``id``, ``model`` and ``subset`` (e.g. easy/hard).
    """
    local = local_candidates(ctx, "infobench", "expert_annotations")
    raw_rows = load_local_only(local, "train", "the hub copy kqsong/InFoBench has no expert labels")
    return build_records(unique_ids(convert_rows(raw_rows, _infobench_row, "infobench")), "infobench")


# --- LLM-AggreFact ---------------------------------------------------------------------------------


@register(
    "llm-aggrefact",
    Task.classification,
    "LLM-AggreFact: is the claim grounded in the document (10+ fact-checking sets)",
    suites=("paper",),
    gold="human",
    subsets_field="dataset",
)
def load_llm_aggrefact(ctx: LoadContext) -> list[LoadedRow]:
    """Hub ``lytang/LLM-AggreFact`` split ``test``; local ``<data_root>/llm-aggrefact/test.*``.

    Columns ``dataset``, ``doc``, ``claim``, ``label`` (1 = supported). The document becomes the
    instruction and the claim the response; label 1 -> Yes, 0 -> No.
    """
    local = local_candidates(ctx, "llm-aggrefact", "test")
    raw_rows = load_hub_or_local("lytang/LLM-AggreFact", None, "test", local)

    def row(number: int, raw: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"llm-aggrefact-{number}", "task": "classification", "instruction": raw["doc"],
                "response": text_or_empty(raw["claim"]), "rubric": AGGREFACT_RUBRIC, "label": raw["label"],
                "dataset": raw.get("dataset", "unknown")}

    return build_records(convert_rows(raw_rows, row, "llm-aggrefact"), "llm-aggrefact")


# --- InstruSum -------------------------------------------------------------------------------------

_PREFERENCE = {"1": "A", "a": "A", "output_1": "A", "summary1": "A", "summary_1": "A",
               "2": "B", "b": "B", "output_2": "B", "summary2": "B", "summary_2": "B",
               "0": "tie", "tie": "tie", "equal": "tie", "draw": "tie"}


def _instrusum_row(number: int, raw: dict[str, Any]) -> dict[str, Any]:
    first = raw.get("output_1", raw.get("summary1"))
    second = raw.get("output_2", raw.get("summary2"))
    winner = next(raw[k] for k in ("winner", "label", "preference") if raw.get(k) is not None)
    instruction = (f"Summarize the article below so that the summary meets this requirement: "
                   f"{raw['requirement'].strip()}\n\nArticle:\n{raw['article'].strip()}")
    return {"id": f"instrusum-{number}", "task": "pairwise", "instruction": instruction,
            "response_a": text_or_empty(first), "response_b": text_or_empty(second),
            "label": _PREFERENCE[str(winner).strip().lower()], "rubric": INSTRUSUM_RUBRIC,
            "doc_id": raw.get("doc_id"), "system_a": raw.get("sys_1"), "system_b": raw.get("sys_2")}


@register(
    "instrusum",
    Task.pairwise,
    "InstruSum: human pairwise preferences between instruction-controlled summaries",
    suites=("paper",),
    gold="human",
)
def load_instrusum(ctx: LoadContext) -> list[LoadedRow]:
    """Hub ``Salesforce/InstruSum`` config ``human_eval_pairwise``.

    Local copy: ``<data_root>/instrusum/human_eval_pairwise.{jsonl,json,parquet}``.

    Schema assumption (not checked against the gated hub files): ``doc_id``, ``article``,
    ``requirement``, ``output_1``/``output_2`` (or ``summary1``/``summary2``), ``sys_1``/``sys_2`` and
    ``winner`` (or ``label``/``preference``) where 1 means the first summary won, 2 the second and
    0/"tie" a tie. Order is kept as in the source.
    """
    raw_rows = load_hub_or_local("Salesforce/InstruSum", "human_eval_pairwise", "data",
                                 local_candidates(ctx, "instrusum", "human_eval_pairwise"))
    return build_records(convert_rows(raw_rows, _instrusum_row, "instrusum"), "instrusum")


# --- LFQA ------------------------------------------------------------------------------------------

_LFQA_PREFERENCE = {-1: "A", 1: "B", 0: "tie"}


@register(
    "lfqa",
    Task.pairwise,
    "LFQA (Xu et al. 2023): expert preferences between long-form answers",
    suites=("paper",),
    gold="human",
)
def load_lfqa(ctx: LoadContext) -> list[LoadedRow]:
    """Local only: ``<data_root>/lfqa/experts_pairwise_human_preferences.jsonl`` (carriex/lfqa_eval).

    The file is a Git LFS object upstream and not on the hub, so nothing is downloaded. Fields:
    ``question``, ``answer_a``/``answer_b`` (or ``answer1``/``answer2``), ``answer_a_type``,
    ``answer_b_type`` and ``overall_preference``: -1 = answer a wins, 1 = answer b wins, 0 = tie.
    """
    local = local_candidates(ctx, "lfqa", "experts_pairwise_human_preferences")
    raw_rows = load_local_only(local, "train", "upstream carriex/lfqa_eval keeps the file in Git LFS")

    def row(number: int, raw: dict[str, Any]) -> dict[str, Any]:
        first = raw.get("answer_a", raw.get("answer1"))
        second = raw.get("answer_b", raw.get("answer2"))
        return {"id": f"lfqa-{number}", "task": "pairwise", "instruction": raw["question"],
                "response_a": text_or_empty(first), "response_b": text_or_empty(second),
                "label": _LFQA_PREFERENCE[int(raw["overall_preference"])], "rubric": LFQA_RUBRIC,
                "answer_a_type": raw.get("answer_a_type"), "answer_b_type": raw.get("answer_b_type")}

    return build_records(convert_rows(raw_rows, row, "lfqa"), "lfqa")

