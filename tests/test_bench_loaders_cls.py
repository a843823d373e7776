"""Classification / JUDGE-BENCH loaders on the full data (``data``: needs the data root; every loader also runs
on rows cut from its files in test_bench_loaders.py), and the generic labelled-file loader."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from gavel.bench import registry
from gavel.bench.harness import load_targets
from gavel.bench.loaders import classification
from gavel.bench.loaders.generic import load_labelled_file
from gavel.bench.registry import LoadContext, default_data_root
from gavel.judge.records import JudgeRecord, Task, validate_row

FIXTURES = Path(__file__).parent / "fixtures" / "bench" / "generic"

# name -> (task, record count, expected label counts or None)
EXPECTED: dict[str, tuple[Task, int, dict[str, int] | None]] = {
    # 631 labelled claims = subtask4's true 472 + false 159 (SOURCE.md)
    "factcheck-gpt": (Task.classification, 631, {"Yes": 472, "No": 159}),
    # 653 + 941 + 672 + 683 + 473 + 571 annotated sentences (SOURCE.md)
    "lfqa-verification": (Task.classification, 3993, None),
    # 235 CNN/DM summaries with 714 sentences + 239 one-sentence XSum summaries
    "qags": (Task.classification, 953, None),
    # 4470 segment labels less 82 from 7 mislabelled responses less 4 empty segments
    "felm": (Task.classification, 4384, None),
    # 800 summaries; worst label Consistent 174 + Benign 64 -> Yes, Questionable 77 + Unwanted 485 -> No
    "faithbench": (Task.classification, 800, {"Yes": 238, "No": 562}),
    "judgebench-inferential-strategies": (Task.classification, 300, {"Yes": 58, "No": 242}),
    "judgebench-dices-350-expert": (Task.classification, 350, {"Yes": 175, "No": 175}),
    "judgebench-dices-350-crowd": (Task.classification, 350, None),
    "judgebench-dices-990": (Task.classification, 990, None),
    "judgebench-medical-safety": (Task.classification, 3701, {"Yes": 2580, "No": 1121}),
    "judgebench-newsroom": (Task.absolute, 420 * 4, None),
    "judgebench-roscoe-overall": (Task.absolute, (195 + 210 + 151 + 200) * 2, None),
    "judgebench-roscoe-overall-binary": (Task.classification, (195 + 210 + 151 + 200) * 2, None),
    "judgebench-roscoe-stepwise": (Task.classification, (410 + 451 + 272 + 881) * 9, None),
}

SUBSETS = {
    "lfqa-verification": set(classification.LFQA_SYSTEMS),
    "qags": {"cnndm", "xsum"},
    "felm": set(classification.FELM_DOMAINS),
    "judgebench-newsroom": {"informativeness", "relevance", "fluency", "coherence"},
}


@pytest.fixture(scope="module")
def ctx() -> LoadContext:
    return LoadContext(default_data_root())


@pytest.fixture(scope="module")
def loaded(ctx: LoadContext) -> dict[str, list[JudgeRecord]]:
    return {name: registry.get(name).load(ctx) for name in EXPECTED}


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_counts_labels_and_ids(name: str, loaded: dict[str, list[JudgeRecord]]) -> None:
    task, count, label_counts = EXPECTED[name]
    bench = registry.get(name)
    records = loaded[name]
    assert bench.task is task and bench.gold == "human" and "local" in bench.suites
    assert len(records) == count
    assert len({r.id for r in records}) == count
    assert all(r.task is task for r in records)
    allowed = {"Yes", "No"} if task is Task.classification else {"1", "2", "3", "4", "5"}
    labels = Counter(r.label for r in records)
    assert set(labels) <= allowed
    assert len(labels) >= 2
    if task is Task.classification:
        assert set(labels) == {"Yes", "No"}
    if label_counts is not None:
        assert dict(labels) == label_counts
    rubric = records[0].resolved_rubric()
    assert rubric.objective and (rubric.yes if task is Task.classification else rubric.score1)


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_records_round_trip_through_the_schema(name: str, loaded: dict[str, list[JudgeRecord]]) -> None:
    for number, record in enumerate(loaded[name][:50], 1):
        again = validate_row(record.model_dump(mode="json", exclude_none=True), name, number)
        assert again.error is None, again.error
        assert again.record == record


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(SUBSETS))
def test_subsets(name: str, loaded: dict[str, list[JudgeRecord]]) -> None:
    assert registry.get(name).subsets_field == "subset"
    assert {r.extra_fields()["subset"] for r in loaded[name]} == SUBSETS[name]


@pytest.mark.data
def test_order_is_deterministic(ctx: LoadContext, loaded: dict[str, list[JudgeRecord]]) -> None:
    assert [r.record.id for r in classification.load_qags(ctx)] == [r.id for r in loaded["qags"]]


@pytest.mark.data
def test_grounded_sets_carry_their_source(loaded: dict[str, list[JudgeRecord]]) -> None:
    first_lfqa = loaded["lfqa-verification"][0]
    assert first_lfqa.instruction.startswith('Documents:\n"""\n[1] ')
    assert "Question: " in first_lfqa.instruction
    assert all("</s>" not in r.response for r in loaded["lfqa-verification"])
    qags = loaded["qags"]
    assert all('Article:\n"""' in r.instruction for r in qags)
    second = next(r for r in qags if r.id == "cnndm/1/2")
    first = next(r for r in qags if r.id == "cnndm/1/1")
    assert first.response in second.instruction  # earlier summary sentences are shown as context
    assert all('Text:\n"""' in r.instruction for r in loaded["faithbench"])


