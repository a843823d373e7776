"""Write the ``gavel bench`` report: ``results.json``, ``report.md`` and PNG plots.

Call ``write_report(out_dir, summaries, rows, meta)`` with

- ``summaries``: ``{benchmark: {judge: summary}}``, each summary from :func:`gavel.bench.metrics.summarise`;
- ``rows`` (optional): ``{benchmark: {judge: [output rows]}}``, needed for confusion and calibration plots;
- ``meta`` (optional): free-form run metadata written to both files. Keys read here: ``tasks``
  (``{benchmark: task}``, else each summary's ``task``), ``command``, ``seeds``/``seed``, ``limit``,
  ``date`` and ``formats`` (``{benchmark: {judge: {format: value or summary}}}``: the prompt-format table).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from gavel.bench.baselines import BASELINES
from gavel.bench.metrics import PRIMARY, calibration_data, is_scored, overall_scores
from gavel.judge.records import LABELS, Task

Summaries = dict[str, dict[str, dict[str, Any]]]
RowsByBench = dict[str, dict[str, list[dict[str, Any]]]]

TASK_ORDER = ("absolute", "classification", "pairwise")
_SECONDARY = {
    "absolute": ("spearman", "kendall", "exact_agreement", "pearson_expected", "ece"),
    "classification": ("balanced_accuracy", "accuracy_scored", "ece"),
    "pairwise": ("accuracy_scored", "tie_items", "ece"),
}
_BOTH_ORDERS = ("accuracy_order1", "accuracy_order2", "accuracy_order_mean", "consistency", "position_bias_a")
_LENGTH = ("acc_gold_longer", "n_gold_longer", "acc_gold_shorter", "n_gold_shorter")
_INJECTION = ("injection_follow_rate", "injection_follow_rate_clean", "injection_accuracy", "n_injected")
_REWARDBENCH = ("rb_chat", "rb_chat_hard", "rb_safety", "rb_reasoning", "rewardbench_score")


# ---------------------------------------------------------------- helpers


def safe_name(name: str) -> str:
    """A file-name-safe version of a benchmark or judge name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "unnamed"


