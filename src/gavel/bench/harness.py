"""`gavel bench`: judge benchmarks with one or more judges, score them, and write the report.

Four steps: :func:`plan` lists the files to judge (benchmark x judge x format, plus the injection probe),
:func:`run_jobs` judges them one backend at a time, :func:`score` turns judged rows into the typed
:class:`~gavel.bench.results.BenchResults`, and :func:`gavel.bench.report.write_report` writes it.

Layout of an output folder (file names in :class:`gavel.layout.BenchOutput`)::

    DIR/items/<benchmark>/<judge>/<format>.jsonl            per-item results (resumable, like `gavel judge`)
    DIR/items/<benchmark>/<judge>/<format>-injection.jsonl  the injection probe, when asked for
    DIR/results.json, DIR/report.md, DIR/*.png             written by `gavel.bench.report`
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from gavel.backends import load_backend
from gavel.bench import registry
from gavel.bench.baselines import BASELINES, baseline_rows
from gavel.bench.metrics import injection_metrics, summarise, unique_rows
from gavel.bench.probes import inject, injection_target
from gavel.bench.report import RowsByBench, write_report
from gavel.bench.results import BenchmarkResult, BenchResults, FormatSpread, RunMeta, Summary
from gavel.data import BENCH_ROOT_OPTION
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, LoadedRow, RowError
from gavel.judge.result import JudgedRow, JudgeResult, Mode
from gavel.judge.runner import read_results, run_records
from gavel.labels import PRIMARY_METRIC, Task
from gavel.layout import BenchOutput
from gavel.settings import DEFAULT_SEED, JudgeSettings

log = logging.getLogger(__name__)

#: A progress hook: called with a label and a total, returns the function to call per finished item.
Progress = Callable[[str, int], Callable[[], None]]


@dataclass
class BenchTarget:
    """One benchmark to run: its records, task type, how to split results, and the rows it could not use."""

    name: str
    task: Task
    records: list[JudgeRecord]
    subsets_field: str | None = None
    row_errors: list[RowError] = field(default_factory=list)


@dataclass
class BenchConfig:
    judges: list[str | None] = field(default_factory=lambda: [None])
    out_dir: Path = Path("bench-out")
    settings: JudgeSettings = field(default_factory=lambda: JudgeSettings(mode=Mode.verdict))  # template: per format
    formats: tuple[str, ...] = ("default",)
    injection: bool = False
    limit: int | None = None
    seed: int = DEFAULT_SEED
    baselines: bool = True
    command: str | None = None  # recorded in the report
    cache: Path | None = None  # a judgment cache file (gavel.judge.cache) shared by every judge of the run


@dataclass(frozen=True)
class Job:
    """One output file to fill: a target judged by one judge in one prompt format (or the injection probe)."""

    target: str
    judge: str | None
    fmt: str
    injection: bool
    path: Path


@dataclass
class JobResult:
    rows: list[JudgedRow]
    row_errors: list[RowError]


def judge_label(spec: str | None) -> str:
    return spec or "default"


# ---------------------------------------------------------------- loading


def sample(records: list[JudgeRecord], limit: int | None, seed: int) -> list[JudgeRecord]:
    """A seeded sample of `limit` records in their original order (spreads a limit over all subsets)."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1 (got {limit})")
    if limit is None or limit >= len(records):
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def load_targets(names: list[str], files: list[Path], data_root: Path | None, limit: int | None, seed: int,
                 warn: Callable[[str], None] = log.warning, strict: bool = False,
                 root_option: str = BENCH_ROOT_OPTION) -> list[BenchTarget]:
    """Registered benchmarks by name plus labelled record files; unavailable benchmarks are reported and skipped,
    and a ValueError if none is left.

    A file's bad rows are kept as row errors for the report; with ``strict`` any bad row is a ValueError.
    ``root_option`` is how the caller's user sets `data_root` (named when there is none).
    """
    from gavel.bench.loaders.generic import load_labelled_file

    sample([], limit, seed)  # checks the limit before any loading
    ctx = registry.LoadContext(data_root=data_root, seed=seed, root_option=root_option)
    targets = []
    for name in names:
        bench = registry.get(name)
        try:
            data = bench.load_data(ctx)
        except registry.BenchmarkUnavailable as exc:
            warn(f"skipping {name}: {exc}")
            continue
        targets.append(BenchTarget(name, bench.task, sample(data.records, limit, seed), bench.subsets_field,
                                   data.errors))
    named = {name: "a registered benchmark" for name in names}
    for path in files:
        stem, data = load_labelled_file(path)
        if stem in named:
            raise ValueError(f"--data {path}: its benchmark name {stem!r} (the file name) is also {named[stem]}; "
                             "rename one of them")
        named[stem] = f"the name of --data {path}"
        if strict and data.errors:
            listed = "".join(f"\n  {error}" for error in data.errors[:20])
            raise ValueError(f"{path}: {len(data.errors)} invalid row(s) (--strict):{listed}")
        tasks = {r.task for r in data.records}
        if len(tasks) != 1:
            found = sorted(t.value for t in tasks)
            raise ValueError(f"{path}: a benchmark file must hold one task type, found {found}")
        targets.append(BenchTarget(stem, tasks.pop(), sample(data.records, limit, seed), "subset", data.errors))
    if not targets:
        raise ValueError("no benchmark could be loaded")
    return targets


