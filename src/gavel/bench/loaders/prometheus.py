"""Absolute-scoring benchmarks shipped as Prometheus judge prompts: MT-Bench, Vicuna Bench, FLASK.

Each row holds the whole Prometheus prompt in ``instruction``; the instruction, response, reference
answer and 5-level rubric are split out on its ``###...:`` headers. The gold is the mean of the
row's score list (``gpt4_score`` or ``human_score``), kept as ``gold_score``; ``label`` is that mean
rounded half up to an integer 1-5.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gavel.bench.loaders._util import build_records, mean_score, prometheus_parts, round_score
from gavel.bench.registry import BenchmarkUnavailable, LoadContext, register
from gavel.io import read_json
from gavel.judge.records import LoadedRow
from gavel.labels import Task


def prometheus_absolute_row(raw: dict[str, Any], record_id: str, score_field: str) -> dict[str, Any]:
    """One Prometheus absolute-grading row as a record dict, gold from ``raw[score_field]``."""
    scores = list(raw[score_field])
    gold = mean_score([float(s) for s in scores])
    row = prometheus_parts(raw["instruction"])
    row.update(id=record_id, task="absolute", label=round_score(gold), gold_score=gold, gold_scores=scores)
    for key in ("category", "response_source"):
        if key in raw:
            row[key] = raw[key]
    return row


def _load_prometheus(path: Path, prefix: str, score_field: str,
                     keep: Callable[[dict[str, Any]], bool] = lambda raw: True) -> list[LoadedRow]:
    rows = []
    for number, raw in enumerate(read_json(path)):
        if not keep(raw):
            continue
        suffix = str(raw.get("idx", number))
        if "response_source" in raw:
            suffix += f"-{raw['response_source']}"
        rows.append(prometheus_absolute_row(raw, f"{prefix}-{suffix}", score_field))
    return build_records(rows, str(path))


@register(
    "mt-bench",
    Task.absolute,
    "MT-Bench second-turn responses of 4 models graded 1-5 against instance rubrics (Prometheus version)",
    suites=("paper", "local"),
    gold="gpt-4",
    subsets_field="category",
)
def load_mt_bench(ctx: LoadContext) -> list[LoadedRow]:
    """320 rows (80 questions x 4 models); gold = mean of 3 GPT-4 scores."""
    return _load_prometheus(ctx.path("mt-bench", "mt_bench_eval.json"), "mt-bench", "gpt4_score")


@register(
    "vicuna-bench",
    Task.absolute,
    "Vicuna Bench responses of 4 models graded 1-5 against instance rubrics (Prometheus version)",
    suites=("local",),
    gold="gpt-4",
    subsets_field="category",
)
def load_vicuna_bench(ctx: LoadContext) -> list[LoadedRow]:
    """320 rows (80 questions x 4 models); gold = mean of 3 GPT-4 scores."""
    return _load_prometheus(ctx.path("vicuna-bench", "vicuna_eval.json"), "vicuna-bench", "gpt4_score")


def vicuna_question_held_out(idx: str | int) -> bool:
    """The Vicuna Bench questions kept for evaluation when the other half trains a judge: odd question ids.

    Vicuna-80's GPT-4 pairwise reviews (a training source) judge other models' answers to the same 80
    questions; trained on the even half, a judge is evaluated on ``vicuna-bench-heldout``.
    """
    return int(idx) % 2 == 1


@register(
    "vicuna-bench-heldout",
    Task.absolute,
    "Vicuna Bench on its 40 odd-numbered questions (160 rows), the half that Vicuna-80 training pairs leave out",
    suites=(),
    gold="gpt-4",
    subsets_field="category",
)
def load_vicuna_bench_heldout(ctx: LoadContext) -> list[LoadedRow]:
    return _load_prometheus(ctx.path("vicuna-bench", "vicuna_eval.json"), "vicuna-bench", "gpt4_score",
                            keep=lambda raw: vicuna_question_held_out(raw["idx"]))


@register(
    "flask",
    Task.absolute,
    "FLASK fine-grained skill scoring 1-5 (Prometheus flask_eval.json, human scores)",
    suites=("paper",),
    gold="human",
)
def load_flask(ctx: LoadContext) -> list[LoadedRow]:
    """Prometheus's ``flask_eval.json`` placed at ``<data_root>/flask/flask_eval.json``.

    Same layout as ``mt_bench_eval.json`` (a JSON array; ``instruction`` = the full Prometheus prompt)
    with a ``human_score`` list per row, used as gold. The FLASK evaluation set itself
    (``flask_evaluation.jsonl``) carries no scores, so it cannot stand in.
    """
    if ctx.data_root is None or not (ctx.data_root / "flask" / "flask_eval.json").exists():
        raise BenchmarkUnavailable(
            "FLASK: the local copy (flask_evaluation.jsonl) has no gold scores; place Prometheus's "
            "eval/benchmark/data/flask_eval.json (with human_score) at <data_root>/flask/flask_eval.json"
        )
    return _load_prometheus(ctx.path("flask", "flask_eval.json"), "flask", "human_score")
