"""A typed registry of judge benchmarks: each entry is a loader that yields records with gold labels."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gavel.io import DataUnavailable
from gavel.judge.records import JudgeRecord, Task

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


_REGISTRY: dict[str, Benchmark] = {}


def register(name: str, task: Task, description: str, **kwargs) -> Callable[[Loader], Loader]:
    """Decorator: ``@register("hhh", Task.pairwise, "HHH alignment", suites=("paper", "local"))``."""

    def wrap(loader: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        _REGISTRY[name] = Benchmark(name=name, task=task, loader=loader, description=description, **kwargs)
        return loader

    return wrap


def _ensure_loaded() -> None:
    from gavel.bench import loaders  # noqa: F401 - importing registers every benchmark


def get(name: str) -> Benchmark:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_benchmarks() -> dict[str, Benchmark]:
    _ensure_loaded()
    return dict(_REGISTRY)


def suite(name: str) -> list[Benchmark]:
    _ensure_loaded()
    found = [b for b in _REGISTRY.values() if name in b.suites]
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
