"""Write the ``gavel bench`` report: ``results.json``, ``report.md`` and PNG plots.

``write_report(out_dir, results, rows)`` takes the typed :class:`~gavel.bench.results.BenchResults`
(``overall`` and ``plots`` are filled in here) and, optionally, the judged rows per benchmark and judge
(``{benchmark: {judge: [JudgedRow]}}``) for the confusion and calibration plots. ``results.json`` is
``BenchResults.model_dump_json()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gavel.bench.baselines import BASELINES
from gavel.bench.metrics import calibration_data, overall_scores, reliability_points
from gavel.bench.results import BenchResults, Overall, Summary
from gavel.judge.result import JudgedRow
from gavel.labels import LABELS, PRIMARY_METRIC, Task
from gavel.layout import BenchOutput, safe_name

RowsByBench = dict[str, dict[str, list[JudgedRow]]]

#: Report sections over the probe groups of a Summary (the task groups go under their task's table).
_SECTIONS = {"both_orders": "Both orders", "length_bias": "Length bias", "injection": "Prompt injection",
             "rewardbench": "RewardBench sections (score = plain mean of the four sections)"}
_ROW_ERRORS_SHOWN = 20


# ---------------------------------------------------------------- helpers


def _fmt(value: float | int | str | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def _judges(results: BenchResults) -> list[str]:
    """Every judge, models first (in first-seen order), then the no-model baselines."""
    seen: list[str] = []
    for entry in results.benchmarks.values():
        seen += [j for j in entry.judges if j not in seen]
    baselines = [f"baseline:{b}" for b in BASELINES]
    return [j for j in seen if j not in baselines] + [j for j in seen if j in baselines]


def _cell(summary: Summary | None) -> str:
    if summary is None:
        return "–"
    ci = f" ({_fmt(summary.ci_low)}–{_fmt(summary.ci_high)})" if summary.ci_low is not None else ""
    return f"{_fmt(summary.value)}{ci} · pf {_pct(summary.parse_failure_rate)}"


# ---------------------------------------------------------------- markdown sections


def _task_tables(results: BenchResults, judges: list[str]) -> list[str]:
    parts = []
    for task in Task:
        benches = [b for b, entry in results.benchmarks.items() if entry.task is task]
        if not benches:
            continue
        body = [[b, str(max((s.n for s in results.benchmarks[b].judges.values()), default=0))]
                + [_cell(results.benchmarks[b].judges.get(j)) for j in judges] for b in benches]
        parts.append(f"## {task.value.capitalize()} — {PRIMARY_METRIC[task]}\n\nCells: value (95% BCa bootstrap "
                     "CI) · parse-failure rate.\n\n" + _table(["benchmark", "n", *judges], body))
        secondary = _pair_rows(results, benches, judges, task.value)
        if secondary:
            parts.append(f"### {task.value.capitalize()} — secondary metrics\n\n" + secondary)
    return parts


def _group(summary: Summary, group: str) -> dict[str, float | int | None]:
    """A Summary's metrics of one group (with ``ece`` beside the task groups); empty when it does not apply."""
    values = getattr(summary, group)
    if values is None:
        return {}
    return values.model_dump() | ({"ece": summary.ece} if group in {t.value for t in Task} else {})


def _pair_rows(results: BenchResults, benches: Sequence[str], judges: Sequence[str], group: str) -> str:
    """A (benchmark, judge) × metrics table of one group, over the summaries where the group applies."""
    rows = [(b, j, _group(results.benchmarks[b].judges[j], group)) for b in benches for j in judges
            if j in results.benchmarks[b].judges]
    rows = [(b, j, values) for b, j, values in rows if values]
    keys = [k for k in (rows[0][2] if rows else {}) if any(values[k] is not None for _, _, values in rows)]
    body = [[b, j] + [_fmt(values[k]) for k in keys] for b, j, values in rows]
    return _table(["benchmark", "judge", *keys], body) if body and keys else ""


def _overall_table(overall: dict[str, Overall]) -> str:
    columns = [f"mean_{t.value}" for t in Task if any(getattr(o, f"mean_{t.value}") is not None
                                                      for o in overall.values())]
    columns += ["overall_task_mean", "overall_flat_mean", "n_benchmarks"]
    body = [[judge] + [_fmt(getattr(o, c)) for c in columns] for judge, o in overall.items()]
    note = ("overall_task_mean = mean over task types of the mean primary metric per type; "
            "overall_flat_mean = mean over benchmarks.")
    return "## Overall\n\n" + note + "\n\n" + _table(["judge", *columns], body)