# ---------------------------------------------------------------- plan


def plan(config: BenchConfig, targets: list[BenchTarget]) -> list[Job]:
    """Every file to judge, grouped by judge (one backend is loaded at a time)."""
    jobs = []
    for spec in config.judges:
        for fmt in config.formats:
            for target in targets:
                jobs.append(_job(config, target, spec, fmt))
                if config.injection and fmt == config.formats[0]:
                    jobs.append(_job(config, target, spec, fmt, injection=True))
    return jobs


def _job(config: BenchConfig, target: BenchTarget, spec: str | None, fmt: str, injection: bool = False) -> Job:
    path = BenchOutput(config.out_dir).items(target.name, judge_label(spec), fmt, injection)
    return Job(target.name, spec, fmt, injection, path)


# ---------------------------------------------------------------- run


def read_judged(path: Path, wanted: dict[str, JudgeRecord]) -> list[JudgedRow]:
    """The results already in an output file for the wanted ids, one per id (the first written)."""
    fields = JudgeResult.model_fields
    return [JudgedRow(record=wanted[row["id"]],
                      result=JudgeResult.model_validate({k: row[k] for k in fields if k in row}))
            for row in read_results(path) if row["id"] in wanted]


def judge_job(judge: Judge, records: list[JudgeRecord], path: Path, tick: Callable[[], None] | None) -> JobResult:
    """Judge the records into ``path`` (resuming; an item edited since is judged again) and return the typed
    rows: those already there plus the new."""
    wanted = {r.id: r for r in records}

    def advance(_: JudgeResult) -> None:
        if tick is not None:
            tick()

    rows = (LoadedRow(row=i, record=r) for i, r in enumerate(records, start=1))
    summary = run_records(judge, rows, path, source=str(path), on_result=advance)
    return JobResult(rows=unique_rows(read_judged(path, wanted)), row_errors=list(summary.row_errors))


def run_jobs(config: BenchConfig, targets: list[BenchTarget], jobs: list[Job],
             progress: Progress | None = None) -> dict[Job, JobResult]:
    """Judge every job; each judge's backend is loaded once and closed after its jobs."""
    by_name = {t.name: t for t in targets}
    out: dict[Job, JobResult] = {}
    for spec, group in groupby(jobs, key=lambda job: job.judge):
        with load_backend(spec) as backend:
            for job in group:
                target = by_name[job.target]
                records = inject(target.records, seed=config.seed) if job.injection else target.records
                judge = Judge(backend, config.settings, template=job.fmt, cache=config.cache)
                what = "injection" if job.injection else job.fmt
                tick = progress(f"{job.target} · {judge_label(spec)} · {what}", len(records)) if progress else None
                out[job] = judge_job(judge, records, job.path, tick)
    return out


