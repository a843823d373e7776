"""Several sequences per forward pass (llama.cpp `batch_size` > 1) against the one-at-a-time path, on the real
embedded judge; and the incremental critique text both paths use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gavel.backends import load_backend
from gavel.backends.base import Request
from gavel.backends.local import CritiqueText, cut_at_result
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, Task
from gavel.judge.result import Status

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.jsonl"


# -- incremental detokenisation (no model) -----------------------------------------------------------

@pytest.mark.parametrize("text", [
    "plain words, no tag at all",
    "Good answer.\n\n**Result:** 4 and more",
    "split **Res",
    "tag at once **Result**: A",
    "héllo wörld ✓ **Result:** B",
])
def test_critique_text_matches_decoding_everything_each_time(text: str) -> None:
    data = text.encode()
    for size in (1, 2, 3, 7):
        pieces = [data[i:i + size] for i in range(0, len(data), size)]
        tracker, seen = CritiqueText(), b""
        for piece in pieces:
            seen += piece
            found = tracker.add(piece)
            whole, wrote = cut_at_result(seen.decode("utf-8", errors="ignore"))
            assert found == wrote
            if found:
                break
        assert tracker.result() == (whole, wrote)


# -- the real model ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def records() -> list[JudgeRecord]:
    rows = [json.loads(line) for line in QUICKSTART.read_text().splitlines()]
    return [JudgeRecord.model_validate(r) for r in rows]


@pytest.fixture(scope="module")
def one_at_a_time():
    backend = load_backend(None, n_threads=1, batch_size=1)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def batched():
    backend = load_backend(None, n_threads=1, batch_size=4, slot_ctx=1024)
    yield backend
    backend.close()


def _too_long(record: JudgeRecord) -> JudgeRecord:
    return record.model_copy(update={"id": "too-long", "response_a": "word " * 9000})


def _needs_a_big_slot(record: JudgeRecord) -> JudgeRecord:
    return record.model_copy(update={"id": "big", "response_a": "word " * 700})


@pytest.mark.model
def test_verdicts_both_orders_match_one_at_a_time(one_at_a_time, batched, records) -> None:
    pairs = [r for r in records if r.task is Task.pairwise]
    items = [*records, _too_long(pairs[0]), _needs_a_big_slot(pairs[1]), *pairs]
    alone = Judge(one_at_a_time, mode="verdict", both_orders=True).judge(items)
    together = Judge(batched, mode="verdict", both_orders=True).judge(items)
    assert [r.id for r in together] == [r.id for r in items]
    assert [r.result for r in together] == [r.result for r in alone]
    assert [r.result_by_order for r in together] == [r.result_by_order for r in alone]
    for a, b in zip(alone, together, strict=True):
        if a.status is Status.error:
            assert b.status is Status.error and b.error == a.error
            continue
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) < 1e-3
    assert together[len(records)].status is Status.error and "too long" in together[len(records)].error
    assert together[len(records) + 1].status is Status.logits  # ran alone, beyond a slot's room


@pytest.mark.model
def test_critiques_stop_on_their_own_in_one_pass(batched, records) -> None:
    """An item that writes its tag early shares passes with items that run to their limit; each stops alone."""
    requests = Judge(batched, mode="critique", max_new_tokens=24)
    prepared = [requests._prepare(r).requests[0] for r in records]
    early = Request(messages=[{"role": "user", "content": "Reply with exactly: **Result:** Yes"}],
                    labels=("Yes", "No"), critique=True, max_new_tokens=24)
    replies = batched.run([prepared[0], early, *prepared[1:]])
    assert len(replies) == len(records) + 1
    limited = [r for r in replies if not r.text.endswith("**Result:**")]
    assert limited and all(r.completion_tokens == 25 and r.forced for r in limited)  # 24 generated + the verdict
    for reply in replies:
        assert reply.error is None and abs(sum(reply.label_probs.values()) - 1) < 1e-9


@pytest.mark.model
def test_batch_option_and_threads_reach_the_backend(batched) -> None:
    assert batched.batch_size == 4 and batched.slots is not None
    assert batched.info.extra["threads"] == "1"
    with pytest.raises(ValueError, match="batch size 0"):
        load_backend(None, batch_size=0)


@pytest.mark.model
@pytest.mark.parametrize("spec", ["smollm2", "default@q8_0"])
def test_critiques_match_one_at_a_time_without_an_unmerged_adapter(spec: str, records) -> None:
    """Without an adapter applied at every pass (the embedded base; the default judge merged into one file, built
    once into the cache), batched critiques equal one-at-a-time ones token for token and probability for
    probability: both orders, items that stop early beside items that run to their limit, an over-long item."""
    pairs = [r for r in records if r.task is Task.pairwise]
    items = [*records, _too_long(pairs[0]), *pairs]
    early = Request(messages=[{"role": "user", "content": "Say only: OK."}], labels=("Yes", "No"), critique=True,
                    max_new_tokens=24)
    results = []
    for batch in (1, 4):
        backend = load_backend(spec, n_threads=1, batch_size=batch, slot_ctx=1024)
        try:
            judge = Judge(backend, mode="critique", both_orders=True, max_new_tokens=24)
            first = judge._prepare(records[0]).requests[0]
            results.append((judge.judge(items), backend.run([first, early, first])))
        finally:
            backend.close()
    (alone, alone_replies), (together, together_replies) = results
    assert [r.raw_output for r in together] == [r.raw_output for r in alone]
    assert [r.result_by_order for r in together] == [r.result_by_order for r in alone]
    assert [r.probabilities for r in together] == [r.probabilities for r in alone]  # bit for bit
    assert together[len(records)].status is Status.error
    assert [r.text for r in together_replies] == [r.text for r in alone_replies]
    assert [r.label_probs for r in together_replies] == [r.label_probs for r in alone_replies]
    lengths = [r.completion_tokens for r in together if r.status is not Status.error and r.task is not Task.pairwise]
    lengths += [r.completion_tokens for r in together_replies]  # one request each (a pair's results add two)
    assert min(lengths) < 25 and 25 in lengths  # early stops shared passes with requests at their limit