def test_lfqa_majority_counts_partially_as_unsupported() -> None:
    assert classification.lfqa_supported(["supported", "supported", "partially"])
    assert not classification.lfqa_supported(["supported", "partially", "partially"])
    assert not classification.lfqa_supported(["supported", "not_supported", "partially"])


@pytest.mark.data
def test_judgebench_splits_instance(loaded: dict[str, list[JudgeRecord]]) -> None:
    for record in loaded["judgebench-inferential-strategies"][:20]:
        assert "### MODEL RESPONSE" not in record.instruction
        assert "### PROBLEM STATEMENT" not in record.response
    for record in loaded["judgebench-newsroom"][:20]:
        assert "### Source Article" not in record.response and record.instruction.startswith("Summarize")
    for record in loaded["judgebench-roscoe-stepwise"][:50]:
        assert record.response.startswith("Step ") and "JUDGE:" not in record.instruction


@pytest.mark.data
def test_graded_labels_are_rounded_means(loaded: dict[str, list[JudgeRecord]]) -> None:
    for record in loaded["judgebench-newsroom"]:
        mean = record.extra_fields()["mean_human"]
        assert abs(int(record.label) - mean) <= 0.5


def test_generic_loads_mixed_tasks() -> None:
    name, data = load_labelled_file(FIXTURES / "mini_bench.jsonl")
    records = data.records
    assert name == "mini_bench" and data.errors == []
    assert [(r.id, r.task, r.label) for r in records] == [
        ("c1", Task.classification, "Yes"),
        ("c2", Task.classification, "No"),
        ("a1", Task.absolute, "4"),
        ("p1", Task.pairwise, "A"),
    ]
    assert records[0].extra_fields() == {"topic": "geography"}


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_generic_reports_every_bad_row(tmp_path: Path) -> None:
    good = {"task": "classification", "instruction": "q", "response": "r", "label": "Yes"}
    path = _write(tmp_path, [
        good,
        {**good, "label": None},  # row 2: no label
        {**good, "task": "ranking"},  # row 3: unknown task
        good,
        {**good, "label": "maybe"},  # row 5: bad label
    ])
    _, data = load_labelled_file(path)
    assert [r.id for r in data.records] == ["1", "4"]  # the good rows carry on
    messages = [str(e) for e in data.errors]
    assert len(messages) == 3 and all(str(path) in m for m in messages)
    assert "row 2, field 'label'" in messages[0] and "missing" in messages[0]
    assert "row 3, field 'task'" in messages[1] and "ranking" in messages[1]
    assert "row 5, field 'label'" in messages[2]
    with pytest.raises(ValueError, match="3 invalid row"):  # --strict refuses the file
        load_targets([], [path], None, None, seed=0, strict=True)


def test_generic_duplicate_ids_are_row_errors_and_missing_file_raises(tmp_path: Path) -> None:
    row = {"id": "x", "task": "absolute", "instruction": "q", "response": "r", "label": 3}
    _, data = load_labelled_file(_write(tmp_path, [row, row]))
    assert [r.id for r in data.records] == ["x"]
    assert [(e.row, e.field) for e in data.errors] == [(2, "id")] and "duplicate id" in data.errors[0].message
    with pytest.raises(ValueError, match="no usable rows"):
        load_labelled_file(_write(tmp_path, [{**row, "label": None}]))
    with pytest.raises(FileNotFoundError):
        load_labelled_file(tmp_path / "absent.jsonl")


def test_a_bad_source_row_is_a_row_error_and_the_benchmark_survives(tmp_path: Path) -> None:
    """Every loader validates through build_records: one bad label costs one row, not the benchmark."""
    import csv

    folder = tmp_path / "faithbench"
    folder.mkdir()
    with (folder / "FaithBench.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["source", "summary", "worst-label", "best-label", "LLM"])
        writer.writeheader()
        for label in ("Consistent", "Mystery", "Unwanted"):
            writer.writerow({"source": "The cat sat.", "summary": "A cat sat.", "worst-label": label,
                             "best-label": "Consistent", "LLM": "m"})
    data = registry.get("faithbench").load_data(LoadContext(tmp_path))
    assert [(r.id, r.label) for r in data.records] == [("1", "Yes"), ("3", "No")]
    [error] = data.errors
    assert (error.row, error.id, error.field) == (2, "2", "label") and "Mystery" in error.message
    assert error.source.endswith("FaithBench.csv")
    assert registry.get("faithbench").load(LoadContext(tmp_path)) == data.records  # load(): the records alone
