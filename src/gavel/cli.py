"""The `gavel` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gavel.labels import Mode, Status
from gavel.settings import DEFAULTS, JudgeSettings, SettingsError, allowed_range

app = typer.Typer(
    help="gavel: run and benchmark small LLM judges (absolute 1-5, Yes/No, pairwise A/B).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _root() -> None:
    """gavel: run and benchmark small LLM judges."""

ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m",
    help="Model spec: a .gguf path, a model folder, a hub id, ollama:NAME, openai:MODEL@URL, URL#MODEL, "
    "vllm:MODEL, BASE.gguf+ADAPTER.gguf. Default: gavel's trained judge (the embedded SmolLM2-135M-Instruct "
    "with gavel's LoRA adapter, llama.cpp); `smollm2` is the untrained base.")]
ModeOption = Annotated[Mode, typer.Option(
    "--mode", help="critique: reasoning then result. verdict: result only, one forward pass per item.")]
MaxTokensOption = Annotated[int, typer.Option(
    help=f"Critique length limit, in tokens ({allowed_range('max_new_tokens')}).")]
PenaltyOption = Annotated[float, typer.Option(
    help=f"Critique generation: repetition penalty ({allowed_range('repetition_penalty')}; 1.0 = off). Applied by "
    "llama.cpp, transformers and vLLM; an OpenAI-compatible server uses its own setting.")]
RetriesOption = Annotated[int, typer.Option(
    help=f"Re-ask (sampling) when no result could be read ({allowed_range('retries')}).")]
CacheOption = Annotated[Path | None, typer.Option(
    "--cache", help="Judgment cache file (SQLite; created if missing): items judged before with the same model, "
    "template, mode and settings are read from it, not judged again. Several runs may share one.")]
BatchOption = Annotated[int | None, typer.Option(
    "--batch", min=1, help="Requests per forward pass (llama.cpp: KV-cache sequences; transformers, vLLM: batch "
    "size). llama.cpp default 1, one at a time; more gives bit for bit the same results on a GGUF file (merged "
    "judges like default@q8_0 included), and with an adapter applied at every pass (the default judge) the same "
    "verdict-mode results but critique probabilities moved by up to ~0.02 (docs/performance.md).")]
ThreadsOption = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads for llama.cpp (default $GAVEL_THREADS, else one per core that other "
    "processes leave idle, looked at again every 2 s).")]
TemplateOption = Annotated[str | None, typer.Option(
    "--template", "-t", help="Built-in template set (default, markdown, json, xml, plain, rubric-first), "
    "a template folder, or one template file (.txt/.yaml with {placeholders}, or .j2).")]


def _default_output(source: str) -> Path:
    stem = Path(source.removeprefix("hf:").replace("/", "_")).stem
    return Path(f"{stem}.judged.jsonl")


@app.command()
def judge(
    input: Annotated[str, typer.Argument(help="Records to judge: .jsonl, .csv, .parquet, a saved HF dataset "
                                         "folder, or hf:NAME[:SPLIT].")],
    model: ModelOption = None,
    mode: ModeOption = Mode.critique,
    template: TemplateOption = None,
    both_orders: Annotated[bool, typer.Option(
        "--both-orders", help="Pairwise: judge A/B and B/A, average the probabilities, report agreement.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Output JSONL (default: INPUT_STEM.judged.jsonl). Re-running resumes.")] = None,
    max_new_tokens: MaxTokensOption = DEFAULTS.max_new_tokens,
    repetition_penalty: PenaltyOption = DEFAULTS.repetition_penalty,
    retries: RetriesOption = DEFAULTS.retries,
    cache: CacheOption = None,
    batch: BatchOption = None,
    threads: ThreadsOption = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Resume into an output written with other settings (model, mode, template...).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Judge every record of INPUT and write one result per id to a JSONL file.

    Each record is one JSON object: id, task (absolute | classification | pairwise), instruction,
    response (or response_a and response_b), optional rubric, reference and label. See the README.

    Exit codes: 0 all rows judged; 1 some rows failed (listed, and saved to OUT.errors.jsonl), no verdict
    could be read from any row, or the model's server stopped answering; 2 usage error (bad input file,
    output, model or template, or no server at the model's URL); 130 interrupted.
    """
    from gavel.backends import ServerUnavailable
    from gavel.io import OutputError
    from gavel.judge import runner
    from gavel.judge.engine import Judge
    from gavel.judge.records import read_rows
    from gavel.judge.templates import TemplateError, load_templates

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    out = output or _default_output(input)
    settings = _settings(mode=mode, template=template, both_orders=both_orders, max_new_tokens=max_new_tokens,
                         repetition_penalty=repetition_penalty, retries=retries)
    try:
        templates = load_templates(settings.template)
        rows = list(read_rows(input))
        if not rows:
            raise ValueError(f"{input}: holds no records")
        runner.check_output(out, [input])
        with console.status("loading model…"):
            judge_ = Judge(_backend(model, batch, threads), settings, templates=templates, cache=cache)
    except (OSError, ValueError, TemplateError, RuntimeError, ImportError) as exc:
        _usage_error(exc)
    valid = sum(1 for r in rows if r.record is not None)
    progress = Progress(TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet)
    try:
        with progress:
            task = progress.add_task("judge", total=valid)
            summary = runner.run_records(judge_, rows, out, source=input, force=force,
                                         settings=runner.input_settings(input),
                                         on_result=lambda _: progress.advance(task))
    except runner.SettingsChanged as exc:
        _usage_error(ValueError(f"{exc}, or --force to add to it anyway"))
    except OutputError as exc:
        _usage_error(exc)
    except ServerUnavailable as exc:  # the server stopped answering mid-run: stop, keep what is written
        console.print(f"[red]error:[/red] {escape(str(exc))}; the rows judged so far are in {out}", highlight=False)
        raise typer.Exit(1) from None
    except runner.RunInterrupted as stop:
        errors_file = runner.write_errors(out, stop.summary.row_errors)
        saved = f"; row errors so far in {errors_file}" if errors_file else ""
        console.print(f"[yellow]interrupted:[/yellow] {stop.summary.judged} rows judged now are in {out}{saved}; "
                      "run the same command again to resume")
        raise typer.Exit(130) from None
    finally:
        judge_.backend.close()
    _print_summary(summary, judge_.model_name)
    if judge_.cache is not None:
        cache = judge_.cache
        console.print(f"cache {cache.path}: {cache.hits} read back, {cache.misses} judged" if cache.active else
                      f"cache {cache.path}: not used (it cannot be read or written, see the warning above)")
    errors_file = runner.write_errors(out, summary.row_errors)
    for error in summary.row_errors[:20]:
        console.print(f"[red]row error:[/red] {error}")
    if len(summary.row_errors) > 20:
        console.print(f"… {len(summary.row_errors) - 20} more in {errors_file}")
    unread = summary.statuses.get(Status.parse_failed.value, 0)
    if summary.judged and unread == summary.judged:
        console.print(f"[red]no verdict:[/red] no result could be read from any of the {unread} rows judged "
                      "(all parse_failed); check the model and template")
    if summary.row_errors or (summary.judged and unread == summary.judged):
        raise typer.Exit(1)


