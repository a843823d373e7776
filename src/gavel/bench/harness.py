"""`gavel bench`: judge benchmarks with one or more judges, score them, and write the report.

Layout of an output folder::

    DIR/items/<benchmark>/<judge>/<format>.jsonl            per-item results (resumable, like `gavel judge`)
    DIR/items/<benchmark>/<judge>/<format>-injection.jsonl  the injection probe, when asked for
    DIR/results.json, DIR/report.md, DIR/*.png             written by `gavel.bench.report`
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gavel.backends import load_backend
from gavel.bench import registry
from gavel.bench.baselines import BASELINES, baseline_rows
from gavel.bench.metrics import injection_metrics, summarise
from gavel.bench.probes import inject, injection_target
from gavel.bench.report import safe_name, write_report
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, LoadedRow, Task
from gavel.judge.result import Mode
from gavel.judge.runner import run_records


@dataclass
class BenchTarget:
    """One benchmark to run: its records, task type and how to split results into subsets."""

    name: str
    task: Task
    records: list[JudgeRecord]
    subsets_field: str | None = None


@dataclass
class BenchConfig:
    judges: list[str | None] = field(default_factory=lambda: [None])
    out_dir: Path = Path("bench-out")
    mode: Mode = Mode.verdict
    both_orders: bool = False
    formats: tuple[str, ...] = ("default",)
    injection: bool = False
    limit: int | None = None
    seed: int = 0
    max_new_tokens: int = 512
    baselines: bool = True
    command: str | None = None  # recorded in the report


def judge_label(spec: str | None) -> str:
    return spec or "smollm2 (default)"


def sample(records: list[JudgeRecord], limit: int | None, seed: int) -> list[JudgeRecord]:
    """A seeded sample of `limit` records in their original order (spreads a limit over all subsets)."""
    if limit is None or limit >= len(records):
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def load_targets(names: list[str], files: list[Path], data_root: Path | None, limit: int | None,
                 seed: int, warn: Callable[[str], None] = print) -> list[BenchTarget]:
    """Registered benchmarks by name plus labelled JSONL files; unavailable ones are reported and skipped."""
    from gavel.bench.loaders.generic import load_labelled_file

    ctx = registry.LoadContext(data_root=data_root, seed=seed)
    targets = []
    for name in names:
        bench = registry.get(name)
        try:
            records = bench.load(ctx)
        except registry.BenchmarkUnavailable as exc:
            warn(f"skipping {name}: {exc}")
            continue
        targets.append(BenchTarget(name, bench.task, sample(records, limit, seed), bench.subsets_field))
    for path in files:
        stem, records = load_labelled_file(path)
        tasks = {r.task for r in records}
        if len(tasks) != 1:
            found = sorted(t.value for t in tasks)
            raise ValueError(f"{path}: a benchmark file must hold one task type, found {found}")
        targets.append(BenchTarget(stem, tasks.pop(), sample(records, limit, seed), "subset"))
    return targets


def _judge_items(judge: Judge, records: list[JudgeRecord], path: Path,
                 progress: Callable[[], None] | None) -> list[dict[str, Any]]:
    rows = (LoadedRow(row=i, record=r) for i, r in enumerate(records, start=1))
    summary = run_records(judge, rows, path, source=str(path), on_result=(lambda _: progress()) if progress else None)
    for error in summary.row_errors:
        print(f"row error: {error}")
    wanted = {r.id for r in records}
    with path.open(encoding="utf-8") as handle:
        return [row for row in map(json.loads, handle) if row["id"] in wanted]


def _summary(rows: list[dict[str, Any]], target: BenchTarget, seed: int) -> dict[str, Any]:
    subsets = target.subsets_field if any(target.subsets_field in r for r in rows) else None
    return summarise(rows, target.task, subsets_field=subsets, seed=seed)


def _clean_follow_rate(rows: list[dict[str, Any]], records: list[JudgeRecord]) -> float | None:
    """How often the un-injected verdict already equals the injection's target: the probe's baseline."""
    targets = {r.id: injection_target(r) for r in records}
    scored = [row for row in rows if row.get("result") is not None and row["id"] in targets]
    return sum(row["result"] == targets[row["id"]] for row in scored) / len(scored) if scored else None


def run_bench(config: BenchConfig, targets: list[BenchTarget], progress: Callable[[str, int], Callable[[], None]]
              | None = None) -> dict[str, Any]:
    """Judge every target with every judge (and format), score, and write the report. Returns the summaries."""
    summaries: dict[str, dict[str, dict[str, Any]]] = {t.name: {} for t in targets}
    rows_by: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {} for t in targets}
    formats: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in config.judges:
        label = judge_label(spec)
        backend = None
        for fmt in config.formats:
            for target in targets:
                path = config.out_dir / "items" / safe_name(target.name) / safe_name(label) / f"{fmt}.jsonl"
                if backend is None:
                    backend = load_backend(spec)
                judge = Judge(backend, mode=config.mode, template=fmt, both_orders=config.both_orders,
                              max_new_tokens=config.max_new_tokens)
                tick = progress(f"{target.name} · {label} · {fmt}", len(target.records)) if progress else None
                rows = _judge_items(judge, target.records, path, tick)
                summary = _summary(rows, target, config.seed)
                formats.setdefault(target.name, {}).setdefault(label, {})[fmt] = summary["value"]
                if fmt == config.formats[0]:
                    summaries[target.name][label] = summary
                    rows_by[target.name][label] = rows
                if config.injection and fmt == config.formats[0]:
                    injected = inject(target.records, seed=config.seed)
                    tick = progress(f"{target.name} · {label} · injection", len(injected)) if progress else None
                    inj_rows = _judge_items(judge, injected, path.with_name(f"{fmt}-injection.jsonl"), tick)
                    summary.update(injection_metrics(inj_rows, target.task))
                    summary["injection_follow_rate_clean"] = _clean_follow_rate(rows, target.records)
        if backend is not None:
            backend.close()
    if config.baselines:
        for target in targets:
            for name in BASELINES:
                rows = baseline_rows(name, target.records, seed=config.seed)
                summaries[target.name][f"baseline:{name}"] = _summary(rows, target, config.seed)
                rows_by[target.name][f"baseline:{name}"] = rows
    meta = {
        "tasks": {t.name: t.task.value for t in targets},
        "mode": config.mode.value,
        "both_orders": config.both_orders,
        "limit": config.limit,
        "seed": config.seed,
        "judges": [judge_label(s) for s in config.judges],
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if len(config.formats) > 1:
        meta["formats"] = formats
    write_report(config.out_dir, summaries, rows_by, meta | {"command": config.command})
    return summaries
