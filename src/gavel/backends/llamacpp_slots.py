"""Several sequences per forward pass in llama.cpp: one KV-cache sequence per item, refilled as items finish.

A `SlotScheduler` owns a llama.cpp context of its own on an already loaded model. Each request takes a
slot (a KV-cache sequence with a stream of `slot_ctx` cells of its own). Every step evaluates the prompt of
each request that just took a slot, then runs one forward pass (`llama_decode`) holding the next token of
every item that is generating; each item samples from its own logits with its own sampler chain (the chain
`Llama.generate` builds: repetition penalty over the last 64 generated tokens, then greedy or temperature
sampling), stops on its own (at ``**Result:**``, end of turn or its limit), and has its verdict read from the
next-token logits after ``**Result:**``; its slot then takes the next request.

Same results as one at a time: llama.cpp's arithmetic on this CPU depends on how tokens are grouped into
passes (activations are quantised per block, so a rounding difference of one ulp can flip a code and move a
logit by tenths), so the scheduler groups them exactly as the one-at-a-time path does. A prompt (or the text
after a critique) is evaluated in its own passes, in chunks of `chunk` tokens; a request reuses exactly the
opening it shares with the request before it (as one context reused in turn would); each sequence has its own
cache stream, so attention sees that sequence's cells only; only single generated tokens share a pass (each
is its own row there, computed as alone), and only those of sequences whose length rounds up to the same
multiple of 256 (llama.cpp attends over that many cells for every stream of a pass). A unified cache, where
sequences share one pool of cells, moved logits by up to 0.8 on this model.

Prefix sharing: a request copies the cache of the request before it (`llama_memory_seq_cp`, a copy of that
stream) and cuts it to their shared opening, or, when that slot is free, takes it over in place. The two orders
of a pairwise item share the template's opening and the instruction; consecutive items of one template
share the opening. A request that needs more cells than a slot holds runs alone, through `solo`.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from gavel.backends.base import Reply, Request

#: Repetition penalty window, in generated tokens (llama-cpp-python's `Llama.generate` default, kept identical).
PENALTY_LAST_N = 64
#: llama.cpp attends over a multiple of 256 cells (the longest stream in the pass, rounded up); sequences
#: that round alike share a pass, so each attends over exactly the cells it would alone.
ATTENTION_PAD = 256
#: Cells kept spare per request: the critique re-tokenised with the closing tag can take a few more tokens.
ROOM_MARGIN = 16


@dataclass
class Ticket:
    """One request on its way through the scheduler; `reply` is set when it is done."""

    request: Request
    plan: Plan
    reply: Reply | None = None


@dataclass
class Plan:
    """What the backend worked out for a request before it takes a slot."""

    prompt_tokens: int  # the rendered prompt, as reported
    first: list[int]  # tokens to evaluate first: prompt + opener (critique) or prompt + result tag (verdict)
    room: int  # KV cells this request may need at most
    finish: Callable[[Request, str, bool], list[int]]  # (request, critique, wrote tag) -> tokens to score at
    read: Callable[[Request, np.ndarray, str, bool, int], Reply]  # logits, critique, wrote tag, generated -> reply
    error: Reply | None = None  # set when the request cannot run (too long)


@dataclass
class _Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # evaluated, in the KV cache under `seq`
    ticket: Ticket | None = None
    todo: list[int] = field(default_factory=list)  # to evaluate in the next passes
    scoring: bool = False  # evaluating the text after the critique, to read the verdict
    sampler: object = None
    generated: list[int] = field(default_factory=list)
    text: object = None  # CritiqueText while generating
    started: float = 0.0
    last_used: int = 0


class SlotScheduler:
    """Runs requests over `slots` KV-cache sequences of one llama.cpp context (see the module docstring)."""

    def __init__(self, llm, *, slots: int, slot_ctx: int, chunk: int, n_threads: int, eos: set[int],
                 detokenize: Callable[[int], bytes], new_text: Callable[[], object],
                 solo: Callable[[Request], Reply], pace: Callable[[], None] = lambda: None,
                 lora_scale: float = 1.0) -> None:
        import llama_cpp as lc

        self.lc = lc
        params = lc.llama_context_params.from_buffer_copy(llm.context_params)  # the same settings as `llm`'s own
        params.n_ctx = slot_ctx * slots
        params.n_batch = max(chunk, slots)
        params.n_ubatch = chunk
        params.n_seq_max = slots
        params.kv_unified = False  # a stream per sequence: the same arithmetic as one sequence alone
        params.n_threads = params.n_threads_batch = n_threads
        self.ctx = lc.llama_init_from_model(llm.model, params)
        if self.ctx is None:
            raise RuntimeError("llama.cpp could not create a context for batched decoding")
        adapter = getattr(llm, "_lora_adapter", None)
        if adapter is not None:
            adapters = (lc.llama_adapter_lora_p_ctypes * 1)(adapter)
            if lc.llama_set_adapters_lora(self.ctx, adapters, 1, (ctypes.c_float * 1)(lora_scale)):
                raise RuntimeError("llama.cpp could not apply the LoRA adapter to the batched context")
        self.memory = lc.llama_get_memory(self.ctx)
        self.slot_ctx = lc.llama_n_ctx(self.ctx) // slots
        self.solo = solo
        self.pace = pace  # called before every step (the backend adjusts its threads there)
        self.chunk = chunk
        self.n_vocab = llm.n_vocab()
        self.seed = llm._seed
        self.batch = lc.llama_batch_init(max(chunk, slots), 0, 1)
        self.slots = [_Slot(seq=i) for i in range(slots)]
        self.waiting: deque[Ticket] = deque()
        self.eos = eos
        self.detokenize = detokenize
        self.new_text = new_text
        self.passes = 0
        self.previous: _Slot | None = None  # the slot of the request admitted last

    # -- public -------------------------------------------------------------------------------------
    def set_threads(self, n: int) -> None:
        self.lc.llama_set_n_threads(self.ctx, n, n)

    def submit(self, ticket: Ticket) -> None:
        """Queue a request for a slot (one that cannot run is done at once, with its error)."""
        if ticket.plan.error is not None:
            ticket.reply = ticket.plan.error
        else:
            self.waiting.append(ticket)

    @property
    def busy(self) -> bool:
        return bool(self.waiting) or any(s.ticket is not None for s in self.slots)

    def has_room_for_more(self) -> bool:
        """A free slot and nobody waiting for one: the caller may submit another request."""
        return not self.waiting and any(s.ticket is None for s in self.slots)

    def step(self) -> None:
        """Admit waiting requests into free slots (evaluating their prompts), then one pass over generating ones."""
        self.passes += 1
        self.pace()
        self._admit()
        generating = [s for s in self.slots if s.ticket is not None and s.todo]
        groups: dict[int, list[_Slot]] = {}
        for slot in generating:  # attention spans the longest stream of a pass, rounded up to 256 cells
            groups.setdefault(-(-(len(slot.tokens) + 1) // ATTENTION_PAD), []).append(slot)
        done = []
        for group in groups.values():
            if not self._decode([(s, s.todo) for s in group]):
                continue
            for index, slot in enumerate(group):  # every sample is read before another pass overwrites them
                slot.tokens.extend(slot.todo)
                slot.todo = []
                if self._advance(slot, index):
                    done.append(slot)
        for slot in done:
            self._score(slot)

    def run(self, tickets: Iterable[Ticket]) -> list[Ticket]:
        """Every ticket done (other live tickets advance meanwhile)."""
        tickets = list(tickets)
        for ticket in tickets:
            self.submit(ticket)
        while any(t.reply is None for t in tickets):
            self.step()
        return tickets

    def stream(self, tickets: Iterable[Ticket]) -> Iterator[Ticket]:
        """Tickets in input order, each as soon as it and those before it are done; input read lazily."""
        source = iter(tickets)
        order: deque[Ticket] = deque()
        exhausted = False
        while True:
            while not exhausted and self.has_room_for_more():
                ticket = next(source, None)
                if ticket is None:
                    exhausted = True
                    break
                self.submit(ticket)
                order.append(ticket)
            while order and order[0].reply is not None:
                yield order.popleft()
            if exhausted and not order:
                return
            self.step()

    def close(self) -> None:
        for slot in self.slots:
            self._drop_sampler(slot)
        if self.batch is not None:
            self.lc.llama_batch_free(self.batch)
            self.batch = None
        if self.ctx is not None:
            self.lc.llama_free(self.ctx)
            self.ctx = None

    # -- admission ----------------------------------------------------------------------------------
    def _admit(self) -> None:
        while self.waiting:
            ticket = self.waiting[0]
            if ticket.plan.room + ROOM_MARGIN > self.slot_ctx:  # too big for a slot: alone, in order
                self.waiting.popleft()
                ticket.reply = self.solo(ticket.request)
                continue
            free = [s for s in self.slots if s.ticket is None]
            if not free:
                return
            self.waiting.popleft()
            self._start(ticket, free)

    def _start(self, ticket: Ticket, free: list[_Slot]) -> None:
        """Take a slot with the opening shared with the previous request, evaluate the rest, sample or read."""
        source = self.previous
        shared = min(_common(source.tokens, ticket.plan.first), len(ticket.plan.first) - 1) if source else 0
        if source is not None and source.ticket is None:
            target = source
            self.lc.llama_memory_seq_rm(self.memory, target.seq, shared, -1)
            target.tokens = target.tokens[:shared]
        else:
            target = min(free, key=lambda s: (len(s.tokens) > 0, s.last_used))
            self._clear(target)
            if source is not None and shared > 0:  # another stream: copied whole before the next pass, then cut
                self.lc.llama_memory_seq_cp(self.memory, source.seq, target.seq, -1, -1)
                self.lc.llama_memory_seq_rm(self.memory, target.seq, shared, -1)
                target.tokens = source.tokens[:shared]
        self.previous = target
        critique = ticket.request.critique
        target.ticket = ticket
        target.scoring = not critique
        target.generated = []
        target.text = self.new_text() if critique else None
        target.sampler = self._sampler(ticket.request) if critique else None
        target.started = time.perf_counter()
        target.last_used = self.passes
        self._evaluate(target, ticket.plan.first[shared:])

    def _evaluate(self, slot: _Slot, tokens: list[int]) -> None:
        """Evaluate a prompt part alone, in chunks (as `Llama.eval` does), then sample or read the verdict."""
        chunk: list[int] = []
        for start in range(0, len(tokens), self.chunk):
            chunk = tokens[start:start + self.chunk]
            if not self._decode([(slot, chunk)]):
                return
            slot.tokens.extend(chunk)
        if self._advance(slot, len(chunk) - 1):  # the last token of the last chunk
            self._score(slot)

    def _decode(self, parts: list[tuple[_Slot, list[int]]]) -> bool:
        """One llama_decode over each slot's tokens, logits for the last token of each; False if it failed."""
        batch, n = self.batch, 0
        for slot, tokens in parts:
            start = len(slot.tokens)
            for offset, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = start + offset
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq
                batch.logits[n] = offset == len(tokens) - 1
                n += 1
        batch.n_tokens = n
        code = self.lc.llama_decode(self.ctx, batch)
        if code != 0:
            for slot, _ in parts:
                self._fail(slot, f"llama.cpp: decode failed (code {code})")
        return code == 0

    def _clear(self, slot: _Slot) -> None:
        self.lc.llama_memory_seq_rm(self.memory, slot.seq, -1, -1)
        slot.tokens = []

    def _advance(self, slot: _Slot, index: int) -> bool:
        """The slot's last token went through (at `index` in the batch): read the verdict, or sample the next
        token; True when its critique is over and the text after it must be evaluated (`_score`)."""
        ticket = slot.ticket
        assert ticket is not None
        request = ticket.request
        try:
            if slot.scoring:
                logits = np.ctypeslib.as_array(self.lc.llama_get_logits_ith(self.ctx, index), shape=(self.n_vocab,))
                critique, wrote = slot.text.result() if slot.text is not None else ("", False)
                self._finish(slot, ticket.plan.read(request, logits.copy(), critique, wrote, len(slot.generated)))
                return False
            token = self.lc.llama_sampler_sample(slot.sampler, self.ctx, index)
        except Exception as exc:  # one bad item must not stop the others
            self._fail(slot, f"llama.cpp: {exc}")
            return False
        if token in self.eos:
            return True
        slot.generated.append(token)
        if slot.text.add(self.detokenize(token)) or len(slot.generated) >= request.max_new_tokens:
            return True
        slot.todo = [token]
        return False

    def _score(self, slot: _Slot) -> None:
        """Evaluate the text after the critique (re-tokenised, with the closing tag) and read the verdict."""
        ticket = slot.ticket
        assert ticket is not None
        self._drop_sampler(slot)
        try:
            final = ticket.plan.finish(ticket.request, *slot.text.result())
        except Exception as exc:
            self._fail(slot, f"llama.cpp: {exc}")
            return
        if len(final) >= self.slot_ctx:  # re-tokenised, it outgrew the slot: the whole request again, alone
            self._finish(slot, self.solo(ticket.request))
            return
        keep = min(_common(slot.tokens, final), len(final) - 1)
        self.lc.llama_memory_seq_rm(self.memory, slot.seq, keep, -1)
        slot.tokens = slot.tokens[:keep]
        slot.scoring = True
        self._evaluate(slot, final[keep:])

    def _finish(self, slot: _Slot, reply: Reply) -> None:
        assert slot.ticket is not None
        if reply.error is None:
            reply.latency_s = time.perf_counter() - slot.started
        reply.prompt_tokens = slot.ticket.plan.prompt_tokens
        slot.ticket.reply = reply
        slot.ticket = None
        slot.todo = []
        slot.last_used = self.passes
        self._drop_sampler(slot)

    def _fail(self, slot: _Slot, message: str) -> None:
        if slot.ticket is not None:
            self._finish(slot, Reply(error=message))
        self._clear(slot)

    # -- sampling -----------------------------------------------------------------------------------
    def _sampler(self, request: Request):
        """The chain `Llama.generate` builds for these settings, one per sequence (its penalty window is its own)."""
        lc = self.lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        add = lambda s: lc.llama_sampler_chain_add(chain, s)  # noqa: E731
        add(lc.llama_sampler_init_penalties(self.n_vocab, PENALTY_LAST_N, request.repetition_penalty, 0.0, 0.0))
        if request.temperature <= 0:
            add(lc.llama_sampler_init_greedy())
        else:
            add(lc.llama_sampler_init_top_k(0))
            add(lc.llama_sampler_init_typical(1.0, 1))
            add(lc.llama_sampler_init_top_p(1.0, 1))
            add(lc.llama_sampler_init_min_p(0.0, 1))
            add(lc.llama_sampler_init_temp(request.temperature))
            add(lc.llama_sampler_init_dist(self.seed))
        return chain

    def _drop_sampler(self, slot: _Slot) -> None:
        if slot.sampler is not None:
            self.lc.llama_sampler_free(slot.sampler)
            slot.sampler = None


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n