def _subset_tables(results: BenchResults, judges: list[str]) -> list[str]:
    parts = []
    for bench, entry in results.benchmarks.items():
        names = sorted({name for s in entry.judges.values() for name in s.subsets or {}})
        if not names:
            continue
        field = next(s.subsets_field for s in entry.judges.values() if s.subsets_field)
        active = [j for j in judges if j in entry.judges]
        body = [[name] + [_fmt(_subset_value(entry.judges[j], name)) for j in active] for name in names]
        parts.append(f"### {bench} by {field}\n\n" + _table([field, *active], body))
    return parts


def _subset_value(summary: Summary, name: str) -> float | None:
    score = (summary.subsets or {}).get(name)
    return score.value if score else None


def _formats_table(results: BenchResults) -> str:
    spreads = results.formats or {}
    entries = [entry for per_judge in spreads.values() for entry in per_judge.values()]
    names = sorted({f for entry in entries for f in entry.values})
    body = [[bench, judge, *(_fmt(entry.values.get(f)) for f in names), _fmt(entry.spread)]
            for bench, per_judge in spreads.items() for judge, entry in per_judge.items()]
    return ("## Prompt formats\n\nspread = max − min over formats.\n\n"
            + _table(["benchmark", "judge", *names, "spread"], body))


def _row_errors(results: BenchResults) -> str:
    blocks = []
    for bench, entry in results.benchmarks.items():
        if not entry.row_errors:
            continue
        shown = "\n".join(f"- {error}" for error in entry.row_errors[:_ROW_ERRORS_SHOWN])
        more = len(entry.row_errors) - _ROW_ERRORS_SHOWN
        blocks.append(f"### {bench}: {len(entry.row_errors)} row(s) not scored\n\n{shown}"
                      + (f"\n- … {more} more in results.json" if more > 0 else ""))
    return "## Rows not scored\n\nInvalid data rows and rows a judge failed on; the other rows were scored." \
        "\n\n" + "\n\n".join(blocks) if blocks else ""


def render_markdown(results: BenchResults) -> str:
    """The whole ``report.md`` text."""
    judges = _judges(results)
    meta = results.meta
    settings = " ".join(f"{k}={v}" for k, v in meta.settings.model_dump(mode="json", exclude_none=True).items())
    info = [f"- {key}: `{value}`" for key, value in (("command", meta.command), ("date", meta.date),
                                                      ("judge settings", settings), ("seed", meta.seed),
                                                      ("limit", meta.limit))
            if value is not None]
    parts = ["# gavel bench report"]
    if info:
        parts.append("\n".join(info))
    parts.append("Pairwise rules: gold ties are excluded (counted as tie_items); a judge `tie` scores 0.5; "
                 "a parse failure or error counts as wrong. Baselines: " + ", ".join(BASELINES) + ".")
    parts += _task_tables(results, judges)
    parts.append(_overall_table(results.overall))
    benches = list(results.benchmarks)
    for group, title in _SECTIONS.items():
        table = _pair_rows(results, benches, judges, group)
        if table:
            parts.append(f"## {title}\n\n{table}")
    subsets = _subset_tables(results, judges)
    if subsets:
        parts.append("## Subsets\n\n" + "\n\n".join(subsets))
    if results.formats:
        parts.append(_formats_table(results))
    errors = _row_errors(results)
    if errors:
        parts.append(errors)
    if results.plots:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{p}]({p})" for p in results.plots))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- plots


