"""Benchmark loaders: importing this package registers every benchmark with `gavel.bench.registry`."""

from gavel.bench.loaders import (  # noqa: F401 - imported for their @register side effects
    classification,
    generic,
    hub,
    judgebench,
    pairwise,
    prometheus,
)