def _backend(model: str | None, batch: int | None, threads: int | None):
    """The model spec, or the backend built with the options given (`--batch`, `--threads`)."""
    from gavel.backends import SERVER_KINDS, parse_spec

    kind = parse_spec(model).kind if batch or threads else None
    if batch and kind in SERVER_KINDS:
        raise ValueError("--batch applies to local models (llama.cpp, transformers, vLLM); a server batches itself")
    if threads and kind != "llama.cpp":
        raise ValueError("--threads applies to llama.cpp models (GGUF files and the default judge)")
    options = {"batch_size": batch} if batch else {}
    if threads:
        options["n_threads"] = threads
    if not options:
        return model
    from gavel.backends import load_backend

    return load_backend(model, **options)


def _settings(**options) -> JudgeSettings:
    """The judge settings of a command's options; a value out of range is a usage error naming its range."""
    try:
        return JudgeSettings.of(**options)
    except SettingsError as exc:
        console.print(f"[red]error:[/red] {escape(exc.message(option=True))}", highlight=False)
        raise typer.Exit(2) from None


def _usage_error(exc: BaseException) -> NoReturn:
    """One line for the user, exit 2."""
    message = str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}"
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(2) from None


def _print_summary(summary, model_name: str) -> None:
    table = Table(title=f"gavel judge · {model_name}", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("output", str(summary.output))
    table.add_row("judged now", str(summary.judged))
    table.add_row("already done (skipped)", str(summary.skipped))
    table.add_row("edited since judged (judged again)", str(summary.rejudged))
    table.add_row("rows failed", str(summary.failed))
    for result, count in sorted(summary.results.items()):
        table.add_row(f"result {result}", str(count))
    for status, count in sorted(summary.statuses.items()):
        table.add_row(f"status {status}", str(count))
    table.add_row("parse failures", str(summary.statuses.get(Status.parse_failed.value, 0)))
    table.add_row("judgments/s", f"{summary.judgments_per_s:.2f}")
    table.add_row("tokens/s (prompt+generated)", f"{summary.tokens_per_s:.0f}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    console.print(table)


@app.command()
def bench(
    judges: Annotated[list[str] | None, typer.Option(
        "--judge", "-j", help="Judge model spec (as for `gavel judge --model`); repeat to compare judges. "
        "Default: the embedded judge.")] = None,
    suite: Annotated[str | None, typer.Option(help="Benchmark suite: local (data under the data root) or "
                                              "paper (the paper's 11).")] = None,
    benchmarks: Annotated[str | None, typer.Option("--benchmarks", "-b", help="Comma-separated names.")] = None,
    data: Annotated[list[Path] | None, typer.Option(
        "--data", help="A labelled JSONL file in the record schema (repeatable); named by its stem. Bad rows "
        "are counted and listed in the report; the others are used.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse a --data file with any bad row.")] = False,
    data_root: Annotated[Path | None, typer.Option(
        help="Folder of benchmark data (default: $GAVEL_DATA_ROOT, else ../shared/data/benchmarks).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N items per benchmark (a seeded sample).")] = None,
    mode: ModeOption = Mode.verdict,
    both_orders: Annotated[bool, typer.Option("--both-orders", help="Pairwise items in both orders.")] = False,
    formats: Annotated[str, typer.Option(help="Prompt formats: default, all, or a comma list of "
                                         "default,markdown,json,xml,plain,rubric-first.")] = "default",
    injection: Annotated[bool, typer.Option("--injection", help="Also run the injection probe.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for sampling, placement and bootstrap.")] = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (re-running resumes).")] = Path(
        "bench-out"),
    max_new_tokens: MaxTokensOption = DEFAULTS.max_new_tokens,
    repetition_penalty: PenaltyOption = DEFAULTS.repetition_penalty,
    cache: CacheOption = None,
    list_: Annotated[bool, typer.Option("--list", help="List the registered benchmarks and exit.")] = False,
) -> None:
    """Benchmark judges: per-item JSONL, DIR/results.json, DIR/report.md and plots.

    Metrics: Pearson r (absolute), accuracy (classification, pairwise), with BCa bootstrap 95% CIs,
    parse-failure rates and no-model baselines (random, always-a, longer-wins) beside every judge.

    Exit codes: 0 done; 1 the run stopped (a server went down; re-run to resume); 2 usage error.
    """
    import sys

    from gavel.backends import ServerUnavailable, parse_spec
    from gavel.bench import registry
    from gavel.bench.harness import BenchConfig, load_targets, run_bench
    from gavel.bench.probes import FORMATS
    from gavel.io import OutputError, check_output_dir
    from gavel.judge.templates import load_templates

    root = registry.default_data_root(data_root)
    if list_:
        _print_benchmarks(registry.all_benchmarks(), root)
        return
    settings = _settings(mode=mode, both_orders=both_orders, max_new_tokens=max_new_tokens,
                         repetition_penalty=repetition_penalty)
    chosen = FORMATS if formats == "all" else tuple(f.strip() for f in formats.split(","))
    try:
        names = [b.strip() for b in benchmarks.split(",") if b.strip()] if benchmarks else []
        if suite or not (names or data):
            names += [b.name for b in registry.suite(suite or "local") if b.name not in names]
        for spec in judges or []:
            parse_spec(spec)  # a typo in a spec fails now, not after the first benchmark
        for fmt in chosen:
            load_templates(fmt)  # a bad format (a template set or file) too
        check_output_dir(output)  # a file, or under one: now, not after the first judge loads
        targets = load_targets(names, list(data or []), root, limit, seed, strict=strict,
                               warn=lambda m: console.print(f"[yellow]{m}[/yellow]"))
    except (KeyError, ValueError, FileNotFoundError, OutputError) as exc:
        _usage_error(ValueError(exc.args[0]) if isinstance(exc, KeyError) else exc)
    for target in targets:
        if target.row_errors:
            console.print(f"[yellow]{target.name}: {len(target.row_errors)} bad row(s) left out "
                          f"(listed in the report), e.g. {target.row_errors[0]}[/yellow]")
    config = BenchConfig(judges=list(judges or [None]), out_dir=output, settings=settings, formats=chosen, cache=cache,
                         injection=injection, limit=limit, seed=seed, command="gavel " + " ".join(sys.argv[1:]))
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console)
    try:
        with progress:
            def start(label: str, total: int):
                task = progress.add_task(label, total=total)
                return lambda: progress.advance(task)

            results = run_bench(config, targets, progress=start)
    except ServerUnavailable as exc:
        console.print(f"[red]error:[/red] {exc}; the results so far are in {output}")
        raise typer.Exit(1) from None
    except (ValueError, RuntimeError, ImportError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_bench(results)
    console.print(f"report: {output / 'report.md'}  results: {output / 'results.json'}")


@app.command()
def curate(
    config_path: Annotated[Path | None, typer.Argument(metavar="CONFIG", help="Curation config (YAML); see "
                                                       "configs/curate/ and docs/curate.md.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder: dataset/, pairs.jsonl, card.md, "
                                         "card.json, READY. Re-running resumes the teacher stage.")] = Path(
        "curate-out"),
    only_source: Annotated[str | None, typer.Option(
        "--only-source", help="Build a single-source mix from the config's source NAME.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the registered sources and exit.")] = False,
) -> None:
    """Curate public judge data into DPO preference pairs (TRL format) with a data card.

    Exit codes: 0 done (READY written); 1 a stage left no items, or the teacher's server stopped answering
    (re-run to resume the teacher stage); 2 usage error (config, output folder, data root or teacher), found
    before any stage runs.
    """
    from gavel.backends import ServerUnavailable
    from gavel.curate.config import ConfigError, load_config
    from gavel.curate.pipeline import EmptyMix, run
    from gavel.curate.sources import SOURCES
    from gavel.io import OutputError

    if list_:
        table = Table(title="curation sources")
        for column in ("name", "tasks", "local", "hub id", "description"):
            table.add_column(column)
        for name, source in sorted(SOURCES.all().items()):
            table.add_row(name, ",".join(t.value for t in source.tasks), "yes" if source.local else "no",
                          source.hub_id or "-", source.description)
        Console(width=200).print(table)
        return
    if config_path is None:
        console.print("[red]error:[/red] missing CONFIG (a curation YAML file)")
        raise typer.Exit(2)
    try:
        report = run(load_config(config_path), output, only_source=only_source, console=console)
    except (ConfigError, OutputError, ValueError, KeyError) as exc:
        _usage_error(exc)
    except (EmptyMix, ServerUnavailable) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted:[/yellow] the teacher's critiques so far are kept in {output}; run the "
                      "same command again to resume")
        raise typer.Exit(130) from None
    console.print(f"{len(report.rows)} pairs -> {output / 'dataset'}, {output / 'pairs.jsonl'}; "
                  f"card: {output / 'card.md'}")


