"""CPU threads for llama.cpp: a number the user fixes, or one per core that other processes leave idle.

llama.cpp's threads wait for each other at every layer, so one thread that shares its core with another busy
process slows all of them: on 2 cores beside one busy process, 2 threads ran at 0.30x their quiet speed and 1
thread at 0.97x (docs/performance.md). Unless ``--threads`` or ``$GAVEL_THREADS`` fixes the number, the backend
asks `FreeCores` before its forward passes: the CPU time spent on the cores this process may use, minus the
process's own, over the last few seconds, gives the cores other processes hold; the rest get a thread each.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

THREADS_ENV = "GAVEL_THREADS"
#: Seconds between two looks at the cores (and the shortest window the first look waits for).
INTERVAL_S = 2.0
FIRST_WINDOW_S = 0.25
#: A core counts as held by others when they used at least this share of it.
HELD_SHARE = 0.5


def fixed_threads() -> int | None:
    """``$GAVEL_THREADS`` as a number of threads, or None when unset (then the threads follow the idle cores)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${THREADS_ENV}={value!r}: give a number of threads, 1 or more")
    return int(value)


def usable_cores() -> list[int]:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def threads_for(cores: int, held_by_others: float) -> int:
    """One thread per core that others do not hold, at least one."""
    return max(1, cores - math.floor(held_by_others + 1 - HELD_SHARE))


class FreeCores:
    """Watches the usable cores and says how many threads fit in what other processes leave idle."""

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        rows = len(psutil.cpu_times(percpu=True))
        cores = usable_cores()  # where /proc/stat numbers the CPUs otherwise (some containers), all its rows
        self.cores = cores if max(cores) < rows else list(range(rows))
        self.interval_s = interval_s
        self.clock = clock
        self.threads = len(self.cores)
        self.held_by_others = 0.0
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        """(clock, busy CPU seconds on the usable cores, this process's CPU seconds)."""
        per_core = self._psutil.cpu_times(percpu=True)
        busy = 0.0
        for core in self.cores:
            times = per_core[core]._asdict()
            total = sum(v for k, v in times.items() if k not in ("guest", "guest_nice"))  # guests are in user
            busy += total - times["idle"] - times.get("iowait", 0.0)
        own = self._process.cpu_times()
        return self.clock(), busy, own.user + own.system

    def first_look(self) -> int:
        """The threads for the first passes, waiting until the window since construction is long enough to read."""
        waited = self.clock() - self._last[0]
        if waited < FIRST_WINDOW_S:
            time.sleep(FIRST_WINDOW_S - waited)
        return self.look(force=True)

    def look(self, force: bool = False) -> int:
        """The threads to use now; the cores are read again once `interval_s` has passed (or when forced)."""
        now = self.clock()
        if not force and now - self._last[0] < self.interval_s:
            return self.threads
        try:
            sample = self._sample()
        except (OSError, IndexError, self._psutil.Error):  # counters gone or reshaped: keep the threads
            return self.threads
        elapsed = sample[0] - self._last[0]
        if elapsed > 0:
            others = (sample[1] - self._last[1]) - (sample[2] - self._last[2])
            self.held_by_others = max(0.0, others / elapsed)
            self.threads = threads_for(len(self.cores), self.held_by_others)
        self._last = sample
        return self.threads
