"""Each curate stage on small inputs: config, teacher targets and resume, consistency, mix, decontamination,
reward-model filter, export rows."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gavel.backends.base import Backend, BackendInfo, Reply, Request
from gavel.backends.local import continuation
from gavel.curate.config import ConfigError, CurateConfig, load_config
from gavel.curate.consistency import ConsistencyReport, Verdict, check, trim_to_sentence
from gavel.curate.decontam import BenchmarkIndex, decontaminate
from gavel.curate.mix import Pair, allocate, assign_kinds, dedup, select, swap_positions, with_orders
from gavel.curate.sources import Item
from gavel.curate.teacher import TARGET_FIELD, TeacherTemplates, make_call, run_teacher, wrong_label
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, Task
from gavel.judge.templates import load_templates
from gavel.labels import REASONING_TAG, RESULT_TAG, Mode, answer_text


def _item(i: int, source: str = "s", task: str = "absolute", label: str = "3", critique: str | None = "Fine.",
          **extra) -> Item:
    fields = {"id": f"{source}-{i}", "task": task, "instruction": f"Question number {i}?", "label": label, **extra}
    if task == "pairwise":
        fields |= {"response_a": f"first answer {i}", "response_b": f"second answer {i}"}
    else:
        fields["response"] = f"answer {i}"
    return Item(id=fields["id"], source=source, record=JudgeRecord.model_validate(fields), critique=critique,
                critique_author="human" if critique else None)


# -- config -------------------------------------------------------------------------------------------------
def test_config_unknown_key_fails_early_naming_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sources: {shepherd: {}}\nmix: {critique_ratoi: 0.5}\n")
    with pytest.raises(ConfigError, match=r"mix\.critique_ratoi: unknown key"):
        load_config(path)


def test_config_unknown_source_lists_known_ones(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sources: {shepperd: {}}\n")
    with pytest.raises(ConfigError, match=r"unknown source.*shepperd.*known:.*shepherd"):
        load_config(path)


def test_config_rm_threshold_needs_a_model():
    with pytest.raises(ValueError, match=r"rm_threshold but reward_model\.model is not set"):
        CurateConfig.model_validate({"sources": {"shepherd": {"rm_threshold": 0.1}}})


def test_only_source_restricts_and_checks_the_name():
    config = CurateConfig.model_validate({"sources": {"shepherd": {}, "autoj": {}}})
    assert list(config.only("autoj").sources) == ["autoj"]
    with pytest.raises(ValueError, match="not in the config"):
        config.only("summacoz")


def test_committed_configs_validate():
    root = Path(__file__).parents[1] / "configs" / "curate"
    for name in ("cpu.yaml", "cluster.yaml"):
        assert load_config(root / name).sources


# -- teacher ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("task", "gold", "wrong"), [
    (Task.absolute, "1", {"3"}), (Task.absolute, "2", {"4"}), (Task.absolute, "3", {"1", "5"}),
    (Task.absolute, "4", {"2"}), (Task.absolute, "5", {"3"}), (Task.classification, "Yes", {"No"}),
    (Task.pairwise, "B", {"A"})])
def test_wrong_label_is_plausible_and_wrong(task, gold, wrong):
    assert wrong_label(task, gold, random.Random(0)) in wrong


def test_teacher_prompt_is_the_judge_prompt_plus_the_target():
    record = _item(1).record
    call = make_call("s-1", record, "rejected", "5")
    base, _ = load_templates(None).render(record, Mode.critique)
    text, _ = TeacherTemplates(load_templates(None)).render(call.record, Mode.critique)
    assert text.startswith(base) and "score 5" in text[len(base):]
    assert call.record.extra_fields()[TARGET_FIELD] == "5" and call.id == "s-1#rejected"


class _CountingBackend(Backend):
    """Control flow only: records how many requests it was asked, answers a fixed critique."""

    batch_size = 2

    def __init__(self) -> None:
        self.info = BackendInfo(name="counting", kind="test")
        self.seen = 0

    def run(self, requests):
        self.seen += len(requests)
        return [Reply(text=f"{REASONING_TAG} It is fine. {RESULT_TAG} 3", label_probs=None) for _ in requests]


def test_teacher_resumes_without_repeating_finished_calls(tmp_path):
    cache = tmp_path / "teacher.jsonl"
    calls = [make_call(f"s-{i}", _item(i).record, "rejected", "3") for i in range(5)]
    first = _CountingBackend()
    run_teacher(calls[:3], cache, lambda: Judge(first, templates=TeacherTemplates(load_templates(None))))
    with cache.open("ab") as handle:  # a crash mid-write leaves a torn line
        handle.write(b'{"id": "s-3#rejected", "resu')
    second = _CountingBackend()
    out = run_teacher(calls, cache, lambda: Judge(second, templates=TeacherTemplates(load_templates(None))))
    assert first.seen == 3 and second.seen == 2
    assert sorted(out) == sorted(c.id for c in calls) and all(r["result"] == "3" for r in out.values())
    third = _CountingBackend()
    run_teacher(calls, cache, lambda: Judge(third))
    assert third.seen == 0


# -- consistency --------------------------------------------------------------------------------------------
def test_trim_to_sentence():
    assert trim_to_sentence("It is right. The steps are") == "It is right."
    assert trim_to_sentence("no sentence end here") is None
    assert trim_to_sentence('He said "yes." Then') == 'He said "yes."'


@pytest.mark.parametrize(("row", "target", "kept", "reason"), [
    ({"status": "forced", "result": "4", "raw_output": "**Reasoning:** Clear and correct. It also"}, "4", True,
     "kept"),
    ({"status": "ok", "result": "2", "raw_output": "**Reasoning:** Clear and correct.**Result:**"}, "4", False,
     "wrong verdict"),
    ({"status": "ok", "result": "4", "raw_output": "**Reasoning:** Good. Score: 2. Fine.**Result:**"}, "4", False,
     "critique names another verdict"),
    ({"status": "forced", "result": "4", "raw_output": "**Reasoning:** it is fine and"}, "4", False,
     "no complete sentence"),
    ({"status": "error", "result": None, "raw_output": ""}, "4", False, "teacher error"),
    ({"status": "tolerant", "result": "1", "raw_output": "**Reasoning:** Bad.\n**Result:** 4"}, "4", True, "kept"),
])
def test_consistency_check(row, target, kept, reason):
    verdict = check(Task.absolute, row, target)
    assert (verdict.kept, verdict.reason) == (kept, reason)
    if kept:
        assert verdict.critique and "**" not in verdict.critique


def test_consistency_report_drop_rates():
    report = ConsistencyReport()
    for kept in (True, True, False, False):
        report.add("a", "rejected", Verdict(kept, "x" if kept else None, "kept" if kept else "wrong verdict"), "ok")
    report.add("a", "chosen", Verdict(True, "x", "kept"), "forced")
    data = report.as_dict()
    assert data["drop_rate"] == {"chosen": 0.0, "rejected": 0.5}
    assert data["per_source"]["a"]["rejected"] == {"checked": 4, "kept": 2, "drop_rate": 0.5}


# -- mix ------------------------------------------------------------------------------------------------------
def test_dedup_catches_swapped_pairwise_duplicates():
    a = _item(1, task="pairwise", label="A")
    b = a.model_copy(update={"id": "other", "record": a.record.swapped()})
    kept, removed = dedup([a, b, _item(2)])
    assert removed == 1 and [i.id for i in kept] == [a.id, "s-2"]


def test_allocate_by_weight_with_caps_and_small_sources():
    counts = allocate({"a": 100, "b": 100, "c": 5}, {"a": 1.0, "b": 3.0, "c": 1.0}, {"a": None, "b": 30, "c": None},
                      total=60)
    assert counts["b"] == 30 and counts["c"] == 5 and counts["a"] == 25 and sum(counts.values()) == 60


def test_select_balances_labels_and_is_seeded():
    items = [_item(i, label="Yes", task="classification") for i in range(20)]
    items += [_item(i + 100, label="No", task="classification") for i in range(4)]
    config = CurateConfig.model_validate({"sources": {"summacoz": {}}, "mix": {"total": 8}})
    items = [i.model_copy(update={"source": "summacoz"}) for i in items]
    first = select(items, config)["summacoz"]
    assert sorted(i.record.label for i in first).count("No") == 4
    assert [i.id for i in first] == [i.id for i in select(items, config)["summacoz"]]


def _pair(i: int, label: str, longer: bool) -> Item:
    """A pairwise item whose gold response is the longer one or the shorter one."""
    long, short = "a long and detailed answer " * 3, "short"
    gold, other = (long, short) if longer else (short, long)
    a, b = (gold, other) if label == "A" else (other, gold)
    item = _item(i, source="vicuna80", task="pairwise", label=label)
    return item.model_copy(update={"record": item.record.model_copy(update={"response_a": a, "response_b": b})})


def test_length_balance_keeps_as_many_shorter_as_longer_winners_under_a_cap():
    from gavel.curate.mix import chosen_is_longer

    pairs = [_pair(i, "AB"[i % 2], longer=i < 16) for i in range(20)]  # 16 longer wins, 4 shorter
    other = _item(99, source="vicuna80")  # not pairwise: kept
    for items, cap, expected in (([*pairs, other], None, 4), (pairs, 6, 3)):
        config = CurateConfig.model_validate({"sources": {"vicuna80": {"balance_length": True, "cap": cap}}})
        chosen = select(items, config)["vicuna80"]
        longer = [chosen_is_longer(i.record) for i in chosen]
        assert longer.count(True) == longer.count(False) == expected, cap
        assert (other in chosen) == (cap is None)
    unbalanced = select(pairs, CurateConfig.model_validate({"sources": {"vicuna80": {}}}))["vicuna80"]
    assert [chosen_is_longer(i.record) for i in unbalanced].count(True) == 16


def test_assign_kinds_follows_the_ratio_and_prefers_trusted_critiques():
    items = [_item(i, source="shepherd", critique=None if i % 2 else "ok.") for i in range(10)]
    config = CurateConfig.model_validate({"sources": {"shepherd": {}}, "mix": {"critique_ratio": 0.3}})
    kinds = assign_kinds({"shepherd": items}, config)
    critique = [i for i in items if kinds[i.id] == "critique"]
    assert len(critique) == 3 and all(i.critique for i in critique)


def test_a_source_critique_ratio_overrides_the_mix_ratio():
    items = [_item(i, source="shepherd", critique="ok.") for i in range(10)]
    config = CurateConfig.model_validate({"sources": {"shepherd": {"critique_ratio": 0.0}},
                                          "mix": {"critique_ratio": 0.7}})
    assert set(assign_kinds({"shepherd": items}, config).values()) == {"verdict"}


def test_flipped_rejected_needs_no_teacher_call_and_ends_in_the_wrong_verdict():
    from gavel.curate.pipeline import Report, build_pairs, teacher_calls

    trusted, bare = _item(1, source="shepherd", critique="It is wrong."), _item(2, source="shepherd", critique=None)
    selected = {"shepherd": [trusted, bare]}
    kinds = {trusted.id: "critique", bare.id: "critique"}
    config = CurateConfig.model_validate({"sources": {"shepherd": {}}, "teacher": {"rejected": "flipped"}})
    calls = teacher_calls(selected, kinds, config)
    assert [(c.item_id, c.role) for c in calls] == [(bare.id, "chosen")]  # no rejected calls at all
    outputs = {f"{bare.id}#chosen": {"status": "ok", "result": "3",
                                     "raw_output": "**Reasoning:** Short but fine.\n\n**Result:** 3"}}
    pairs = {p.id: p for p in build_pairs(selected, kinds, outputs, config, Report(config={}))}
    assert pairs[trusted.id].rejected_critique == pairs[trusted.id].chosen_critique == "It is wrong."
    assert pairs[trusted.id].rejected_label != pairs[trusted.id].chosen_label == "3"
    assert pairs[bare.id].rejected_critique == pairs[bare.id].chosen_critique == "Short but fine."
    teacher = CurateConfig.model_validate({"sources": {"shepherd": {}}})
    assert {c.role for c in teacher_calls(selected, kinds, teacher)} == {"chosen", "rejected"}


def test_swap_positions_and_flipped_pairs():
    assert swap_positions("Response A is better than Response B.") == "Response B is better than Response A."
    item = _item(1, task="pairwise", label="A")
    pair = Pair(id="p", source="s", task="pairwise", kind="critique", record=item.record, chosen_label="A",
                rejected_label="B", chosen_critique="Response A is right.", rejected_critique="Response B is right.")
    rows = with_orders([pair], both_orders=True)
    flipped = rows[1]
    assert len(rows) == 2 and flipped.swapped and flipped.id == "p:swapped"
    assert (flipped.chosen_label, flipped.rejected_label) == ("B", "A")
    assert flipped.record.response_a == item.record.response_b and flipped.record.label == "B"
    assert flipped.chosen_critique == "Response B is right."


def test_answer_text_is_what_the_local_backends_continue_from():
    critique = " The answer is correct."
    assert answer_text("4", critique.strip()) == continuation(critique, True) + " 4"
    assert answer_text("Yes") == continuation("", False) + " Yes" == "**Result:** Yes"


class _EchoBackend(Backend):
    batch_size = 4

    def __init__(self) -> None:
        self.info = BackendInfo(name="echo", kind="test")
        self.requests: list[Request] = []

    def run(self, requests):
        self.requests += requests
        return [Reply(text="", label_probs={label: 1 / len(r.labels) for label in r.labels}) for r in requests]


@pytest.mark.parametrize("kind", ["critique", "verdict"])
def test_exported_prompt_is_exactly_what_the_judge_sends(kind):
    item = _item(1, task="pairwise", label="B")
    pair = Pair(id="p", source="s", task="pairwise", kind=kind, record=item.record, chosen_label="B",
                rejected_label="A", chosen_critique="Good." if kind == "critique" else None,
                rejected_critique="Bad." if kind == "critique" else None)
    row = pair.row(load_templates(None))
    backend = _EchoBackend()
    Judge(backend, mode=kind).judge([item.record])
    assert row["prompt"] == backend.requests[0].messages
    assert row["mode"] == kind and row["chosen"][0]["role"] == "assistant"
    assert row["chosen"][0]["content"] == answer_text("B", pair.chosen_critique)
    assert set(row) == {"prompt", "chosen", "rejected", "id", "source", "task", "kind", "mode", "chosen_label",
                        "rejected_label", "swapped"}


# -- decontamination ------------------------------------------------------------------------------------------
def test_decontamination_by_ngram_overlap():
    bench = JudgeRecord(id="b", task="absolute", instruction="Explain why the sky is blue during a clear day "
                        "to a small child", response="Because of Rayleigh scattering of sunlight in the air.")
    index = BenchmarkIndex(n=5)
    index.add("toy-bench", [bench])
    same = _item(1).model_copy(update={"record": bench.model_copy(update={"id": "x", "response": "Other."})})
    short_response = _item(2).model_copy(update={"record": JudgeRecord(
        id="y", task="absolute", instruction="A different question entirely about cooking pasta well",
        response="Other.")})
    kept, removed, log = decontaminate([same, short_response, _item(3)], index, threshold=0.5)
    assert removed == {"toy-bench": 1} and log[0]["id"] == same.id
    assert [i.id for i in kept] == [short_response.id, "s-3"]


@pytest.mark.data
def test_vicuna80_keeps_only_the_questions_vicuna_bench_heldout_leaves_out():
    """Real data: with vicuna-bench excluded and its held-out half indexed, decontamination removes every
    Vicuna-80 item on an odd question and keeps the even ones but four (other benchmarks not indexed here)."""
    from gavel.bench.loaders.prometheus import vicuna_question_held_out
    from gavel.bench.registry import LoadContext
    from gavel.curate.decontam import build_index
    from gavel.curate.pipeline import default_train_root
    from gavel.curate.sources import SOURCES

    items = [i for i in SOURCES.get("vicuna80").load(LoadContext(data_root=default_train_root(None)))
             if isinstance(i, Item)]
    index = build_index(8, ["vicuna-bench", "vicuna-bench-heldout"], exclude=["vicuna-bench"])
    assert set(index.grams) == {"vicuna-bench-heldout"}
    kept, removed, _ = decontaminate(items, index, threshold=0.5)
    held_out = [i for i in items if vicuna_question_held_out(i.record.question_id)]
    assert set(removed) == {"vicuna-bench-heldout"} and 0 < len(held_out) < len(items)
    assert kept and not any(vicuna_question_held_out(i.record.question_id) for i in kept)
    # the even Fermi questions share their held-out neighbours' 8-gram tail ("Try to explain your answer...")
    assert len(held_out) <= removed["vicuna-bench-heldout"] <= len(held_out) + 4 * 17


def test_decontam_exclude_names_must_be_benchmarks():
    from gavel.curate.decontam import build_index

    with pytest.raises(KeyError, match=r"decontam\.exclude"):
        build_index(8, ["mt-bench"], exclude=["no-such-bench"])


# -- reward-model filter --------------------------------------------------------------------------------------
@pytest.mark.model  # embedded_hf_dir: the embedded model converted to a transformers folder
def test_rm_filter_with_a_tiny_random_reward_model(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from gavel.backends.embedded import embedded_hf_dir
    from gavel.curate.rm_filter import RewardModel, rm_filter

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(embedded_hf_dir())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=1,
                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    LlamaForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = RewardModel(str(tmp_path), max_length=64, batch_size=2)
    items = [_item(i, source="a") for i in range(4)] + [_item(9, source="b", task="pairwise", label="A")]
    scores = model.score([(i.record.instruction, i.record.response or "") for i in items[:4]])
    assert len(scores) == 4 and len(set(scores)) > 1  # a random model still scores texts differently
    threshold = sorted(scores)[2]
    kept, dropped, all_scores = rm_filter(items, model, {"a": threshold, "b": None})
    assert dropped == {"a": 2} and len(kept) == 3 and items[4] in kept
    assert all_scores[:4] == pytest.approx(scores)
    assert json.dumps(all_scores[4]) == "NaN"  # no threshold for source b: not scored


@pytest.mark.model  # the embedded model's tokenizer: embedded_hf_dir converts the model on first use
def test_item_stages_run_as_datasets_maps_in_worker_processes(tmp_path):
    from gavel.bench.registry import LoadContext
    from gavel.curate.pipeline import Report, _tokenizer, decontaminate, lengths
    from gavel.curate.sources import SOURCES

    fixtures = Path(__file__).parent / "fixtures" / "curate"
    items = [i for i in SOURCES.get("shepherd").load(LoadContext(data_root=fixtures / "train")) if isinstance(i, Item)]
    config = CurateConfig.model_validate({
        "sources": {"shepherd": {}}, "num_proc": 2, "mix": {"max_tokens": 600, "max_critique_tokens": 20},
        "decontam": {"data_root": str(fixtures / "benchmarks"), "benchmarks": None}})
    report = Report(config=config.model_dump(mode="json"))
    kept = decontaminate(items, config, report)
    assert report.decontam_removed == {"metacritique": {"shepherd": 1}} and len(kept) == len(items) - 1
    short, removed = lengths(kept, config, _tokenizer(None), load_templates(None))
    assert len(short) + removed == len(kept)
    tokenizer = _tokenizer(None)
    for item in short:
        assert item.critique is None or len(tokenizer(item.critique)["input_ids"]) <= 20


def test_teacher_cache_from_another_teacher_is_refused(tmp_path):
    from gavel.io import OutputError

    cache = tmp_path / "teacher.jsonl"
    calls = [make_call(f"s-{i}", _item(i).record, "rejected", "3") for i in range(3)]
    run_teacher(calls[:1], cache, lambda: Judge(_CountingBackend(), templates=TeacherTemplates(load_templates(None))))
    other = _CountingBackend()
    other.info = BackendInfo(name="another-teacher", kind="test")
    with pytest.raises(OutputError, match="other settings"):
        run_teacher(calls, cache, lambda: Judge(other, templates=TeacherTemplates(load_templates(None))))
    assert other.seen == 0