# ---------------------------------------------------------------- score


def _clean_follow_rate(rows: list[JudgedRow], records: list[JudgeRecord]) -> float | None:
    """How often the un-injected verdict already equals the injection's target: the probe's baseline."""
    targets = {r.id: injection_target(r) for r in records}
    scored = [row for row in rows if row.result.result is not None and row.id in targets]
    return sum(row.result.result == targets[row.id] for row in scored) / len(scored) if scored else None


def score(config: BenchConfig, targets: list[BenchTarget], judged: dict[Job, JobResult]
          ) -> tuple[BenchResults, RowsByBench]:
    """Summaries per benchmark and judge (first format), baselines, the format spread and the injection probe."""
    rows_by: RowsByBench = {}
    benchmarks: dict[str, BenchmarkResult] = {}
    formats: dict[str, dict[str, FormatSpread]] = {}
    for target in targets:
        benchmarks[target.name], rows_by[target.name], spreads = _score_target(config, target, judged)
        if spreads:
            formats[target.name] = spreads
    meta = RunMeta(command=config.command, date=time.strftime("%Y-%m-%d %H:%M:%S"), settings=config.settings,
                   limit=config.limit, seed=config.seed,
                   judges=[judge_label(s) for s in config.judges], formats=list(config.formats))
    return BenchResults(meta=meta, benchmarks=benchmarks, overall={}, formats=formats or None), rows_by


def _score_target(config: BenchConfig, target: BenchTarget, judged: dict[Job, JobResult]
                  ) -> tuple[BenchmarkResult, dict[str, list[JudgedRow]], dict[str, FormatSpread]]:
    """One benchmark: every judge's summary (and rows), the baselines, and each judge's format spread."""
    summaries: dict[str, Summary] = {}
    rows_by: dict[str, list[JudgedRow]] = {}
    spreads: dict[str, FormatSpread] = {}
    errors = list(target.row_errors)
    for spec in config.judges:
        label = judge_label(spec)
        values = {}
        for fmt in config.formats:
            result = judged[_job(config, target, spec, fmt)]
            errors += result.row_errors
            summary = summarise(result.rows, target.task, target.subsets_field, seed=config.seed)
            values[fmt] = summary.value
            if fmt == config.formats[0]:
                summaries[label], rows_by[label] = summary, result.rows
        if config.injection:
            probe = judged[_job(config, target, spec, config.formats[0], injection=True)]
            errors += probe.row_errors
            probed = injection_metrics(probe.rows, target.task)
            clean = _clean_follow_rate(rows_by[label], target.records)
            summaries[label].injection = probed and probed.model_copy(update={"follow_rate_clean": clean})
        if len(config.formats) > 1:
            defined = [v for v in values.values() if v is not None]
            spreads[label] = FormatSpread(values=values, spread=max(defined) - min(defined) if defined else None)
    if config.baselines:
        for name in BASELINES:
            rows_by[f"baseline:{name}"] = baseline_rows(name, target.records, seed=config.seed)
            summaries[f"baseline:{name}"] = summarise(rows_by[f"baseline:{name}"], target.task,
                                                      target.subsets_field, seed=config.seed)
    result = BenchmarkResult(task=target.task, metric=PRIMARY_METRIC[target.task], judges=summaries,
                             row_errors=errors)
    return result, rows_by, spreads


# ---------------------------------------------------------------- all four


def run_bench(config: BenchConfig, targets: list[BenchTarget], progress: Progress | None = None) -> BenchResults:
    """Plan, judge, score and write the report (results.json, report.md, plots). Returns the results."""
    jobs = plan(config, targets)
    judged = run_jobs(config, targets, jobs, progress)
    results, rows = score(config, targets, judged)
    return write_report(config.out_dir, results, rows)
