"""`gavel curate`: sources -> records -> RM filter -> decontamination -> lengths -> selection -> teacher
critiques -> consistency filter -> mix -> export. Each stage logs counts in and out and its wall time."""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gavel.config import ConfigError
from gavel.curate import card as card_module
from gavel.curate.config import CurateConfig
from gavel.curate.consistency import ConsistencyReport, check, trim_to_sentence
from gavel.curate.decontam import build_index, record_texts
from gavel.curate.items import from_dataset, to_dataset
from gavel.curate.mix import Pair, assign_kinds, dedup, rejected_label, select, with_orders
from gavel.curate.sources import SOURCES, Item
from gavel.curate.teacher import TeacherCall, build_judge, make_call, run_teacher
from gavel.data import LoadContext, default_train_root
from gavel.io import DataUnavailable, JsonlAppender, OutputError, check_output_dir, is_empty_dir, repair_jsonl_rows
from gavel.judge.records import RowError
from gavel.judge.templates import load_templates
from gavel.labels import Mode, Status
from gavel.layout import MARKER, READY, CurateOutput

#: How a curate user sets the training-data root (named when there is none).
ROOT_OPTION = "data_root in the curate config"

log = logging.getLogger(__name__)


class OutputFrozen(OutputError):
    """The output folder already holds a finished mix (READY)."""


class EmptyMix(RuntimeError):
    """A stage left no items, so the mix would hold no pairs; the message names the stage."""


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    note: str = ""


@dataclass
class Report:
    """Everything the data card states about a run."""

    config: dict[str, Any]
    stages: list[Stage] = field(default_factory=list)
    row_errors: Counter = field(default_factory=Counter)  # per source
    unavailable_sources: dict[str, str] = field(default_factory=dict)
    decontam_removed: dict[str, dict[str, int]] = field(default_factory=dict)  # benchmark -> source -> n
    decontam_unavailable: dict[str, str] = field(default_factory=dict)
    consistency: ConsistencyReport = field(default_factory=ConsistencyReport)
    rm_dropped: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)


def _counts(items: list[Item]) -> dict[str, int]:
    return dict(sorted(Counter(i.source for i in items).items()))


@contextmanager
def _stage(report: Report, name: str, items: list[Item] | None, console: Console, *,
           may_empty: bool = False) -> Iterator[Stage]:
    """Time a stage and log its counts; a stage that leaves nothing (unless `may_empty`) stops the run."""
    stage = Stage(name=name, before=_counts(items) if items is not None else {})
    console.print(f"[bold]curate[/] {name} ...")
    start = time.perf_counter()
    yield stage
    stage.seconds = time.perf_counter() - start
    report.stages.append(stage)
    total = sum(stage.after.values())
    note = f" - {stage.note}" if stage.note else ""
    console.print(f"[bold]curate[/] {name}: {total} out ({stage.seconds:.1f}s){note}")
    if total == 0 and not may_empty:
        came = f" of {sum(stage.before.values())}" if stage.before else ""
        detail = f" ({stage.note})" if stage.note else ""
        raise EmptyMix(f"the {name} stage left no items{came}{detail}: the mix would hold no pairs; "
                       f"nothing exported, no {READY} written")


def _tokenizer(name: str | None):
    from transformers import AutoTokenizer

    if name is None:
        from gavel.backends.embedded import embedded_hf_dir

        name = str(embedded_hf_dir())
    return AutoTokenizer.from_pretrained(name)


# -- stages ---------------------------------------------------------------------------------------------
def load_sources(config: CurateConfig, report: Report, errors_file: Path) -> list[Item]:
    ctx = LoadContext(data_root=default_train_root(config.data_root), seed=config.seed, root_option=ROOT_OPTION)
    items: list[Item] = []
    writer = JsonlAppender(errors_file)
    try:
        for name in config.sources:
            source = SOURCES.get(name)
            if ctx.data_root is None and source.local:
                report.unavailable_sources[name] = "no training-data root: set data_root or GAVEL_DATA_ROOT"
                continue
            for entry in _entries(name, source, ctx):
                if isinstance(entry, RowError):
                    if entry.row == 0 and entry.message.startswith("source unavailable"):
                        report.unavailable_sources[name] = entry.message
                    report.row_errors[name] += 1
                    writer.write({**entry.model_dump(mode="json"), "source_name": name})
                    log.warning("%s: %s", name, entry)
                else:
                    items.append(entry)
    finally:
        writer.close()
    return items