def _print_benchmarks(benchmarks, root) -> None:
    from gavel.bench.registry import BenchmarkUnavailable, LoadContext

    table = Table(title=f"benchmarks (data root: {root})")
    for column in ("name", "task", "suites", "gold", "items", "description"):
        table.add_column(column)
    for bench in sorted(benchmarks.values(), key=lambda b: (b.task.value, b.name)):
        try:
            items = str(len(bench.load(LoadContext(root))))
        except (BenchmarkUnavailable, OSError) as exc:
            items = f"unavailable ({str(exc)[:40]}…)"
        table.add_row(bench.name, bench.task.value, ",".join(bench.suites), bench.gold, items, bench.description)
    Console(width=200).print(table)


def _print_bench(results) -> None:
    table = Table(title="gavel bench")
    for column in ("benchmark", "judge", "metric", "value", "95% CI", "n", "parse fail"):
        table.add_column(column)
    for bench, entry in results.benchmarks.items():
        for judge_name, s in entry.judges.items():
            value = "-" if s.value is None else f"{s.value:.3f}"
            ci = "-" if s.ci_low is None or s.ci_high is None else f"{s.ci_low:.3f}-{s.ci_high:.3f}"
            failed = "-" if s.parse_failure_rate is None else f"{s.parse_failure_rate:.1%}"
            table.add_row(bench, judge_name, s.metric, value, ci, str(s.n), failed)
    console.print(table)


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Training config YAML (or a recipe with a train: section).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output folder (overrides the config's "
                                                "output_dir). Re-running resumes from the last checkpoint.")] = None,
    data: Annotated[Path | None, typer.Option(help="Pairs: a `gavel curate` folder or pairs .jsonl.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps (N >= 1).")] = None,
    limit: Annotated[int | None, typer.Option(help="Train on N pairs, a seeded sample (N >= 1).")] = None,
) -> None:
    """Train a judge with DPO + NLL on the chosen answer (TRL), then merge and export it (HF folder, GGUF).

    Writes checkpoints, metrics.jsonl, log_history.json, losses.png and train_summary.json to the output folder.
    Re-running resumes an interrupted run; a finished one with the same settings and data is left as it is.

    Exit codes: 0 trained (or already trained); 2 usage error (config, options, output, base or pairs), found
    before the model loads; 130 interrupted.
    """
    from gavel.config import ConfigError
    from gavel.io import OutputError
    from gavel.train.config import load_train_config
    from gavel.train.trainer import check_run, run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg = load_train_config(config, output_dir=output, data=data, max_steps=max_steps, limit=limit)
        plan = check_run(cfg)
    except (ConfigError, OutputError, OSError, ValueError, RuntimeError) as exc:
        _usage_error(exc)
    if plan.finished is not None:
        console.print(f"already trained with these settings and data: {plan.finished.steps} steps -> "
                      f"{plan.finished.trained}; nothing to do")
        return
    try:
        outcome = run(cfg, plan)
    except (FileNotFoundError, ValueError) as exc:  # e.g. no pair fits max_length (found before the model loads)
        _usage_error(exc)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted:[/yellow] run the same command again to resume from the last checkpoint "
                      f"in {cfg.output_dir / 'checkpoints'}")
        raise typer.Exit(130) from None
    console.print(f"trained {outcome.pairs} pairs, {outcome.steps} steps in {outcome.seconds:.0f}s, "
                  f"peak RSS {outcome.peak_rss_mib:.0f} MiB -> {outcome.trained}")


