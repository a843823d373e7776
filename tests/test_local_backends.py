"""The embedded SmolLM2 through the local backends: llama.cpp (GGUF) and transformers (hf:smollm2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gavel.backends import load_backend, parse_spec
from gavel.backends.embedded import embedded_gguf, judge_adapter
from gavel.backends.llamacpp import LlamaCppBackend
from gavel.backends.transformers_backend import TransformersBackend
from gavel.judge.engine import Judge
from gavel.judge.records import LABELS, JudgeRecord, Task
from gavel.judge.result import Status

pytestmark = pytest.mark.model

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.jsonl"


@pytest.fixture(scope="session")
def records() -> list[JudgeRecord]:
    """The six quickstart records: two of each task."""
    rows = [json.loads(line) for line in QUICKSTART.read_text().splitlines()]
    return [JudgeRecord.model_validate(r) for r in rows]


@pytest.fixture(scope="session")
def llama():
    """The embedded GGUF through llama.cpp, loaded once (one thread: the machine is shared)."""
    backend = load_backend(None, n_threads=1)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def hf():
    """The embedded model through transformers (converted to safetensors once, then cached)."""
    import torch

    torch.set_num_threads(1)
    backend = load_backend("hf:smollm2", batch_size=4)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_verdicts(llama, records):
    return Judge(llama, mode="verdict").judge(records)


def _by_task(records, task):
    return next(r for r in records if r.task is Task(task))


# -- llama.cpp --------------------------------------------------------------------------------------

def test_default_spec_is_the_trained_judge_over_the_embedded_base(llama):
    """No spec: the embedded GGUF with gavel's committed LoRA adapter; `smollm2` keeps the untrained base."""
    assert isinstance(llama, LlamaCppBackend)
    default = parse_spec(None)
    assert default.model == str(embedded_gguf()) and default.options["lora_path"] == str(judge_adapter())
    assert judge_adapter().stat().st_size < 20 * 2**20  # small enough for git
    base = parse_spec("smollm2")
    assert base.model == str(embedded_gguf()) and not base.options
    assert parse_spec("hf:smollm2").kind == "transformers"
    assert llama.info.context_length == 8192
    assert "gavel-judge" in llama.info.name


def test_the_adapter_changes_the_verdicts(llama_verdicts, base_llama_verdicts):
    """The default judge is not the base: the adapter moves the verdict distributions."""
    plain = base_llama_verdicts
    shifts = [max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities)
              for a, b in zip(llama_verdicts, plain, strict=True)]
    assert max(shifts) > 0.05


def test_llamacpp_verdict_probabilities(llama_verdicts, records):
    assert {r.task for r in records} == set(Task)
    for record, result in zip(records, llama_verdicts, strict=True):
        assert result.id == record.id
        assert result.status is Status.logits
        assert list(result.probabilities) == list(LABELS[record.task])
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())
        assert result.result == max(result.probabilities, key=result.probabilities.get)
        assert result.prompt_tokens > 100 and result.raw_output == "" and result.critique is None
        if record.task is Task.absolute:
            expected = sum(int(k) * p for k, p in result.probabilities.items())
            assert result.expected_score == pytest.approx(expected)
            assert 1.0 <= result.expected_score <= 5.0
    # the distributions depend on the input: not one constant answer
    pair_probs = [r.probabilities["A"] for r, rec in zip(llama_verdicts, records, strict=True)
                  if rec.task is Task.pairwise]
    assert abs(pair_probs[0] - pair_probs[1]) > 1e-3


def test_llamacpp_critique(llama, records):
    items = [_by_task(records, t) for t in ("absolute", "classification", "pairwise")]
    judge = Judge(llama, mode="critique", max_new_tokens=32)
    results = judge.judge(items)
    for record, result in zip(items, results, strict=True):
        assert result.status in (Status.ok, Status.forced, Status.tolerant), result
        assert result.result in LABELS[record.task]
        assert isinstance(result.critique, str) and result.critique.strip()
        assert "**Result" not in result.critique
        assert result.raw_output.startswith("**Reasoning:**")
        assert 1 <= result.completion_tokens <= 33
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        if result.status is Status.ok and result.raw_output.rstrip().endswith("**Result:**"):
            # the model wrote the tag; the verdict is the most likely label after it
            assert result.result == max(result.probabilities, key=result.probabilities.get)
    # greedy decoding: the same item gives the same critique again
    assert judge.judge(items[:1])[0].raw_output == results[0].raw_output


