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

from gavel.backends.base import REPETITION_PENALTY
from gavel.judge.result import Mode

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
MaxTokensOption = Annotated[int, typer.Option(help="Critique length limit, in tokens.")]
PenaltyOption = Annotated[float, typer.Option(
    help="Critique generation: repetition penalty (1.0 = off). Applied by llama.cpp, transformers and vLLM; "
    "an OpenAI-compatible server uses its own setting.")]
BatchOption = Annotated[int | None, typer.Option(
    "--batch", min=1, help="Requests per forward pass (llama.cpp: KV-cache sequences; transformers, vLLM: batch "
    "size). llama.cpp default 1, one at a time; more is experimental: verdict mode gives the same results, "
    "critique mode can differ slightly (docs/performance.md).")]
ThreadsOption = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads for llama.cpp (default $GAVEL_THREADS, else one per core; on a "
    "machine shared with a busy process, give the number of idle cores).")]
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
    max_new_tokens: MaxTokensOption = 512,
    repetition_penalty: PenaltyOption = REPETITION_PENALTY,
    retries: Annotated[int, typer.Option(help="Re-ask (sampling) when no result could be read.")] = 0,
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
    from gavel.judge.engine import Judge
    from gavel.judge.records import read_rows
    from gavel.judge.runner import RunInterrupted, check_output, run_records, write_errors
    from gavel.judge.templates import TemplateError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    out = output or _default_output(input)
    try:
        rows = list(read_rows(input))
        if not rows:
            raise ValueError(f"{input}: holds no records")
        check_output(out, [input])
        with console.status("loading model…"):
            judge_ = Judge(_backend(model, batch, threads), mode=mode, template=template, both_orders=both_orders,
                           max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty,
                           retries=retries)
    except (OSError, ValueError, TemplateError, RuntimeError, ImportError) as exc:
        _usage_error(exc)
    valid = sum(1 for r in rows if r.record is not None)
    progress = Progress(TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet)
    try:
        with progress:
            task = progress.add_task("judge", total=valid)
            summary = run_records(judge_, rows, out, source=input, force=force,
                                  on_result=lambda _: progress.advance(task))
    except OutputError as exc:
        _usage_error(exc)
    except ServerUnavailable as exc:  # the server stopped answering mid-run: stop, keep what is written
        console.print(f"[red]error:[/red] {escape(str(exc))}; the rows judged so far are in {out}", highlight=False)
        raise typer.Exit(1) from None
    except RunInterrupted as stop:
        errors_file = write_errors(out, stop.summary.row_errors)
        saved = f"; row errors so far in {errors_file}" if errors_file else ""
        console.print(f"[yellow]interrupted:[/yellow] {stop.summary.judged} rows judged now are in {out}{saved}; "
                      "run the same command again to resume")
        raise typer.Exit(130) from None
    finally:
        judge_.backend.close()
    _print_summary(summary, judge_.model_name)
    errors_file = write_errors(out, summary.row_errors)
    for error in summary.row_errors[:20]:
        console.print(f"[red]row error:[/red] {error}")
    if len(summary.row_errors) > 20:
        console.print(f"… {len(summary.row_errors) - 20} more in {errors_file}")
    unread = summary.statuses.get("parse_failed", 0)
    if summary.judged and unread == summary.judged:
        console.print(f"[red]no verdict:[/red] no result could be read from any of the {unread} rows judged "
                      "(all parse_failed); check the model and template")
    if summary.row_errors or (summary.judged and unread == summary.judged):
        raise typer.Exit(1)


def _backend(model: str | None, batch: int | None, threads: int | None):
    """The model spec, or the backend built with the options given (`--batch`, `--threads`)."""
    options = {"batch_size": batch} if batch else {}
    if threads:
        from gavel.backends import parse_spec

        if parse_spec(model).kind != "llama.cpp":
            raise ValueError("--threads applies to llama.cpp models (GGUF files and the default judge)")
        options["n_threads"] = threads
    if not options:
        return model
    from gavel.backends import load_backend

    return load_backend(model, **options)


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
    table.add_row("rows failed", str(summary.failed))
    for result, count in sorted(summary.results.items()):
        table.add_row(f"result {result}", str(count))
    for status, count in sorted(summary.statuses.items()):
        table.add_row(f"status {status}", str(count))
    table.add_row("parse failures", str(summary.statuses.get("parse_failed", 0)))
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
    max_new_tokens: MaxTokensOption = 512,
    repetition_penalty: PenaltyOption = REPETITION_PENALTY,
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

    root = registry.default_data_root(data_root)
    if list_:
        _print_benchmarks(registry.all_benchmarks(), root)
        return
    chosen = FORMATS if formats == "all" else tuple(f.strip() for f in formats.split(","))
    try:
        names = [b.strip() for b in benchmarks.split(",") if b.strip()] if benchmarks else []
        if suite or not (names or data):
            names += [b.name for b in registry.suite(suite or "local") if b.name not in names]
        for spec in judges or []:
            parse_spec(spec)  # a typo in a spec fails now, not after the first benchmark
        targets = load_targets(names, list(data or []), root, limit, seed, strict=strict,
                               warn=lambda m: console.print(f"[yellow]{m}[/yellow]"))
    except (KeyError, ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc.args[0] if isinstance(exc, KeyError) else exc}")
        raise typer.Exit(2) from None
    if not targets:
        console.print("[red]error:[/red] no benchmark could be loaded")
        raise typer.Exit(2)
    for target in targets:
        if target.row_errors:
            console.print(f"[yellow]{target.name}: {len(target.row_errors)} bad row(s) left out "
                          f"(listed in the report), e.g. {target.row_errors[0]}[/yellow]")
    config = BenchConfig(judges=list(judges or [None]), out_dir=output, mode=mode, both_orders=both_orders,
                         formats=chosen, injection=injection, limit=limit, seed=seed, max_new_tokens=max_new_tokens,
                         repetition_penalty=repetition_penalty, command="gavel " + " ".join(sys.argv[1:]))
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
    """Curate public judge data into DPO preference pairs (TRL format) with a data card."""
    from gavel.curate.config import ConfigError, load_config
    from gavel.curate.pipeline import OutputFrozen, run
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
        config = load_config(config_path)
        report = run(config, output, only_source=only_source, console=console)
    except (ConfigError, OutputFrozen, OutputError, ValueError, KeyError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
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
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")] = None,
    limit: Annotated[int | None, typer.Option(help="Train on N pairs (a seeded sample).")] = None,
) -> None:
    """Train a judge with DPO + NLL on the chosen answer (TRL), then merge and export it (HF folder, GGUF).

    Writes checkpoints, metrics.jsonl, log_history.json, losses.png and train_summary.json to the output folder.
    """
    from gavel.train.config import load_train_config
    from gavel.train.trainer import run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg = load_train_config(config, output_dir=output, data=data, max_steps=max_steps, limit=limit)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        outcome = run(cfg)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
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
    """Curate -> train -> bench the base and the trained judge on the same items -> one report with deltas."""
    from gavel.train.recipe import load_recipe, run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg = load_recipe(recipe_file, output_dir=output)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    report = run(cfg, console=console)
    console.print(f"report: {report}")


def main() -> None:
    from gavel.io import OutputError

    try:
        app()
    except OutputError as exc:  # e.g. `gavel bench` on an output another run holds
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