def _jsonable(value: Any) -> Any:
    """Plain JSON types only: NaN/inf become None, numpy scalars and paths become Python values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def _judges(summaries: Summaries) -> list[str]:
    """Every judge, models first (in first-seen order), then the no-model baselines."""
    seen: list[str] = []
    for per_judge in summaries.values():
        seen += [j for j in per_judge if j not in seen]
    return [j for j in seen if j not in BASELINES] + [j for j in seen if j in BASELINES]


def _task(bench: str, summaries: Summaries, meta: dict[str, Any]) -> str:
    tasks = meta.get("tasks") or {}
    if bench in tasks:
        return getattr(tasks[bench], "value", tasks[bench])
    return next((s["task"] for s in summaries[bench].values() if "task" in s), "pairwise")


def _cell(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "–"
    ci = ""
    if summary.get("ci_low") is not None:
        ci = f" ({_fmt(summary['ci_low'])}–{_fmt(summary['ci_high'])})"
    return f"{_fmt(summary.get('value'))}{ci} · pf {_pct(summary.get('parse_failure_rate'))}"


# ---------------------------------------------------------------- markdown sections


def _task_tables(summaries: Summaries, meta: dict[str, Any], judges: list[str]) -> list[str]:
    parts = []
    for task in TASK_ORDER:
        benches = [b for b in summaries if _task(b, summaries, meta) == task]
        if not benches:
            continue
        body = [[b, str(max((s.get("n", 0) for s in summaries[b].values()), default=0))]
                + [_cell(summaries[b].get(j)) for j in judges] for b in benches]
        parts.append(f"## {task.capitalize()} — {PRIMARY[task]}\n\nCells: value (95% bootstrap CI) · "
                     f"parse-failure rate.\n\n" + _table(["benchmark", "n", *judges], body))
        secondary = _pair_rows(summaries, benches, judges, _SECONDARY[task])
        if secondary:
            parts.append(f"### {task.capitalize()} — secondary metrics\n\n" + secondary)
    return parts


def _pair_rows(summaries: Summaries, benches: Sequence[str], judges: Sequence[str],
               keys: Sequence[str]) -> str:
    """A (benchmark, judge) × keys table over the summaries that have at least one of ``keys``."""
    present = [k for k in keys if any(k in s for b in benches for s in summaries[b].values())]
    body = [[b, j] + [_fmt(summaries[b][j].get(k)) for k in present]
            for b in benches for j in judges
            if j in summaries[b] and any(summaries[b][j].get(k) is not None for k in present)]
    return _table(["benchmark", "judge", *present], body) if body else ""


def _overall_table(overall: dict[str, dict[str, Any]]) -> str:
    columns = [f"mean_{t}" for t in TASK_ORDER if any(f"mean_{t}" in o for o in overall.values())]
    columns += ["overall_task_mean", "overall_flat_mean", "n_benchmarks"]
    body = [[judge] + [_fmt(o.get(c)) for c in columns] for judge, o in overall.items()]
    note = ("overall_task_mean = mean over task types of the mean primary metric per type; "
            "overall_flat_mean = mean over benchmarks.")
    return "## Overall\n\n" + note + "\n\n" + _table(["judge", *columns], body)


def _subset_tables(summaries: Summaries, judges: list[str]) -> list[str]:
    parts = []
    for bench, per_judge in summaries.items():
        names = sorted({name for s in per_judge.values() for name in s.get("subsets", {})})
        if not names:
            continue
        field = next(s["subsets_field"] for s in per_judge.values() if "subsets_field" in s)
        active = [j for j in judges if j in per_judge]
        body = [[name] + [_fmt(per_judge[j].get("subsets", {}).get(name, {}).get("value")) for j in active]
                for name in names]
        parts.append(f"### {bench} by {field}\n\n" + _table([field, *active], body))
    return parts


def _format_value(value: Any) -> float | None:
    value = value.get("value") if isinstance(value, dict) else value
    return None if value is None else float(value)


def format_spread(formats: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{benchmark: {judge: {"values": {format: value}, "spread": max - min}}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for bench, per_judge in formats.items():
        for judge, per_format in per_judge.items():
            values = {f: _format_value(v) for f, v in per_format.items()}
            defined = [v for v in values.values() if v is not None]
            spread = max(defined) - min(defined) if defined else None
            out.setdefault(bench, {})[judge] = {"values": values, "spread": spread}
    return out


def _formats_table(formats: dict[str, dict[str, dict[str, Any]]]) -> str:
    spreads = format_spread(formats)
    entries = [entry for per_judge in spreads.values() for entry in per_judge.values()]
    names = sorted({f for entry in entries for f in entry["values"]})
    body = [[bench, judge, *(_fmt(entry["values"].get(f)) for f in names), _fmt(entry["spread"])]
            for bench, per_judge in spreads.items() for judge, entry in per_judge.items()]
    return ("## Prompt formats\n\nspread = max − min over formats.\n\n"
            + _table(["benchmark", "judge", *names, "spread"], body))


def render_markdown(summaries: Summaries, overall: dict[str, dict[str, Any]], meta: dict[str, Any],
                    plots: Sequence[str] = ()) -> str:
    """The whole ``report.md`` text."""
    judges = _judges(summaries)
    parts = ["# gavel bench report"]
    info = [f"- {key}: `{_jsonable(meta[key])}`" for key in ("command", "date", "seeds", "seed", "limit")
            if meta.get(key) is not None]
    if info:
        parts.append("\n".join(info))
    parts.append("Pairwise rules: gold ties are excluded (counted as tie_items); a judge `tie` scores 0.5; "
                 "a parse failure or error counts as wrong. Baselines: " + ", ".join(BASELINES) + ".")
    parts += _task_tables(summaries, meta, judges)
    parts.append(_overall_table(overall))
    benches = list(summaries)
    for title, keys in (("Both orders", _BOTH_ORDERS), ("Length bias", _LENGTH),
                        ("Prompt injection", _INJECTION), ("RewardBench sections", _REWARDBENCH)):
        table = _pair_rows(summaries, benches, judges, keys)
        if table:
            note = " (rewardbench_score = plain mean of the four sections)" if "Reward" in title else ""
            parts.append(f"## {title}{note}\n\n{table}")
    subsets = _subset_tables(summaries, judges)
    if subsets:
        parts.append("## Subsets\n\n" + "\n\n".join(subsets))
    if meta.get("formats"):
        parts.append(_formats_table(meta["formats"]))
    if plots:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{p}]({p})" for p in plots))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- plots


def plot_bars(summaries: Summaries, path: Path) -> Path:
    """Grouped horizontal bars: one group per benchmark (top to bottom), one bar with CI whiskers per judge."""
    judges = _judges(summaries)
    benches = list(summaries)
    height = 0.8 / max(len(judges), 1)
    fig = Figure(figsize=(8.0, max(3.0, 0.32 * len(benches) * max(1, len(judges)) ** 0.5 + 1.5)))
    ax = fig.add_subplot()
    y = np.arange(len(benches))
    for i, judge in enumerate(judges):
        got = [summaries[b].get(judge, {}) for b in benches]
        values = np.array([np.nan if s.get("value") is None else s["value"] for s in got], dtype=float)
        low = [s["value"] - s["ci_low"] if s.get("ci_low") is not None else 0.0 for s in got]
        high = [s["ci_high"] - s["value"] if s.get("ci_high") is not None else 0.0 for s in got]
        ax.barh(y + (i - (len(judges) - 1) / 2) * height, np.nan_to_num(values), height, label=judge,
                xerr=[np.maximum(low, 0), np.maximum(high, 0)], capsize=2)
    metrics = [next((s["metric"] for s in summaries[b].values() if "metric" in s), "") for b in benches]
    ax.set_yticks(y, [f"{b} ({m})" for b, m in zip(benches, metrics, strict=True)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("primary metric (accuracy, or Pearson r for absolute)")
    ax.axvline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8, ncols=min(4, max(1, len(judges))), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def confusion_counts(rows: Sequence[dict[str, Any]], task: str) -> tuple[list[str], list[str], np.ndarray]:
    """(gold labels, predicted labels incl. ``fail`` when any row is unscored, count matrix gold × pred)."""
    gold_labels = list(LABELS[Task(task)])
    labelled = [r for r in rows if r.get("label") in gold_labels]
    predicted = [str(r["result"]) if is_scored(r) else "fail" for r in labelled]
    pred_labels = gold_labels + (["fail"] if "fail" in predicted else [])
    pred_labels += sorted({p for p in predicted if p not in pred_labels})
    matrix = np.zeros((len(gold_labels), len(pred_labels)), dtype=int)
    for row, pred in zip(labelled, predicted, strict=True):
        matrix[gold_labels.index(row["label"]), pred_labels.index(pred)] += 1
    return gold_labels, pred_labels, matrix


def plot_confusion(rows: Sequence[dict[str, Any]], task: str, title: str, path: Path) -> Path:
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


def reliability_points(probs: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, ...]:
    """(mean predicted probability, observed frequency, count) per non-empty equal-width bin."""
    bins = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    used = [b for b in range(n_bins) if (bins == b).any()]
    mean_p = np.array([probs[bins == b].mean() for b in used])
    freq = np.array([outcome[bins == b].mean() for b in used])
    return mean_p, freq, np.array([(bins == b).sum() for b in used])


def plot_calibration(rows_by_judge: dict[str, list[dict[str, Any]]], task: str, title: str,
                     path: Path) -> Path | None:
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
    event = {"classification": "gold = Yes", "pairwise": "gold = A", "absolute": "verdict = gold"}[task]
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel(f"observed frequency ({event})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _plot_rows(out: Path, rows: RowsByBench, summaries: Summaries, meta: dict[str, Any]) -> list[Path]:
    written = []
    for bench, per_judge in rows.items():
        task = _task(bench, summaries, meta) if bench in summaries else per_judge_task(per_judge)
        if task in ("absolute", "classification"):
            for judge, judge_rows in per_judge.items():
                name = f"confusion_{safe_name(bench)}_{safe_name(judge)}.png"
                written.append(plot_confusion(judge_rows, task, f"{bench} — {judge}", out / name))
        calibration = plot_calibration(per_judge, task, f"{bench}: calibration",
                                       out / f"calibration_{safe_name(bench)}.png")
        if calibration:
            written.append(calibration)
    return written


def per_judge_task(per_judge: dict[str, list[dict[str, Any]]]) -> str:
    """The task of a benchmark read from its first row."""
    first = next((rows[0] for rows in per_judge.values() if rows), {"task": "pairwise"})
    return getattr(first["task"], "value", first["task"])


# ---------------------------------------------------------------- entry point


def write_report(out_dir: str | Path, summaries: Summaries, rows: RowsByBench | None = None,
                 meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write results.json, report.md, bars.png and (with ``rows``) confusion and calibration plots.

    Returns ``{"results": path, "report": path, "plots": [paths...]}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    judges = _judges(summaries)
    overall = {j: overall_scores({b: s[j] for b, s in summaries.items() if j in s}) for j in judges}
    plots = [plot_bars(summaries, out / "bars.png")] if summaries else []
    plots += _plot_rows(out, rows or {}, summaries, meta)
    document = {
        "meta": meta,
        "benchmarks": {b: {"task": _task(b, summaries, meta), "metric": PRIMARY[_task(b, summaries, meta)],
                           "judges": per_judge} for b, per_judge in summaries.items()},
        "overall": overall,
        "plots": [p.name for p in plots],
    }
    if meta.get("formats"):
        document["formats"] = format_spread(meta["formats"])
    results_path = out / "results.json"
    text = json.dumps(_jsonable(document), indent=2, allow_nan=False)
    results_path.write_text(text + "\n", encoding="utf-8")
    report_path = out / "report.md"
    markdown = render_markdown(summaries, overall, meta, [p.name for p in plots])
    report_path.write_text(markdown, encoding="utf-8")
    return {"results": results_path, "report": report_path, "plots": plots}


__all__ = [
    "confusion_counts",
    "format_spread",
    "plot_bars",
    "plot_calibration",
    "plot_confusion",
    "reliability_points",
    "render_markdown",
    "safe_name",
    "write_report",
]
