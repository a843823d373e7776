"""gavel.data: the data roots, the load context's errors and the pair placement, shared by bench and curate."""

from __future__ import annotations

import pytest

from gavel.data import DATA_ROOT_ENV, LoadContext, default_data_root, default_train_root, place_pair
from gavel.io import DataUnavailable


def test_a_missing_root_names_the_option_of_the_command_that_sets_it():
    with pytest.raises(DataUnavailable, match=f"no data root: set --data-root or {DATA_ROOT_ENV}"):
        LoadContext(None).path("x")
    curate = LoadContext(None, root_option="data_root in the curate config")
    with pytest.raises(DataUnavailable, match="set data_root in the curate config or"):
        curate.benchmarks().path("x")


def test_roots_come_from_the_option_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "benchmarks"))
    assert default_data_root() == tmp_path / "benchmarks"
    assert default_data_root(tmp_path / "mine") == tmp_path / "mine"
    assert default_train_root() == tmp_path / "train"
    ctx = LoadContext(tmp_path / "train", seed=3)
    assert ctx.benchmarks() == LoadContext(tmp_path / "benchmarks", seed=3)


def test_place_pair_is_seeded_per_key_and_spreads_the_better_response():
    placements = [place_pair("good", "bad", f"item-{i}", 0) for i in range(40)]
    assert {label for _, _, label in placements} == {"A", "B"}
    for a, b, label in placements:
        assert (a if label == "A" else b) == "good"
    assert place_pair("good", "bad", "item-3", 7) == place_pair("good", "bad", "item-3", 7)
