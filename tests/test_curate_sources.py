"""Curation sources on small fixtures in each source's own layout (local copies and hub row layouts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gavel.bench.registry import LoadContext
from gavel.curate.sources import SOURCES, Item, ten_to_five
from gavel.data import place_pair
from gavel.judge.records import RowError, Task

FIXTURES = Path(__file__).parent / "fixtures" / "curate" / "train"


def _load(name: str) -> tuple[list[Item], list[RowError]]:
    out = list(SOURCES.get(name).load(LoadContext(data_root=FIXTURES)))
    return [o for o in out if isinstance(o, Item)], [o for o in out if isinstance(o, RowError)]


@pytest.mark.parametrize(("score", "expected"), [(1, 1), (2, 1), (3, 2), (4.5, 3), (6, 3), (7, 4), (9, 5), (10, 5)])
def test_ten_to_five(score, expected):
    assert ten_to_five(score) == expected


def test_ten_to_five_rejects_out_of_range():
    with pytest.raises(ValueError, match="outside 1-10"):
        ten_to_five(11)


def test_unknown_source_names_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown source 'nope'.*shepherd"):
        SOURCES.get("nope")


def test_every_source_loads_its_fixture_and_yields_records():
    for name in SOURCES.names():
        items, _ = _load(name)
        assert items, f"{name}: no items from the fixture"
        for item in items:
            assert item.source == name
            assert item.record.task in SOURCES.get(name).tasks
            assert item.record.label in item.record.labels


def test_arena_maps_rating_and_strips_the_rating_line():
    items, errors = _load("arena-gpt4")
    assert {i.record.label for i in items} >= {"1", "5"}
    assert all("[[" not in (i.critique or "") for i in items)
    assert all(i.record.reference for i in items)  # reference-guided
    # the malformed row (null score) is logged with file, row and field, not dropped silently
    assert len(errors) == 1 and errors[0].row == 5 and errors[0].field == "score"
    assert "arena-bench-judgment_judge_any.jsonl" in errors[0].source


def test_arena_pairs_differ_by_two_or_more_and_the_better_answer_wins():
    pairs, _ = _load("arena-gpt4-pairs")
    singles = {(i.record.instruction, i.record.response): int(i.record.label) for i in _load("arena-gpt4")[0]}
    for pair in pairs:
        r = pair.record
        a, b = singles[(r.instruction, r.response_a)], singles[(r.instruction, r.response_b)]
        assert abs(a - b) >= 2
        assert r.label == ("A" if a > b else "B")
        assert pair.critique is None  # no trusted pairwise critique


def test_bad_rows_are_errors_with_file_and_row():
    _, errors = _load("autoj")
    assert {e.row for e in errors} == {5, 6}
    assert any("invalid JSON" in e.message for e in errors)
    assert any(e.field == "usrmsg" for e in errors)


def test_shepherd_rating_comes_from_the_raw_annotations():
    items, errors = _load("shepherd")
    assert [i.record.label for i in items] == ["3", "4", "3", "4"]
    assert all(i.critique_author == "human" and i.record.reference for i in items)
    assert errors and "no 1-5 rating" in errors[0].message


def test_mr_gsm8k_dedups_uuid_and_pairs_put_the_reference_on_a_side():
    items, errors = _load("mr-gsm8k")
    assert len(items) == 3 and {i.record.label for i in items} == {"No"}
    assert [e.field for e in errors] == ["uuid"]
    pairs, _ = _load("mr-gsm8k-pairs")
    for pair in pairs:
        loser = pair.record.response_b if pair.record.label == "A" else pair.record.response_a
        assert loser in {i.record.response for i in items}
        assert f"Response {'B' if pair.record.label == 'A' else 'A'} goes wrong" in pair.critique


def test_prmbench_has_both_labels_and_originals_once():
    items, _ = _load("prmbench")
    labels = [i.record.label for i in items]
    assert labels.count("Yes") == 3 and labels.count("No") == 3
    assert all(i.critique is None for i in items if i.record.label == "Yes")


def test_vicuna_renames_assistants_and_logs_ties():
    items, errors = _load("vicuna80")
    assert items and all("Assistant 1" not in i.critique and "Assistant 2" not in i.critique for i in items)
    assert any("Response A" in i.critique or "Response B" in i.critique for i in items)
    assert any("tie" in e.message for e in errors)


@pytest.mark.parametrize(("name", "label", "task"), [
    ("prometheus-feedback", "5", Task.absolute), ("prometheus-preference", "A", Task.pairwise),
    ("ultrafeedback", "5", Task.absolute), ("offsetbias", "A", Task.pairwise), ("judgelm", "A", Task.pairwise),
    ("pandalm", "A", Task.pairwise), ("autoj-pairwise", "A", Task.pairwise)])
def test_hub_layouts_map_to_records(name, label, task):
    items, _ = _load(name)
    assert items[0].record.task is task and items[0].record.label == label


def test_hub_bad_rows_are_logged_not_fatal():
    for name, field in (("prometheus-feedback", "label"), ("judgelm", "score"), ("pandalm", "output_sequence"),
                        ("hh-rlhf", "rejected")):
        _, errors = _load(name)
        assert errors and errors[0].row == 2 and errors[0].field == field, name


def test_hh_rlhf_places_the_preferred_reply_by_the_seeded_rule():
    items, _ = _load("hh-rlhf")
    record = items[0].record
    preferred = record.response_a if record.label == "A" else record.response_b
    assert preferred.startswith("Put it in boiling water")
    for item in items:  # every pair placed by the one seeded rule (seed 0 here)
        r = item.record
        better, worse = (r.response_a, r.response_b) if r.label == "A" else (r.response_b, r.response_a)
        assert place_pair(better, worse, item.id, 0) == (r.response_a, r.response_b, r.label)


def test_unavailable_hub_source_is_one_logged_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = list(SOURCES.get("offsetbias").load(LoadContext(data_root=tmp_path)))
    assert len(out) == 1 and isinstance(out[0], RowError) and "source unavailable" in out[0].message


def test_registry_refuses_a_second_entry_with_the_same_name():
    from gavel.curate.sources import register

    with pytest.raises(ValueError, match="source 'shepherd' registered twice"):
        register("shepherd", (Task.absolute,), "again")(lambda ctx: iter(()))
