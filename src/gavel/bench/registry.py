"""A typed registry of judge benchmarks: each entry is a loader that yields validated rows with gold labels.

Loaders build plain rows and validate them with :func:`gavel.bench.loaders._util.build_records`, so every
benchmark follows one convention: a bad row becomes a :class:`RowError` that is counted and listed in the
report, and the benchmark survives it. Data roots and :class:`~gavel.data.LoadContext` live in
:mod:`gavel.data` (curation shares them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from gavel.data import LoadContext, default_data_root
from gavel.io import DataUnavailable
from gavel.judge.records import JudgeRecord, LoadedRow, RowError
from gavel.labels import PRIMARY_METRIC, Task
from gavel.registry import Registry

log = logging.getLogger(__name__)


#: The benchmark's data is neither under the data root nor reachable on the hub.
BenchmarkUnavailable = DataUnavailable


Loader = Callable[[LoadContext], list[LoadedRow]]


@dataclass
class BenchData:
    """A benchmark's valid records and the rows that could not be used (with file, row, field, reason)."""

    records: list[JudgeRecord]
    errors: list[RowError] = field(default_factory=list)

    @classmethod
    def split(cls, rows: list[LoadedRow]) -> BenchData:
        return cls(records=[r.record for r in rows if r.record is not None],
                   errors=[r.error for r in rows if r.error is not None])


@dataclass(frozen=True)
class Benchmark:
    name: str
    task: Task
    loader: Loader
    description: str
    suites: tuple[str, ...] = ("local",)
    gold: str = "human"  # who produced the labels: human, gpt-4, construction, ...
    subsets_field: str | None = None  # record field that splits results into subsets (e.g. "subset")

    @property
    def metric(self) -> str:
        return PRIMARY_METRIC[self.task]

    def load_data(self, ctx: LoadContext) -> BenchData:
        """The valid records and the row errors (what `gavel bench` reports)."""
        return BenchData.split(self.loader(ctx))

    def load(self, ctx: LoadContext) -> list[JudgeRecord]:
        """The valid records; bad rows are logged (use :meth:`load_data` to get them)."""
        data = self.load_data(ctx)
        if data.errors:
            log.warning("%s: %d bad row(s) left out, e.g. %s", self.name, len(data.errors), data.errors[0])
        return data.records


def _ensure_loaded() -> None:
    from gavel.bench import loaders  # noqa: F401 - importing registers every benchmark


_REGISTRY: Registry[Benchmark] = Registry("benchmark", _ensure_loaded)


def register(name: str, task: Task, description: str, **kwargs) -> Callable[[Loader], Loader]:
    """Decorator: ``@register("hhh", Task.pairwise, "HHH alignment", suites=("paper", "local"))``."""

    def wrap(loader: Loader) -> Loader:
        _REGISTRY.add(name, Benchmark(name=name, task=task, loader=loader, description=description, **kwargs))
        return loader

    return wrap


def get(name: str) -> Benchmark:
    return _REGISTRY.get(name)


def all_benchmarks() -> dict[str, Benchmark]:
    return _REGISTRY.all()


def suite(name: str) -> list[Benchmark]:
    found = [b for b in _REGISTRY.all().values() if name in b.suites]
    if not found:
        known = sorted({s for b in _REGISTRY.all().values() for s in b.suites})
        raise KeyError(f"unknown suite {name!r}; known: {', '.join(known)}")
    return found


__all__ = [
    "BenchData",
    "Benchmark",
    "BenchmarkUnavailable",
    "LoadContext",
    "all_benchmarks",
    "default_data_root",
    "get",
    "register",
    "suite",
]