def _entries(name: str, source, ctx: LoadContext) -> Iterator[Item | RowError]:
    """The source's items and row errors; a source whose files are missing is one error (row 0: the source)."""
    try:
        yield from source.load(ctx)
    except DataUnavailable as exc:
        yield RowError(source=name, row=0, message=f"source unavailable: {exc}")


def _length_map(tokenizer, templates, max_critique: int):
    """A `datasets` map function: cut the trusted critique, count prompt tokens (critique mode)."""

    def fn(row: dict) -> dict:
        item = from_dataset([row])[0]
        prompt, _ = templates.render(item.record, Mode.critique)
        critique = item.critique
        if critique:
            ids = tokenizer(critique, add_special_tokens=False)["input_ids"]
            if len(ids) > max_critique:
                critique = trim_to_sentence(tokenizer.decode(ids[:max_critique]))
        prompt_tokens = chat_tokens(tokenizer, [{"role": "user", "content": prompt}], generation_prompt=True)
        return {"critique": critique, "prompt_tokens": prompt_tokens}

    return fn


def chat_tokens(tokenizer, messages: list[dict], generation_prompt: bool = False) -> int:
    """Tokens of the messages through the tokenizer's chat template (what the trainer and judge see)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _answer_budget(config: CurateConfig) -> int:
    return config.mix.max_critique_tokens + 24  # tags, label, end-of-turn


def lengths(items: list[Item], config: CurateConfig, tokenizer, templates) -> tuple[list[Item], int]:
    if not items:
        return items, 0
    dataset = to_dataset(items).map(_length_map(tokenizer, templates, config.mix.max_critique_tokens),
                                    num_proc=config.num_proc, desc="lengths")
    limit = config.mix.max_tokens - _answer_budget(config)
    kept = dataset.filter(lambda row: row["prompt_tokens"] <= limit, num_proc=config.num_proc, desc="length filter")
    return from_dataset(kept), len(dataset) - len(kept)


def decontaminate(items: list[Item], config: CurateConfig, report: Report) -> list[Item]:
    index = build_index(config.decontam.n, config.decontam.benchmarks, config.decontam.data_root,
                        config.decontam.exclude)
    report.decontam_unavailable = index.unavailable
    report.extra["decontam_benchmarks"] = sorted(index.grams)
    if not items:
        return items
    threshold = config.decontam.threshold

    def fn(row: dict) -> dict:
        return {"benchmark": index.hit(record_texts(from_dataset([row])[0].record), threshold) or ""}

    marked = to_dataset(items).map(fn, num_proc=config.num_proc, desc="decontamination")
    for row in marked:
        if row["benchmark"]:
            per = report.decontam_removed.setdefault(row["benchmark"], {})
            per[row["source"]] = per.get(row["source"], 0) + 1
    return from_dataset(marked.filter(lambda row: not row["benchmark"], num_proc=config.num_proc))


def teacher_calls(selected: dict[str, list[Item]], kinds: dict[str, str], config: CurateConfig) -> list[TeacherCall]:
    calls = []
    for source, items in selected.items():
        for item in items:
            if kinds[item.id] != Mode.critique:
                continue
            assert item.record.label is not None
            if not (config.sources[source].use_source_critique and item.critique):
                calls.append(make_call(item.id, item.record, "chosen", item.record.label))
            if config.teacher.rejected == "teacher":
                calls.append(make_call(item.id, item.record, "rejected", rejected_label(config.seed, item)))
    return calls


def build_pairs(selected: dict[str, list[Item]], kinds: dict[str, str], outputs: dict[str, dict],
                config: CurateConfig, report: Report) -> list[Pair]:
    pairs = []
    for source, items in selected.items():
        for item in items:
            gold, wrong = item.record.label, rejected_label(config.seed, item)
            assert gold is not None
            common = {"id": item.id, "source": source, "task": item.record.task.value, "record": item.record,
                      "chosen_label": gold, "rejected_label": wrong}
            if kinds[item.id] == Mode.verdict:
                pairs.append(Pair(kind=Mode.verdict.value, chosen_critique=None, rejected_critique=None, **common))
                continue
            critiques = {}
            for role, target in (("chosen", gold), ("rejected", wrong)):
                if role == "chosen" and config.sources[source].use_source_critique and item.critique:
                    critiques[role] = item.critique
                    continue
                if role == "rejected" and config.teacher.rejected == "flipped":
                    if "chosen" in critiques:
                        critiques[role] = critiques["chosen"]
                    continue
                row = outputs.get(f"{item.id}#{role}")
                verdict = check(item.record.task, row or {"status": Status.error.value}, target)
                report.consistency.add(source, role, verdict, (row or {}).get("status", "missing"))
                if verdict.kept:
                    critiques[role] = verdict.critique
            if len(critiques) == 2:
                pairs.append(Pair(kind=Mode.critique.value, chosen_critique=critiques["chosen"],
                                  rejected_critique=critiques["rejected"], **common))
    return pairs


def final_rows(pairs: list[Pair], config: CurateConfig, tokenizer, templates, report: Report) -> list[dict]:
    rows, too_long, seen = [], 0, set()
    for pair in with_orders(pairs, config.mix.both_orders):
        row = pair.row(templates)
        key = (row["prompt"][0]["content"], row["chosen"][0]["content"], row["rejected"][0]["content"])
        if config.mix.dedup and key in seen:
            continue
        seen.add(key)
        lengths_ = [chat_tokens(tokenizer, row["prompt"] + row[side]) for side in ("chosen", "rejected")]
        if max(lengths_) > config.mix.max_tokens:
            too_long += 1
            continue
        row["_tokens"] = lengths_
        rows.append(row)
    random.Random(config.seed).shuffle(rows)
    report.extra["final_too_long"] = too_long
    return rows


# -- the run ----------------------------------------------------------------------------------------------
def run(config: CurateConfig, output: str | Path, *, only_source: str | None = None,
        console: Console | None = None) -> Report:
    """Build the mix described by `config` into `output` (see CONTRACT: dataset/, pairs.jsonl, card, READY).

    Before any stage: the output, the data roots and the teacher are checked (OutputError, ConfigError, or the
    backend's error), then the folder is marked as gavel's. A stage that leaves no items raises EmptyMix.
    """
    console = console or Console(stderr=True)
    output = Path(output)
    if only_source is not None:
        config = config.only(only_source)
    layout = CurateOutput(output)
    work = Path(config.work_dir) if config.work_dir else layout.work
    check_output(output, work)
    check_inputs(config)
    output.mkdir(parents=True, exist_ok=True)
    layout.marker.write_text(json.dumps({"gavel_curate": 1}) + "\n", encoding="utf-8")
    work.mkdir(parents=True, exist_ok=True)
    report = Report(config=config.model_dump(mode="json"))
    started = time.perf_counter()
    templates = load_templates(config.template)

    with _stage(report, "load", None, console) as stage:
        (work / "row_errors.jsonl").unlink(missing_ok=True)
        items = load_sources(config, report, work / "row_errors.jsonl")
        stage.after = _counts(items)
        stage.note = f"{sum(report.row_errors.values())} source rows logged as errors ({work / 'row_errors.jsonl'})"
        if report.unavailable_sources:
            stage.note += "; unavailable: " + "; ".join(f"{k}: {v}" for k, v in report.unavailable_sources.items())
    with _stage(report, "dedup", items, console) as stage:
        items, removed = dedup(items)
        stage.after, stage.note = _counts(items), f"{removed} duplicates"
    if config.reward_model.model is not None:
        from gavel.curate.rm_filter import RewardModel, rm_filter

        with _stage(report, "rm_filter", items, console) as stage:
            model = RewardModel(config.reward_model.model, config.reward_model.max_length,
                                config.reward_model.batch_size)
            thresholds = {s: c.rm_threshold if c.rm_threshold is not None else config.reward_model.default_threshold
                          for s, c in config.sources.items()}
            items, report.rm_dropped, _ = rm_filter(items, model, thresholds)
            stage.after = _counts(items)
    if config.decontam.enabled:
        with _stage(report, "decontam", items, console) as stage:
            items = decontaminate(items, config, report)
            stage.after = _counts(items)
            stage.note = f"{sum(sum(v.values()) for v in report.decontam_removed.values())} removed"
    tokenizer = _tokenizer(config.mix.tokenizer)
    with _stage(report, "lengths", items, console) as stage:
        items, removed = lengths(items, config, tokenizer, templates)
        stage.after, stage.note = _counts(items), f"{removed} over {config.mix.max_tokens} tokens"
    with _stage(report, "select", items, console) as stage:
        selected = select(items, config)
        kinds = assign_kinds(selected, config)
        stage.after = {s: len(v) for s, v in selected.items() if v}
        stage.note = f"{sum(k == 'critique' for k in kinds.values())} critique items, " \
                     f"{sum(k == 'verdict' for k in kinds.values())} verdict items"
    calls = teacher_calls(selected, kinds, config)
    with _stage(report, "teacher", None, console, may_empty=True) as stage:
        outputs = _run_teacher(calls, work / "teacher.jsonl", config, console)
        stage.before = {"calls": len(calls)}
        stage.after = {"outputs": len(outputs)}
        stage.note = f"{len(calls)} calls ({sum(c.role == 'chosen' for c in calls)} chosen, " \
                     f"{sum(c.role == 'rejected' for c in calls)} rejected)"
    with _stage(report, "consistency+mix", None, console) as stage:
        pairs = build_pairs(selected, kinds, outputs, config, report)
        rows = final_rows(pairs, config, tokenizer, templates, report)
        stage.before = {s: len(v) for s, v in selected.items() if v}
        stage.after = dict(sorted(Counter(r["source"] for r in rows).items()))
        stage.note = f"{len(pairs)} pairs before orders, {len(rows)} rows"
    report.rows = rows
    with _stage(report, "export", None, console) as stage:
        export(rows, output)
        stage.after = {"rows": len(rows)}
    report.extra["wall_seconds_total"] = time.perf_counter() - started
    card_module.write(report, output)
    CurateOutput(output).ready.touch()  # last: the folder is complete
    return report


def check_output(output: Path, work: Path) -> None:
    """Refuse an output that is finished (READY), cannot be written, or is a non-empty folder gavel did not
    write (no marker): nothing the user wrote is overwritten."""
    if CurateOutput(output).finished:
        raise OutputFrozen(f"{output} already holds a finished mix ({READY}); write to another folder")
    for folder in (output, work):
        check_output_dir(folder)
    if not is_empty_dir(output) and not CurateOutput(output).marker.exists():
        raise OutputError(f"output {output} is a folder that gavel curate did not write (no {MARKER} in it); "
                          "choose a new or empty folder")


def needs_teacher(config: CurateConfig) -> bool:
    """Whether any pair may need a teacher critique (every critique share zero: verdict-only pairs)."""
    return any((s.critique_ratio if s.critique_ratio is not None else config.mix.critique_ratio) > 0
               for s in config.sources.values())


def check_inputs(config: CurateConfig) -> None:
    """The data roots the config names exist, and the teacher model or server is there (no weights loaded)."""
    for field_name, root in (("data_root", config.data_root), ("decontam.data_root", config.decontam.data_root)):
        if root is not None and not Path(root).is_dir():
            raise ConfigError(f"{field_name}: {root} is not a folder")
    if needs_teacher(config):
        from gavel.backends import check_model

        try:
            check_model(config.teacher.model)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"teacher.model {config.teacher.model!r}: {exc}") from None


def _run_teacher(calls: list[TeacherCall], cache: Path, config: CurateConfig, console: Console) -> dict[str, dict]:
    with Progress(TextColumn("teacher"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("teacher", total=len(calls))

        def factory():
            return build_judge(config.teacher.model, config.teacher.judge_settings(config.template))

        def advance(_result) -> None:
            progress.advance(task)

        done_before = {r.get("id") for r in repair_jsonl_rows(cache)}
        progress.advance(task, sum(c.id in done_before for c in calls))
        return run_teacher(calls, cache, factory, on_result=advance)


def export(rows: list[dict], output: Path) -> None:
    """DIR/pairs.jsonl and DIR/dataset (save_to_disk); the card and READY follow in `run`."""
    import datasets

    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    output.mkdir(parents=True, exist_ok=True)
    layout = CurateOutput(output)
    with layout.pairs.open("w", encoding="utf-8") as handle:
        for row in clean:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    dataset = datasets.Dataset.from_list(clean)  # never empty: an empty mix stops the run before export
    dataset.save_to_disk(str(layout.dataset))
