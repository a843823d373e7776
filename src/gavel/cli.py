"""The `gavel` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gavel.judge.result import Mode

app = typer.Typer(
    help="gavel: run and benchmark small LLM judges (absolute 1-5, Yes/No, pairwise A/B).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """gavel: run and benchmark small LLM judges."""

ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m",
    help="Model spec: a .gguf path, a model folder, a hub id, ollama:NAME, openai:MODEL[@URL], URL#MODEL, "
    "vllm:MODEL. Default: the embedded SmolLM2-135M-Instruct (llama.cpp).")]
ModeOption = Annotated[Mode, typer.Option(
    "--mode", help="critique: reasoning then result. verdict: result only, one forward pass per item.")]
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
    max_new_tokens: Annotated[int, typer.Option(help="Critique length limit, in tokens.")] = 512,
    retries: Annotated[int, typer.Option(help="Re-ask (sampling) when no result could be read.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Judge every record of INPUT and write one result per id to a JSONL file.

    Each record is one JSON object: id, task (absolute | classification | pairwise), instruction,
    response (or response_a and response_b), optional rubric, reference and label. See the README.

    Exit codes: 0 all rows judged; 1 some rows failed (listed, and saved to OUT.errors.jsonl); 2 usage error.
    """
    from gavel.judge.engine import Judge
    from gavel.judge.records import read_rows
    from gavel.judge.runner import run_records, write_errors
    from gavel.judge.templates import TemplateError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    out = output or _default_output(input)
    try:
        rows = list(read_rows(input))
        with console.status("loading model…"):
            judge_ = Judge(model, mode=mode, template=template, both_orders=both_orders,
                           max_new_tokens=max_new_tokens, retries=retries)
    except (FileNotFoundError, ValueError, TemplateError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    valid = sum(1 for r in rows if r.record is not None)
    progress = Progress(TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet)
    with progress:
        task = progress.add_task("judge", total=valid)
        summary = run_records(judge_, rows, out, source=input, on_result=lambda _: progress.advance(task))
    judge_.backend.close()
    _print_summary(summary, judge_.model_name)
    errors_file = write_errors(out, summary.row_errors)
    for error in summary.row_errors[:20]:
        console.print(f"[red]row error:[/red] {error}")
    if len(summary.row_errors) > 20:
        console.print(f"… {len(summary.row_errors) - 20} more in {errors_file}")
    if summary.row_errors:
        raise typer.Exit(1)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
