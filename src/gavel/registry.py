"""A typed name -> entry registry, filled by decorators at import time (benchmarks, curation sources)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by unique name; ``ensure`` imports the modules that register them."""

    def __init__(self, kind: str, ensure: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._ensure = ensure
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def _loaded(self) -> dict[str, T]:
        if self._ensure is not None:
            self._ensure()
        return self._entries

    def get(self, name: str) -> T:
        entries = self._loaded()
        if name not in entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(entries))}")
        return entries[name]

    def names(self) -> list[str]:
        return sorted(self._loaded())

    def all(self) -> dict[str, T]:
        return dict(self._loaded())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
