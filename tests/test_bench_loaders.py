"""Benchmark loaders: every local benchmark's loader on a few rows cut from its real files, in its own file
layout (tests/fixtures/bench/local, run everywhere); the counts of the full files (``data``: needs the data
root); hub-format loaders on small fixtures (offline)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from gavel.bench.loaders._util import (
    EMPTY_RESPONSE,
    parse_prometheus_rubric,
    round_score,
    split_prometheus_prompt,
)
from gavel.bench.loaders.pairwise import split_transcript
from gavel.bench.registry import BenchmarkUnavailable, LoadContext, all_benchmarks, default_data_root, get
from gavel.data import place_pair
from gavel.io import load_hub_or_local
from gavel.judge.records import LABELS, JudgeRecord, Task

DATA_ROOT = default_data_root()
FIXTURES = Path(__file__).parent / "fixtures" / "bench"
#: Rows cut from the real files by scripts/cut_bench_fixtures.py (provenance and licences: SOURCE.md there).
LOCAL_FIXTURES = FIXTURES / "local"

#: name -> records loaded from the fixture cut of its files.
FIXTURE_COUNTS: dict[str, int] = {
    "auto-j": 4, "evalbiasbench": 12, "factcheck-gpt": 14, "faithbench": 4, "felm": 106, "hh-rlhf-harmless": 4,
    "hhh": 4, "judgebench-dices-350-crowd": 4, "judgebench-dices-350-expert": 4, "judgebench-dices-990": 4,
    "judgebench-inferential-strategies": 4, "judgebench-medical-safety": 4, "judgebench-newsroom": 16,
    "judgebench-roscoe-overall": 32, "judgebench-roscoe-overall-binary": 32, "judgebench-roscoe-stepwise": 144,
    "lfqa-verification": 70, "llmbar-adversarial": 16, "llmbar-natural": 4, "mt-bench": 4, "mt-bench-human": 4,
    "qags": 16, "vicuna-bench": 4, "vicuna-bench-heldout": 2,
}

#: name -> (record count, gold label counts or None) from each folder's SOURCE.md.
LOCAL_COUNTS: dict[str, tuple[int, dict[str, int] | None]] = {
    "mt-bench": (320, None),
    "vicuna-bench": (320, None),
    "vicuna-bench-heldout": (160, None),
    "hhh": (221, None),
    "evalbiasbench": (80, None),
    "auto-j": (1392, {"A": 520, "B": 499, "tie": 373}),
    "mt-bench-human": (200, {"A": 101, "B": 99}),
    "llmbar-natural": (100, {"A": 42, "B": 58}),
    "llmbar-adversarial": (319, {"A": 75 + 45 + 22 + 22, "B": 59 + 47 + 25 + 24}),
    "hh-rlhf-harmless": (2312, None),
}
RANDOMISED = ("hhh", "evalbiasbench", "hh-rlhf-harmless")
HUB_FIXTURES = ("rewardbench", "biggen-bench", "infobench", "llm-aggrefact", "instrusum", "lfqa", "flask")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@cache
def _load(name: str, seed: int = 0, root: Path | None = DATA_ROOT) -> tuple[JudgeRecord, ...]:
    return tuple(get(name).load(LoadContext(root, seed=seed)))


def _dump(records: tuple[JudgeRecord, ...]) -> list[dict]:
    return [r.model_dump(mode="json") for r in records]


def _valid_labels(task: Task) -> set[str]:
    return set(LABELS[task]) | ({"tie"} if task is Task.pairwise else set())


# --- registration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "task", "suites", "subsets_field"),
    [
        ("mt-bench", Task.absolute, ("paper", "local"), "category"),
        ("vicuna-bench", Task.absolute, ("local",), "category"),
        ("vicuna-bench-heldout", Task.absolute, (), "category"),
        ("flask", Task.absolute, ("paper",), None),
        ("biggen-bench", Task.absolute, ("paper",), "capability"),
        ("rewardbench", Task.pairwise, ("paper",), "subset"),
        ("infobench", Task.classification, ("paper",), None),
        ("llm-aggrefact", Task.classification, ("paper",), "dataset"),
        ("instrusum", Task.pairwise, ("paper",), None),
        ("lfqa", Task.pairwise, ("paper",), None),
        ("hhh", Task.pairwise, ("paper", "local"), "subset"),
        ("evalbiasbench", Task.pairwise, ("paper", "local"), "bias"),
        ("auto-j", Task.pairwise, ("paper", "local"), "scenario"),
        ("mt-bench-human", Task.pairwise, ("local",), None),
        ("llmbar-natural", Task.pairwise, ("local",), None),
        ("llmbar-adversarial", Task.pairwise, ("local",), "subset"),
        ("hh-rlhf-harmless", Task.pairwise, ("local",), None),
    ],
)
def test_registered(name: str, task: Task, suites: tuple[str, ...], subsets_field: str | None) -> None:
    bench = get(name)
    assert (bench.task, bench.suites, bench.subsets_field) == (task, suites, subsets_field)


# --- every local benchmark's loader on rows cut from its real files ---------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_COUNTS))
def test_local_loaders_parse_rows_cut_from_their_files(name: str) -> None:
    data = get(name).load_data(LoadContext(LOCAL_FIXTURES))
    task = get(name).task
    assert data.errors == [] and len(data.records) == FIXTURE_COUNTS[name]
    assert all(r.task is task and r.label in _valid_labels(task) for r in data.records)
    assert len({r.id for r in data.records}) == len(data.records)
    assert _dump(tuple(data.records)) == _dump(tuple(get(name).load(LoadContext(LOCAL_FIXTURES))))


def test_every_benchmark_has_fixtures() -> None:
    assert set(FIXTURE_COUNTS) | set(HUB_FIXTURES) == set(all_benchmarks())


def _content(record: JudgeRecord) -> str:
    """A record without what depends on its place in the file: the id (often a row number) and, for a pair
    with a gold winner, which position the winner was placed in."""
    row = record.model_dump(mode="json", exclude={"id"})
    if record.task is Task.pairwise and record.label in ("A", "B"):
        better, worse = (row["response_a"], row["response_b"])[:: 1 if record.label == "A" else -1]
        row |= {"response_a": better, "response_b": worse, "label": "better first"}
    return json.dumps(row, sort_keys=True)


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(FIXTURE_COUNTS))
def test_fixture_records_are_those_of_the_full_files(name: str) -> None:
    full = {_content(r) for r in _load(name)}
    assert all(_content(r) in full for r in get(name).load(LoadContext(LOCAL_FIXTURES)))


# --- local benchmarks on the real data root --------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(LOCAL_COUNTS))
def test_local_counts_labels_and_ids(name: str) -> None:
    records = _load(name)
    count, labels = LOCAL_COUNTS[name]
    assert len(records) == count
    task = get(name).task
    assert all(r.task is task and r.label in _valid_labels(task) for r in records)
    assert len({r.id for r in records}) == count
    if labels is not None:
        assert Counter(r.label for r in records) == labels


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(LOCAL_COUNTS))
def test_local_deterministic(name: str) -> None:
    first = _dump(_load(name))
    second = _dump(tuple(get(name).load(LoadContext(DATA_ROOT, seed=0))))
    assert first == second


@pytest.mark.data
@pytest.mark.parametrize("name", RANDOMISED)
def test_placement_balanced_and_seeded(name: str) -> None:
    records = _load(name)
    share_a = Counter(r.label for r in records)["A"] / len(records)
    assert 0.35 < share_a < 0.65
    other_seed = _load(name, seed=1)
    assert [r.id for r in other_seed] == [r.id for r in records]
    assert [r.label for r in other_seed] != [r.label for r in records]


@pytest.mark.data
def test_evalbiasbench_better_response_follows_label() -> None:
    raw = json.loads((DATA_ROOT / "evalbiasbench" / "biasbench.json").read_text())
    better = {item["instruction"] + item["response2"]: item["response1"] for items in raw.values() for item in items}
    for record in _load("evalbiasbench"):
        chosen, other = (record.response_a, record.response_b) if record.label == "A" else (
            record.response_b, record.response_a)
        assert better[record.instruction + other] == chosen
    assert Counter(r.bias for r in _load("evalbiasbench"))["length bias"] == 17


@pytest.mark.data
def test_hhh_subsets_and_rubric() -> None:
    records = _load("hhh")
    assert Counter(r.subset for r in records) == {"honest": 61, "helpful": 59, "harmless": 58, "other": 43}
    assert all(r.rubric is not None and r.rubric.objective and "###" not in r.response_a for r in records)
    assert all(r.response_a != r.response_b for r in records)


@pytest.mark.data
def test_mt_bench_splits_prompt_and_gold() -> None:
    raw = json.loads((DATA_ROOT / "mt-bench" / "mt_bench_eval.json").read_text())
    records = _load("mt-bench")
    for source, record in zip(raw, records, strict=True):
        mean = sum(source["gpt4_score"]) / 3
        assert record.gold_score == pytest.approx(mean)
        assert record.label == str(int(mean + 0.5))
        assert record.id == f"mt-bench-{source['idx']}-{source['response_source']}"
        assert record.reference and "###" not in record.response
        assert all(getattr(record.rubric, f"score{i}") for i in range(1, 6))
        assert not record.rubric.objective.startswith("[")
    assert Counter(r.category for r in records)["coding"] == 40


@pytest.mark.data
def test_llmbar_adversarial_subsets() -> None:
    counts = Counter(r.subset for r in _load("llmbar-adversarial"))
    assert counts == {"Neighbor": 134, "GPTInst": 92, "GPTOut": 47, "Manual": 46}


@pytest.mark.data
def test_empty_responses_become_placeholder() -> None:
    auto_j = _load("auto-j")
    assert auto_j[568].response_b == EMPTY_RESPONSE and auto_j[568].label == "A"
    hh = _load("hh-rlhf-harmless")
    assert sum(EMPTY_RESPONSE in (r.response_a, r.response_b) for r in hh) == 4


def test_hh_rlhf_instruction_is_shared_dialogue() -> None:
    record = _load("hh-rlhf-harmless", root=LOCAL_FIXTURES)[0]
    assert record.instruction.startswith("Human:")
    assert not record.instruction.rstrip().endswith("Assistant:")
    assert "Assistant:" not in record.response_a[:20] and "Assistant:" not in record.response_b[:20]


@pytest.mark.data
def test_flask_without_gold_is_unavailable() -> None:
    with pytest.raises(BenchmarkUnavailable, match="no gold scores"):
        get("flask").load(LoadContext(DATA_ROOT))


def test_hub_benchmark_without_copy_is_unavailable() -> None:
    with pytest.raises(BenchmarkUnavailable, match=r"reward-bench.*allenai/reward-bench.*HF_HUB_OFFLINE"):
        get("rewardbench").load(LoadContext(LOCAL_FIXTURES))


# --- hub-format loaders on fixtures ----------------------------------------------------------------


@pytest.mark.parametrize("name", HUB_FIXTURES)
def test_hub_loaders_read_fixtures(name: str) -> None:
    records = _load(name, root=FIXTURES)
    task = get(name).task
    assert records and all(r.label in _valid_labels(task) for r in records)
    assert len({r.id for r in records}) == len(records)
    assert _dump(records) == _dump(tuple(get(name).load(LoadContext(FIXTURES))))


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("biggen-bench", ["4", "2", "5"]),
        ("infobench", ["Yes", "No", "Yes", "No"]),
        ("llm-aggrefact", ["Yes", "No", "Yes", "No"]),
        ("instrusum", ["A", "B", "tie"]),
        ("lfqa", ["A", "B", "tie"]),
        ("flask", ["5", "3", "1"]),
    ],
)
def test_hub_fixture_labels(name: str, labels: list[str]) -> None:
    assert [r.label for r in _load(name, root=FIXTURES)] == labels


def test_rewardbench_fixture_placement() -> None:
    raw = [json.loads(line) for line in (FIXTURES / "reward-bench" / "filtered.jsonl").read_text().splitlines()]
    seen = Counter()
    for seed in range(4):
        for source, record in zip(raw, _load("rewardbench", seed=seed, root=FIXTURES), strict=True):
            chosen = record.response_a if record.label == "A" else record.response_b
            assert chosen == source["chosen"] and record.subset == source["subset"]
            seen[record.label] += 1
    assert seen["A"] > 0 and seen["B"] > 0
    sections = [r.section for r in _load("rewardbench", root=FIXTURES)]
    assert sections == ["chat", "chat_hard", "chat_hard", "safety", "safety", "reasoning"]


def test_fixture_content_mapping() -> None:
    biggen = _load("biggen-bench", root=FIXTURES)
    assert biggen[0].rubric.score3 == "Level 3 of correctness and justification."
    assert biggen[0].reference and biggen[0].capability == "reasoning"
    infobench = _load("infobench", root=FIXTURES)
    assert infobench[2].instruction.endswith("closes at five on weekdays.")
    assert infobench[0].rubric.objective.startswith("Is the generated text a haiku")
    aggrefact = _load("llm-aggrefact", root=FIXTURES)
    assert aggrefact[1].response == "The council rejected the park." and aggrefact[1].dataset == "AggreFact-CNN"
    instrusum = _load("instrusum", root=FIXTURES)
    assert "Summarize why the bakery is closing." in instrusum[1].instruction and "Article:" in instrusum[1].instruction
    flask = _load("flask", root=FIXTURES)
    assert flask[1].response == "### Answer\nfast" and flask[1].gold_score == pytest.approx(2.5)


def test_local_copy_formats_agree(tmp_path: Path) -> None:
    import datasets

    rows = [json.loads(line) for line in (FIXTURES / "llm-aggrefact" / "test.jsonl").read_text().splitlines()]
    expected = _dump(_load("llm-aggrefact", root=FIXTURES))
    parquet_root = tmp_path / "pq"
    (parquet_root / "llm-aggrefact").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(parquet_root / "llm-aggrefact" / "test.parquet"))
    saved_root = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(saved_root / "llm-aggrefact" / "test"))
    for root in (parquet_root, saved_root):
        assert _dump(tuple(get("llm-aggrefact").load(LoadContext(root)))) == expected


def test_load_hub_or_local_prefers_local(tmp_path: Path) -> None:
    target = tmp_path / "filtered.jsonl"
    shutil.copy(FIXTURES / "reward-bench" / "filtered.jsonl", target)
    rows = load_hub_or_local("allenai/reward-bench", None, "filtered", [tmp_path / "missing.jsonl", target])
    assert len(rows) == 6 and rows[0]["id"] == 100
    with pytest.raises(BenchmarkUnavailable, match=r"missing\.jsonl"):
        load_hub_or_local("allenai/reward-bench", None, "filtered", [tmp_path / "missing.jsonl"])


# --- helpers ---------------------------------------------------------------------------------------


def test_split_prometheus_prompt_ignores_markdown_headers() -> None:
    prompt = ("###Task Description:\nx\n\n###The instruction to evaluate:\nDo it\n\n###Response to evaluate:\n"
              "### Step 1:\ndone\n\n###Score Rubrics:\n[Crit?]\nScore 1: bad\nScore 5: good\n\n###Feedback: ")
    sections = split_prometheus_prompt(prompt)
    assert sections["Response to evaluate"] == "### Step 1:\ndone"
    rubric = parse_prometheus_rubric(sections["Score Rubrics"])
    assert rubric == {"objective": "Crit?", "score1": "bad", "score5": "good"}


def test_split_transcript_uses_common_prefix() -> None:
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: Sure."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: No."
    assert split_transcript(chosen, rejected) == ("Human: hi\n\nAssistant: hello\n\nHuman: help?", "Sure.", "No.")
    diverged = "\n\nHuman: hi\n\nAssistant: go away\n\nHuman: ok\n\nAssistant: bye"
    assert split_transcript(chosen, diverged)[0] == "Human: hi"


def test_place_pair_and_rounding() -> None:
    placements = {place_pair("good", "bad", f"item-{i}", 0) for i in range(20)}
    assert placements == {("good", "bad", "A"), ("bad", "good", "B")}
    assert place_pair("good", "bad", "item-3", 7) == place_pair("good", "bad", "item-3", 7)
    assert [round_score(x) for x in (1.0, 2.5, 3.4999, 4.5, 5.2, 0.2)] == [1, 3, 3, 5, 5, 1]


def test_a_malformed_source_row_costs_that_row_only(tmp_path) -> None:
    """A local copy whose row lacks a column, or holds a label no one can read: row errors, the rest loads."""
    source = FIXTURES / "infobench" / "expert_annotations.jsonl"
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    del rows[1]["question"]
    rows[2]["label"] = "maybe"
    folder = tmp_path / "infobench"
    folder.mkdir()
    (folder / "expert_annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = get("infobench").load_data(LoadContext(tmp_path))
    assert len(data.records) == len(rows) - 2
    assert [(e.row, e.field) for e in data.errors] == [(2, None), (3, "label")]
    assert data.errors[0].message == "missing column 'question'" and "maybe" in data.errors[1].message