def plot_bars(results: BenchResults, path: Path) -> Path:
    """Grouped horizontal bars: one group per benchmark (top to bottom), one bar with CI whiskers per judge."""
    judges = _judges(results)
    benches = list(results.benchmarks)
    height = 0.8 / max(len(judges), 1)
    fig = Figure(figsize=(8.0, max(3.0, 0.32 * len(benches) * max(1, len(judges)) ** 0.5 + 1.5)))
    ax = fig.add_subplot()
    y = np.arange(len(benches))
    for i, judge in enumerate(judges):
        got = [results.benchmarks[b].judges.get(judge) for b in benches]
        values = np.array([np.nan if s is None or s.value is None else s.value for s in got], dtype=float)
        low = [s.value - s.ci_low if s and s.value is not None and s.ci_low is not None else 0.0 for s in got]
        high = [s.ci_high - s.value if s and s.value is not None and s.ci_high is not None else 0.0 for s in got]
        ax.barh(y + (i - (len(judges) - 1) / 2) * height, np.nan_to_num(values), height, label=judge,
                xerr=[np.maximum(low, 0), np.maximum(high, 0)], capsize=2)
    labels = [f"{b} ({results.benchmarks[b].metric})" for b in benches]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("primary metric (accuracy, or Pearson r for absolute)")
    ax.axvline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8, ncols=min(4, max(1, len(judges))), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def confusion_counts(rows: Sequence[JudgedRow], task: Task) -> tuple[list[str], list[str], np.ndarray]:
    """(gold labels, predicted labels incl. ``fail`` when any row is unscored, count matrix gold × pred)."""
    gold_labels = list(LABELS[Task(task)])
    labelled = [r for r in rows if r.label in gold_labels]
    predicted = [r.verdict or "fail" for r in labelled]
    pred_labels = gold_labels + (["fail"] if "fail" in predicted else [])
    pred_labels += sorted({p for p in predicted if p not in pred_labels})
    matrix = np.zeros((len(gold_labels), len(pred_labels)), dtype=int)
    for row, pred in zip(labelled, predicted, strict=True):
        matrix[gold_labels.index(row.label or ""), pred_labels.index(pred)] += 1
    return gold_labels, pred_labels, matrix


def plot_confusion(rows: Sequence[JudgedRow], task: Task, title: str, path: Path) -> Path:
    """A gold × predicted count matrix with the counts written in the cells."""
    gold, pred, matrix = confusion_counts(rows, task)
    fig = Figure(figsize=(1.0 + 0.7 * len(pred), 1.0 + 0.6 * len(gold)))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(len(pred)), pred)
    ax.set_yticks(range(len(gold)), gold)
    ax.set_xlabel("judge")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


_EVENT = {Task.classification: "gold = Yes", Task.pairwise: "gold = A", Task.absolute: "verdict = gold"}


def plot_calibration(rows_by_judge: dict[str, list[JudgedRow]], task: Task, title: str, path: Path) -> Path | None:
    """Reliability diagram of every judge with probabilities; None when no judge has any."""
    curves = {j: calibration_data(rows, task) for j, rows in rows_by_judge.items()}
    curves = {j: c for j, c in curves.items() if len(c[0])}
    if not curves:
        return None
    fig = Figure(figsize=(4.8, 4.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    for judge, (probs, outcome) in curves.items():
        mean_p, freq, _ = reliability_points(probs, outcome)
        ax.plot(mean_p, freq, marker="o", label=judge)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel(f"observed frequency ({_EVENT[Task(task)]})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _plot_rows(out: Path, rows: RowsByBench, results: BenchResults) -> list[Path]:
    written = []
    for bench, per_judge in rows.items():
        task = results.benchmarks[bench].task
        if task in (Task.absolute, Task.classification):
            for judge, judge_rows in per_judge.items():
                name = f"confusion_{safe_name(bench)}_{safe_name(judge)}"
                written.append(plot_confusion(judge_rows, task, f"{bench} — {judge}", BenchOutput(out).plot(name)))
        calibration = plot_calibration(per_judge, task, f"{bench}: calibration",
                                       BenchOutput(out).plot(f"calibration_{safe_name(bench)}"))
        if calibration:
            written.append(calibration)
    return written


# ---------------------------------------------------------------- entry point


def write_report(out_dir: str | Path, results: BenchResults, rows: RowsByBench | None = None) -> BenchResults:
    """Fill in ``overall`` and ``plots``, then write results.json, report.md, bars.png and (with ``rows``)
    confusion and calibration plots. Returns the completed results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    judges = _judges(results)
    overall = {j: overall_scores({b: e.judges[j] for b, e in results.benchmarks.items() if j in e.judges})
               for j in judges}
    results = results.model_copy(update={"overall": overall})
    plots = [plot_bars(results, BenchOutput(out).plot("bars"))] if results.benchmarks else []
    plots += _plot_rows(out, rows or {}, results)
    results = results.model_copy(update={"plots": [p.name for p in plots]})
    BenchOutput(out).results.write_text(results.model_dump_json(indent=2) + "\n", encoding="utf-8")
    BenchOutput(out).report.write_text(render_markdown(results), encoding="utf-8")
    return results


__all__ = [
    "confusion_counts",
    "plot_bars",
    "plot_calibration",
    "plot_confusion",
    "render_markdown",
    "safe_name",
    "write_report",
]
