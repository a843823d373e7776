"""A typed registry of judge benchmarks: each entry is a loader that yields records with gold labels."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gavel.io import DataUnavailable
from gavel.judge.records import JudgeRecord, Task
from gavel.registry import Registry

DATA_ROOT_ENV = "GAVEL_DATA_ROOT"

#: The metric each task type is ranked by (the paper's choice); others are reported beside it.
PRIMARY_METRIC: dict[Task, str] = {
    Task.absolute: "pearson",
    Task.classification: "accuracy",
    Task.pairwise: "accuracy",
}


#: The benchmark's data is neither under the data root nor reachable on the hub.
BenchmarkUnavailable = DataUnavailable


@dataclass(frozen=True)
class LoadContext:
    """What a loader gets: where local data lives and the seed for any random placement."""

    data_root: Path | None
    seed: int = 0

    def path(self, *parts: str) -> Path:
        if self.data_root is None:
            raise BenchmarkUnavailable("no data root: pass --data-root or set GAVEL_DATA_ROOT")
        target = self.data_root.joinpath(*parts)
        if not target.exists():
            raise BenchmarkUnavailable(f"{target} does not exist")
        return target


Loader = Callable[[LoadContext], list[JudgeRecord]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    task: Task
    loader: Loader
    description: str
    suites: tuple[str, ...] = ("local",)
    gold: str = "human"  # who produced the labels: human, gpt-4, construction, ...
    subsets_field: str | None = None  # record field that splits results into subsets (e.g. "subset")
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return PRIMARY_METRIC[self.task]

    def load(self, ctx: LoadContext, limit: int | None = None) -> list[JudgeRecord]:
        records = self.loader(ctx)
        return records if limit is None else records[:limit]


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
        raise KeyError(f"unknown suite {name!r}")
    return found


def default_data_root(explicit: str | Path | None = None) -> Path | None:
    """--data-root, else $GAVEL_DATA_ROOT, else ../shared/data/benchmarks when it exists."""
    if explicit:
        return Path(explicit)
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV])
    relative = Path("..", "shared", "data", "benchmarks")
    candidates = [Path.cwd() / relative, Path(__file__).resolve().parents[3] / relative]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return None