@app.command()
def recipe(
    recipe_file: Annotated[Path, typer.Argument(help="Recipe YAML: curate, train and bench sections.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output folder for every stage.")] = None,
) -> None:
    """Curate -> train -> bench the base and the trained judge on the same items -> one report with deltas.

    Exit codes: 0 done; 1 a stage stopped (an empty mix, a server down); 2 usage error (the recipe, its curate
    config, an unknown benchmark or none with data, an output that must not be written), before any stage.
    """
    from gavel.backends import ServerUnavailable
    from gavel.config import ConfigError
    from gavel.curate.pipeline import EmptyMix
    from gavel.io import OutputError
    from gavel.train.recipe import bench_runs, load_recipe, run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg = load_recipe(recipe_file, output_dir=output)
        runs = bench_runs(cfg)
    except (ConfigError, OSError, ValueError) as exc:
        _usage_error(exc)
    try:
        report = run(cfg, runs, console=console)
    except OutputError as exc:
        _usage_error(exc)
    except (EmptyMix, ServerUnavailable) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"report: {report}")


@app.command()
def serve(
    model: ModelOption = None,
    mode: ModeOption = Mode.critique,
    template: TemplateOption = None,
    both_orders: Annotated[bool, typer.Option(
        "--both-orders", help="Pairwise: judge both orders by default (a request may say otherwise).")] = False,
    max_new_tokens: MaxTokensOption = DEFAULTS.max_new_tokens,
    repetition_penalty: PenaltyOption = DEFAULTS.repetition_penalty,
    retries: RetriesOption = DEFAULTS.retries,
    batch: BatchOption = None,
    threads: ThreadsOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on; anything but loopback needs an API key.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    api_key_file: Annotated[Path | None, typer.Option(
        help="File holding the API key clients must send as 'Authorization: Bearer KEY' (default: "
        "$GAVEL_API_KEY; no key: anyone who can connect may use the judge).")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen beyond loopback without an API key.")] = False,
    max_batch: Annotated[int, typer.Option(help="Items handed to the model at once.")] = 16,
    max_wait_ms: Annotated[float, typer.Option(help="How long a batch waits for more items.")] = 10.0,
    max_queue: Annotated[int, typer.Option(help="Items that may wait; more are refused (503, Retry-After).")] = 256,
    max_records: Annotated[int, typer.Option(help="Records per request.")] = 64,
    max_body_bytes: Annotated[int, typer.Option(help="Request body size limit.")] = 1_000_000,
    max_field_chars: Annotated[int, typer.Option(help="Characters in one text field of a record.")] = 20_000,
    timeout: Annotated[float, typer.Option(help="Seconds a request may wait for its results (then 504).")] = 300.0,
    grace: Annotated[float, typer.Option(help="After SIGTERM, seconds to finish accepted requests.")] = 30.0,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve a judge over HTTP to many clients: POST /v1/judge, POST /get_reward (OpenRLHF), GET /healthz,
    GET /v1/models, GET /metrics (Prometheus), /docs. Requests are micro-batched; one worker owns the model.

    Clients elsewhere use it as the model spec gavel+http://HOST:PORT. SIGTERM stops it gracefully (exit 0).
    Exit code 2: a usage error (a non-loopback --host without a key, a bad model or template), before loading.
    """
    from gavel.judge.engine import Judge
    from gavel.judge.templates import TemplateError, load_templates

    settings = _settings(mode=mode, template=template, both_orders=both_orders, max_new_tokens=max_new_tokens,
                         repetition_penalty=repetition_penalty, retries=retries)
    try:
        from gavel.config import validate_model
        from gavel.serve.config import SERVE_OPTIONS, Limits, ServeConfig, read_api_key
        from gavel.serve.server import listen, run
        from gavel.serve.service import JudgeService

        config = validate_model(dict(
            host=host, port=port, api_key=read_api_key(api_key_file), insecure=insecure, log_level=log_level,
            limits=dict(max_body_bytes=max_body_bytes, max_records=max_records, max_field_chars=max_field_chars,
                        max_new_tokens=max(max_new_tokens, Limits().max_new_tokens)),
            max_batch=max_batch, max_wait_s=max_wait_ms / 1000, max_queue=max_queue, timeout_s=timeout,
            grace_s=grace), ServeConfig, "gavel serve", SERVE_OPTIONS)
        config.check_exposure()
        templates = load_templates(template)
        sock = listen(config)  # a taken port or an unknown host is a usage error before the model loads
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        with console.status("loading model…"):
            judge_ = Judge(_backend(model, batch, threads), settings, templates=templates)
    except ImportError as exc:
        _usage_error(RuntimeError(f"gavel serve needs the serve extra: pip install 'gavel[serve]' ({exc})"))
    except (OSError, ValueError, TemplateError, RuntimeError) as exc:
        _usage_error(exc)
    service = JudgeService(judge_.backend, model, settings, config)
    run(service, sock)


def main() -> None:
    from gavel.io import OutputError

    try:
        app()
    except OutputError as exc:  # e.g. `gavel bench` on an output another run holds
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