def test_llamacpp_both_orders(llama, records):
    pair = _by_task(records, "pairwise")
    judge = Judge(llama, mode="verdict", both_orders=True)
    combined = judge.judge([pair])[0]
    assert len(combined.result_by_order) == 2
    assert all(r in ("A", "B") for r in combined.result_by_order)
    assert combined.orders_agree == (combined.result_by_order[0] == combined.result_by_order[1])
    # the combination is the average of the two single-order runs, the swapped one mapped back
    single = Judge(llama, mode="verdict")
    straight = single.judge([pair])[0].probabilities
    swapped = single.judge([pair.swapped()])[0].probabilities
    assert combined.probabilities["A"] == pytest.approx((straight["A"] + swapped["B"]) / 2, abs=1e-4)
    assert combined.probabilities["B"] == pytest.approx((straight["B"] + swapped["A"]) / 2, abs=1e-4)
    assert combined.result == ("A" if combined.probabilities["A"] >= combined.probabilities["B"] else "B")
    assert combined.result_by_order[0] == max(straight, key=straight.get)
    assert combined.result_by_order[1] == {"A": "B", "B": "A"}[max(swapped, key=swapped.get)]


def test_llamacpp_verdicts_deterministic_with_prefix_reuse(llama, records, llama_verdicts):
    """Re-running after other prompts (the KV prefix cache holds something else) gives the same numbers,
    and so does a fresh backend that has never seen another prompt."""
    judge = Judge(llama, mode="verdict")
    Judge(llama, mode="critique", max_new_tokens=16).judge(records[3:4])  # leave other state in the cache
    again = judge.judge(list(reversed(records)))[::-1]
    fresh_backend = load_backend(None, n_threads=1)
    try:
        fresh = [Judge(fresh_backend, mode="verdict").judge([r])[0] for r in records[:3]]
    finally:
        fresh_backend.close()
    for first, second in zip(llama_verdicts, again, strict=True):
        for label, p in first.probabilities.items():
            assert second.probabilities[label] == pytest.approx(p, abs=1e-4)
    for first, other in zip(llama_verdicts[:3], fresh, strict=True):
        for label, p in first.probabilities.items():
            assert other.probabilities[label] == pytest.approx(p, abs=1e-4)


def test_llamacpp_too_long_input(llama, records):
    record = _by_task(records, "absolute")
    huge = record.model_copy(update={"response": " ".join(f"token{i % 50}" for i in range(12000))})
    results = Judge(llama, mode="verdict").judge([huge, record])
    assert results[0].status is Status.error and results[0].error.startswith("input is ")
    assert results[0].result is None
    assert results[1].status is Status.logits  # the next item is unaffected


# -- transformers -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def base_llama_verdicts(records):
    """The untrained embedded base through llama.cpp (`smollm2`), the same weights `hf:smollm2` loads."""
    with load_backend("smollm2", n_threads=1) as base:
        return Judge(base, mode="verdict").judge(records)


def test_transformers_verdicts_match_llamacpp(hf, records, base_llama_verdicts):
    assert isinstance(hf, TransformersBackend)
    results = Judge(hf, mode="verdict").judge(records)
    llama_verdicts = base_llama_verdicts
    same_argmax = 0
    for record, ours, ref in zip(records, results, llama_verdicts, strict=True):
        assert ours.status is Status.logits and ours.id == record.id
        assert list(ours.probabilities) == list(LABELS[record.task])
        assert sum(ours.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        # Q4_1 in llama.cpp against dequantized fp32 here: close, not equal
        assert max(abs(ours.probabilities[k] - ref.probabilities[k]) for k in ref.probabilities) < 0.15
        same_argmax += ours.result == ref.result
    assert same_argmax >= len(records) - 1


def test_transformers_batch_matches_single(hf, records):
    """A batch of two prompts of different lengths (left padding) gives what each gives alone."""
    short, long_ = _by_task(records, "classification"), records[1]  # records[1]: the haiku pair, longer
    judge = Judge(hf, mode="critique", max_new_tokens=24)
    batched = judge.judge([long_, short])
    assert batched[0].prompt_tokens != batched[1].prompt_tokens
    singles = [judge.judge([r])[0] for r in (long_, short)]
    for record, together, alone in zip((long_, short), batched, singles, strict=True):
        assert together.id == record.id
        assert together.status in (Status.ok, Status.forced, Status.tolerant)
        assert together.result in LABELS[record.task]
        assert together.critique and together.critique.strip()
        assert together.raw_output.startswith("**Reasoning:**")
        assert 1 <= together.completion_tokens <= 25
        assert together.raw_output == alone.raw_output
        for label, p in alone.probabilities.items():
            assert together.probabilities[label] == pytest.approx(p, abs=1e-3)
