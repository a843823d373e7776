"""Control flow of the judge engine, with a scripted fake backend.

The real embedded model goes through the same engine in test_local_backends.py and test_cli.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gavel.backends.base import Backend, BackendInfo, Reply, Request
from gavel.judge.engine import Judge, _verdict
from gavel.judge.records import JudgeRecord
from gavel.judge.result import Mode, Status


class ScriptedBackend(Backend):
    """Answers each request with `answer(request, prompt, call_number_for_this_prompt)`."""

    def __init__(self, answer: Callable[[Request, str, int], Reply], batch_size: int = 8) -> None:
        self.info = BackendInfo(name="scripted", kind="fake")
        self.batch_size = batch_size
        self.answer = answer
        self.calls: list[list[Request]] = []
        self.seen: dict[str, int] = {}

    def run(self, requests):
        self.calls.append(list(requests))
        replies = []
        for request in requests:
            prompt = request.messages[0]["content"]
            self.seen[prompt] = self.seen.get(prompt, 0) + 1
            replies.append(self.answer(request, prompt, self.seen[prompt]))
        return replies


def _abs(id_: str, response: str = "resp") -> JudgeRecord:
    return JudgeRecord.model_validate({"id": id_, "task": "absolute", "instruction": f"question {id_}",
                                       "response": response})


def _pair(id_: str = "p", a: str = "FIRST-ANSWER", b: str = "SECOND-ANSWER") -> JudgeRecord:
    return JudgeRecord.model_validate({"id": id_, "task": "pairwise", "instruction": "which?",
                                       "response_a": a, "response_b": b})


def _swapped(prompt: str) -> bool:
    """Whether the prompt shows the pair in swapped order (SECOND-ANSWER in the A slot)."""
    return prompt.index("SECOND-ANSWER") < prompt.index("FIRST-ANSWER")


# -- _verdict status rules -------------------------------------------------------------------------

def _req(critique: bool, labels=("1", "2", "3", "4", "5")) -> Request:
    return Request(messages=[{"role": "user", "content": "x"}], labels=labels, critique=critique)


PROBS = {"1": 0.05, "2": 0.05, "3": 0.1, "4": 0.2, "5": 0.6}


@pytest.mark.parametrize(
    ("critique", "reply", "expected"),
    [
        # strict text wins, even over a distribution that says otherwise
        (True, Reply(text="**Reasoning:** ok\n\n**Result:** 2", label_probs=PROBS, forced=True), ("2", Status.ok)),
        (True, Reply(text="**Reasoning:** ok\n\n**Result:** 2"), ("2", Status.ok)),
        # the model wrote the tag itself and the backend scored the next token
        (True, Reply(text="**Reasoning:** ok\n\n**Result:**", label_probs=PROBS, forced=False), ("5", Status.ok)),
        (False, Reply(text="", label_probs=PROBS, forced=False), ("5", Status.logits)),
        # a forced distribution (the model's own numbers) beats a tolerant reading of the text (issue 7.4)
        (True, Reply(text="Good answer. Score: 3/5", label_probs=PROBS, forced=True), ("5", Status.forced)),
        (True, Reply(text="Good answer. Score: 3/5"), ("3", Status.tolerant)),
        # two different result tags: the first one, at best tolerant; logprobs at that tag decide (issue 7.2)
        (True, Reply(text="**Result:** 2\nquoting: **Result:** 4"), ("2", Status.tolerant)),
        (True, Reply(text="**Result:** 2\nquoting: **Result:** 4", label_probs=PROBS), ("5", Status.tolerant)),
        (True, Reply(text="**Result:** 2\nagain **Result:** 2", label_probs=PROBS), ("2", Status.ok)),
        # nothing readable in the text: the distribution after the appended tag
        (True, Reply(text="**Reasoning:** rambling", label_probs=PROBS, forced=True), ("5", Status.forced)),
        (True, Reply(text="**Reasoning:** rambling"), (None, Status.parse_failed)),
        (True, Reply(text="**Result:** 9"), (None, Status.parse_failed)),
        (True, Reply(error="boom"), (None, Status.error)),
    ],
)
def test_verdict_status_rules(critique, reply, expected):
    assert _verdict(_req(critique), reply) == expected


def test_single_result_fields_from_reply():
    backend = ScriptedBackend(lambda r, p, n: Reply(text="**Reasoning:** solid work\n\n**Result:** 4",
                                                    label_probs=PROBS, prompt_tokens=120, completion_tokens=9))
    result = Judge(backend, mode="critique").score("q", "a", rubric="Correct?")
    assert result.result == "4" and result.status is Status.ok
    assert result.critique == "solid work"
    assert result.probabilities == PROBS
    assert result.expected_score == pytest.approx(0.05 + 0.1 + 0.3 + 0.8 + 3.0)
    assert (result.prompt_tokens, result.completion_tokens, result.attempts) == (120, 9, 1)
    assert result.model == "scripted" and result.mode is Mode.critique and result.template == "default/absolute"
    request = backend.calls[0][0]
    assert request.critique and request.labels == ("1", "2", "3", "4", "5") and request.temperature == 0.0


def test_verdict_mode_requests_and_no_critique():
    backend = ScriptedBackend(lambda r, p, n: Reply(label_probs={"Yes": 0.3, "No": 0.7}))
    judge = Judge(backend, mode="verdict", max_new_tokens=17)
    result = judge.classify("q", "a")
    assert (result.result, result.status, result.critique) == ("No", Status.logits, None)
    assert result.p_yes == pytest.approx(0.3)
    assert result.expected_score is None  # only absolute items have one
    request = backend.calls[0][0]
    assert request.critique is False and request.labels == ("Yes", "No") and request.max_new_tokens == 17


# -- both orders ------------------------------------------------------------------------------------

def test_both_orders_averages_probabilities_with_the_swap():
    def answer(request, prompt, n):
        # order 1 prefers the first answer strongly; order 2 (swapped) mildly prefers the A slot (SECOND)
        return Reply(label_probs={"A": 0.4, "B": 0.6} if _swapped(prompt) else {"A": 0.8, "B": 0.2},
                     prompt_tokens=10, completion_tokens=1)

    backend = ScriptedBackend(answer)
    result = Judge(backend, mode="verdict", both_orders=True).judge([_pair()])[0]
    assert len(backend.calls[0]) == 2
    assert [_swapped(r.messages[0]["content"]) for r in backend.calls[0]] == [False, True]
    assert result.probabilities == pytest.approx({"A": (0.8 + 0.6) / 2, "B": (0.2 + 0.4) / 2})
    assert result.result == "A"
    assert result.result_by_order == ["A", "A"]  # the swapped order's B maps back to A
    assert result.orders_agree is True
    assert result.status is Status.logits
    assert result.prompt_tokens == 20 and result.completion_tokens == 2
    assert "=== swapped order ===" in result.raw_output


def test_both_orders_disagreement_with_probabilities():
    def answer(request, prompt, n):
        # position bias: the A slot wins in both orders
        return Reply(label_probs={"A": 0.9, "B": 0.1} if _swapped(prompt) else {"A": 0.7, "B": 0.3})

    result = Judge(ScriptedBackend(answer), mode="verdict", both_orders=True).judge([_pair()])[0]
    assert result.probabilities == pytest.approx({"A": 0.4, "B": 0.6})
    assert result.result == "B"  # the averaged distribution decides
    assert result.result_by_order == ["A", "B"]
    assert result.orders_agree is False


@pytest.mark.parametrize(
    ("first", "second", "result", "agree"),
    [("A", "B", "A", True), ("B", "A", "B", True), ("A", "A", "tie", False), ("B", "B", "tie", False)],
)
def test_both_orders_text_only(first, second, result, agree):
    def answer(request, prompt, n):
        return Reply(text=f"**Reasoning:** r\n\n**Result:** {second if _swapped(prompt) else first}")

    combined = Judge(ScriptedBackend(answer), both_orders=True).compare("which?", "FIRST-ANSWER", "SECOND-ANSWER")
    assert combined.probabilities is None
    assert combined.result == result
    assert combined.orders_agree is agree
    assert combined.result_by_order == [first, {"A": "B", "B": "A"}[second]]
    assert combined.status is Status.ok


def test_both_orders_one_order_unreadable():
    def answer(request, prompt, n):
        return Reply(text="no idea" if _swapped(prompt) else "**Result:** B")

    combined = Judge(ScriptedBackend(answer), both_orders=True).judge([_pair()])[0]
    assert combined.result == "B"
    assert combined.result_by_order == ["B", None]
    assert combined.orders_agree is False
    # a result is only ever reported with a status that carries one
    assert combined.scored
    assert combined.status is Status.ok


def test_both_orders_nothing_readable_is_parse_failed():
    combined = Judge(ScriptedBackend(lambda r, p, n: Reply(text="hmm")), both_orders=True).judge([_pair()])[0]
    assert combined.result is None and combined.status is Status.parse_failed
    assert combined.orders_agree is False


def test_both_orders_error_in_one_order():
    def answer(request, prompt, n):
        return Reply(error="backend exploded") if _swapped(prompt) else Reply(text="**Result:** A")

    combined = Judge(ScriptedBackend(answer), both_orders=True).judge([_pair()])[0]
    assert combined.status is Status.error and combined.error == "backend exploded"


def test_both_orders_leaves_other_tasks_single_and_halves_batches():
    backend = ScriptedBackend(lambda r, p, n: Reply(text=f"**Result:** {r.labels[0]}"), batch_size=4)
    records = [_pair(f"p{i}") for i in range(3)] + [_abs("a1")]
    results = Judge(backend, both_orders=True).judge(records)
    assert [r.id for r in results] == ["p0", "p1", "p2", "a1"]
    assert [len(c) for c in backend.calls] == [4, 3]  # two pairs (4 requests), then a pair and one absolute
    assert results[3].result_by_order is None and results[3].orders_agree is None


# -- retries, errors, order -------------------------------------------------------------------------

def test_retries_reask_only_failed_items():
    def answer(request, prompt, n):
        if "question bad" in prompt and n < 3:
            return Reply(text="I cannot decide.")
        return Reply(text="**Result:** 3")

    backend = ScriptedBackend(answer)
    results = Judge(backend, retries=3).judge([_abs("good1"), _abs("bad"), _abs("good2")])
    assert [len(c) for c in backend.calls] == [3, 1, 1]  # only the failed item goes again, until it parses
    assert all("question bad" in c[0].messages[0]["content"] for c in backend.calls[1:])
    assert all(c[0].temperature > 0 for c in backend.calls[1:])  # retries sample
    assert [r.attempts for r in results] == [1, 3, 1]
    assert [r.result for r in results] == ["3", "3", "3"]
    assert [r.status for r in results] == [Status.ok] * 3


def test_retries_exhausted_keep_parse_failed():
    backend = ScriptedBackend(lambda r, p, n: Reply(text="still thinking"))
    result = Judge(backend, retries=2).judge([_abs("x")])[0]
    assert len(backend.calls) == 3
    assert result.status is Status.parse_failed and result.attempts == 3
    assert result.raw_output == "still thinking"


def test_no_retries_by_default():
    backend = ScriptedBackend(lambda r, p, n: Reply(text="still thinking"))
    result = Judge(backend).judge([_abs("x")])[0]
    assert len(backend.calls) == 1 and result.attempts == 1 and result.status is Status.parse_failed


def test_input_errors_are_not_retried():
    backend = ScriptedBackend(lambda r, p, n: Reply(error="input is 9000 tokens; too many", input_error=True))
    result = Judge(backend, retries=2).judge([_abs("x")])[0]
    assert len(backend.calls) == 1
    assert result.status is Status.error and result.error.startswith("input is 9000 tokens")


def test_backend_error_is_status_error_for_that_item_only():
    def answer(request, prompt, n):
        return Reply(error="connection reset") if "question b" in prompt else Reply(text="**Result:** 5")

    results = Judge(ScriptedBackend(answer)).judge([_abs("a"), _abs("b"), _abs("c")])
    assert [r.status for r in results] == [Status.ok, Status.error, Status.ok]
    assert results[1].error == "connection reset" and results[1].result is None
    assert not results[1].scored


def test_input_order_preserved_across_batches():
    def answer(request, prompt, n):
        number = int(prompt.split("question item")[1].split()[0].strip("`"))
        return Reply(text=f"**Result:** {number % 5 + 1}")

    backend = ScriptedBackend(answer, batch_size=3)
    records = [_abs(f"item{i}") for i in range(10)]
    results = list(Judge(backend).judge_iter(records))
    assert [len(c) for c in backend.calls] == [3, 3, 3, 1]
    assert [r.id for r in results] == [f"item{i}" for i in range(10)]
    assert [r.result for r in results] == [str(i % 5 + 1) for i in range(10)]


def test_judge_iter_is_lazy():
    backend = ScriptedBackend(lambda r, p, n: Reply(text="**Result:** 1"), batch_size=2)
    pulled = []

    def records():
        for i in range(6):
            pulled.append(i)
            yield _abs(f"r{i}")

    iterator = Judge(backend).judge_iter(records())
    first = next(iterator)
    assert first.id == "r0"
    assert len(pulled) == 2 and len(backend.calls) == 1


def test_each_reply_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from gavel.judge import engine

    calls: list[str] = []
    real = engine.parse_output

    def counting(task, text):
        calls.append(text)
        return real(task, text)

    monkeypatch.setattr(engine, "parse_output", counting)
    backend = ScriptedBackend(lambda request, prompt, n: Reply(text="**Reasoning:** fine.\n\n**Result:** 4"))
    [result] = Judge(backend, mode="critique").judge([_abs("1")])
    assert (result.result, result.status, result.critique) == ("4", Status.ok, "fine.")
    assert len(calls) == 1
