"""llama.cpp's threads: fixed by the user, or following the cores other processes leave idle (real processes)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gavel.backends.threads import THREADS_ENV, FreeCores, fixed_threads, threads_for, usable_cores

pytest.importorskip("psutil")


@contextmanager
def busy_processes(n: int) -> Iterator[None]:
    """`n` processes spinning on the CPU, stopped on exit."""
    rivals = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.3)  # started and spinning
        yield
    finally:
        for rival in rivals:
            rival.kill()
            rival.wait()


def needs_cores_to_share() -> int:
    cores = len(usable_cores())
    if cores < 2:
        pytest.skip("one usable core: there is nothing to leave to another process")
    if cores > 16:
        pytest.skip(f"{cores} cores: holding all but one with busy processes is too heavy for a test")
    return cores


@pytest.mark.parametrize(("cores", "held", "threads"), [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 2.0, 1), (8, 2.6, 5), (8, 0.49, 8), (1, 0.9, 1)])
def test_one_thread_per_core_others_leave_idle(cores, held, threads):
    assert threads_for(cores, held) == threads


def test_threads_fixed_by_the_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert fixed_threads() is None
    monkeypatch.setenv(THREADS_ENV, "3")
    assert fixed_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=f"{THREADS_ENV}="):
            fixed_threads()


def test_cores_numbered_beyond_the_counters_fall_back_to_every_counter(monkeypatch):
    """Some containers show their CPUs as rows 0..n-1 while the affinity names the host's cores."""
    import psutil

    from gavel.backends import threads

    rows = len(psutil.cpu_times(percpu=True))
    monkeypatch.setattr(threads, "usable_cores", lambda: [rows + 3, rows + 4])
    watch = FreeCores()
    assert watch.cores == list(range(rows))
    assert 1 <= watch.look(force=True) <= rows


def test_cores_held_by_busy_processes_are_seen_and_its_own_work_is_not():
    cores = needs_cores_to_share()
    watch = FreeCores(interval_s=1.0)
    with busy_processes(cores - 1):
        watch.look(force=True)
        time.sleep(1.0)
        assert watch.look() == 1
        assert watch.held_by_others > cores - 1.5
    time.sleep(0.2)
    watch.look(force=True)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # this process's own work does not count as held
        sum(i * i for i in range(10_000))
    watch.look(force=True)
    assert watch.held_by_others < cores - 1.5


def test_the_backend_takes_one_thread_beside_a_busy_process_and_its_cores_back_after(monkeypatch):
    """The embedded judge loaded without a fixed number: one thread while the other cores are busy, judging on."""
    pytest.importorskip("llama_cpp")
    from gavel.backends import Request, load_backend

    cores = needs_cores_to_share()
    monkeypatch.delenv(THREADS_ENV, raising=False)
    request = Request(messages=[{"role": "user", "content": "Is 2 + 2 = 4? Answer Yes or No."}],
                      labels=("Yes", "No"), critique=False)
    with busy_processes(cores - 1):
        backend = load_backend(None)
        assert backend.info.extra["threads"] == "idle cores"
        assert backend.threads == 1
        assert backend.run([request])[0].error is None
    backend.free_cores.interval_s = 0.5
    backend.free_cores.look(force=True)
    time.sleep(0.6)
    reply = backend.run([request])[0]
    assert reply.error is None and sum(reply.label_probs.values()) == pytest.approx(1.0)
    assert backend.threads == cores
    backend.close()


def test_a_fixed_number_is_kept(monkeypatch):
    pytest.importorskip("llama_cpp")
    from gavel.backends import load_backend

    monkeypatch.setenv(THREADS_ENV, "1")
    with load_backend(None) as backend:
        assert backend.free_cores is None and backend.threads == 1 and backend.info.extra["threads"] == "1"
