"""Where data is read from, and how a pair is placed: shared by the benchmark loaders and the curation adapters.

- the data roots: ``$GAVEL_DATA_ROOT`` (the benchmarks), the ``train`` folder beside it (curation sources), and
  the ``../shared/data`` fallback of a development checkout;
- :class:`LoadContext`, what every loader and adapter receives, whose errors name the option of the command
  that set its root (``gavel bench --data-root``, a curate config's ``data_root``);
- :func:`place_pair`, the one seeded rule that puts the better response of a pair at A or B.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gavel.io import DataUnavailable
from gavel.labels import LABELS, Task
from gavel.settings import DEFAULT_SEED

DATA_ROOT_ENV = "GAVEL_DATA_ROOT"
T = TypeVar("T")
#: How `gavel bench` sets its data root (the default for a LoadContext).
BENCH_ROOT_OPTION = "--data-root"


@dataclass(frozen=True)
class LoadContext:
    """What a loader gets: where local data lives, the seed for any random placement, and how the user sets
    the root (named in the error when there is none)."""

    data_root: Path | None
    seed: int = DEFAULT_SEED
    root_option: str = BENCH_ROOT_OPTION

    def path(self, *parts: str) -> Path:
        if self.data_root is None:
            raise DataUnavailable(f"no data root: set {self.root_option} or {DATA_ROOT_ENV}")
        target = self.data_root.joinpath(*parts)
        if not target.exists():
            raise DataUnavailable(f"{target} does not exist")
        return target

    def benchmarks(self) -> LoadContext:
        """The benchmark root beside a training-data root (``<root>/../benchmarks``), same seed and option."""
        root = None if self.data_root is None else self.data_root.parent / "benchmarks"
        return LoadContext(data_root=root, seed=self.seed, root_option=self.root_option)


def default_data_root(explicit: str | Path | None = None) -> Path | None:
    """The benchmark root: ``explicit``, else $GAVEL_DATA_ROOT, else ../shared/data/benchmarks when it exists."""
    if explicit:
        return Path(explicit)
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV])
    relative = Path("..", "shared", "data", "benchmarks")
    candidates = [Path.cwd() / relative, Path(__file__).resolve().parents[2] / relative]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return None


def default_train_root(explicit: str | Path | None = None) -> Path | None:
    """The training-data root: ``explicit``, else the ``train`` folder beside the benchmark root."""
    if explicit:
        return Path(explicit)
    bench = default_data_root()
    return None if bench is None else bench.parent / "train"


def place_pair(better: T, worse: T, key: str, seed: int) -> tuple[T, T, str]:
    """Put the better response at A or B by a coin seeded on (seed, key): (response_a, response_b, label).

    Every benchmark loader and curation adapter that builds a pair from a better and a worse response places
    it here, so a placement depends only on the seed and the pair's own key, never on row order.
    """
    a, b = LABELS[Task.pairwise]
    if random.Random(f"{seed}-{key}").random() < 0.5:
        return better, worse, a
    return worse, better, b


__all__ = ["DATA_ROOT_ENV", "LoadContext", "default_data_root", "default_train_root", "place_pair"]
