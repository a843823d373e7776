"""`gavel recipe`: curate -> train -> bench the base and the trained judge on the same items -> one report.

Output folder layout: ``curate/`` (the pairs, unless the recipe points at a finished mix), ``train/`` (see
gavel.train.trainer), ``bench-verdict/`` and ``bench-critique/`` (gavel bench folders with both judges) and
``report.md`` / ``report.json``: per benchmark, base and trained with 95% CIs, and the paired delta with its CI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gavel.bench.baselines import BASELINES
from gavel.bench.results import BothOrders, Summary, read_results
from gavel.config import ConfigError, read_yaml_mapping, validate_model, with_changes
from gavel.curate.config import CurateConfig, load_config
from gavel.data import default_data_root
from gavel.labels import Mode, Status, Task
from gavel.layout import READY, BenchOutput, CurateOutput, RecipeOutput, TrainOutput
from gavel.settings import DEFAULT_SEED, JudgeSettings
from gavel.train.config import EMBEDDED_BASE, TrainConfig, resolve_paths

if TYPE_CHECKING:
    from gavel.bench.harness import BenchTarget

log = logging.getLogger(__name__)

#: A verdict-run list holding a benchmark of the other list's task is misfiled (classification fits either).
MISFILED = {"pairwise": Task.absolute, "absolute": Task.pairwise}
#: How a recipe sets its benchmark data root (named when there is none).
ROOT_OPTION = "bench.data_root in the recipe"


class CurateStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: Path | None = Field(None, description="a `gavel curate` config to run")
    output: Path | None = Field(None, description="a finished mix (with READY) to use instead of curating")


class BenchStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pairwise: list[str] = Field(default_factory=list, description="pairwise (or classification) benchmarks for "
                                "the verdict-mode run")
    absolute: list[str] = Field(default_factory=list, description="absolute (or classification) benchmarks for "
                                "the verdict-mode run")
    limit: int | None = Field(None, ge=1)
    critique: list[str] = Field(default_factory=list, description="benchmarks for the critique-mode run")
    critique_limit: int | None = Field(None, ge=1)
    judge: JudgeSettings = Field(JudgeSettings(both_orders=True), description="every judge setting of both bench "
                                 "runs; the mode is each run's own (verdict, critique)")
    seed: int = DEFAULT_SEED
    data_root: Path | None = None


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    output_dir: Path = Path("runs/recipe")
    curate: CurateStage = CurateStage()
    train: TrainConfig
    bench: BenchStage = BenchStage()


def load_recipe(path: str | Path, output_dir: Path | None = None) -> Recipe:
    """Read a recipe, validated once; relative paths are taken from its folder, `output_dir` from the working
    folder. Its curate config and its benchmark names are checked too, so a missing or broken config or an
    unknown benchmark fails before any stage runs."""
    path = Path(path)
    data = read_yaml_mapping(path)
    root = path.parent.resolve()
    given = data.get("output_dir", Recipe.model_fields["output_dir"].default)
    out = output_dir.resolve() if output_dir else (root / given).resolve() if isinstance(given, str | Path) else given
    raw = data | {"output_dir": out}
    if isinstance(data.get("curate"), dict):
        raw["curate"] = {k: (root / v).resolve() if isinstance(v, str) else v for k, v in data["curate"].items()}
    if isinstance(data.get("train"), dict) and isinstance(out, Path):
        raw["train"] = resolve_paths(data["train"], root) | {"output_dir": RecipeOutput(out).train}
    if isinstance(data.get("bench"), dict) and isinstance(data["bench"].get("data_root"), str):
        raw["bench"] = data["bench"] | {"data_root": (root / data["bench"]["data_root"]).resolve()}
    recipe = validate_model(raw, Recipe, str(path))
    check_benchmarks(recipe.bench, path)
    if recipe.curate.config is not None:
        load_config(recipe.curate.config)
    if recipe.curate.output is not None and not CurateOutput(recipe.curate.output).finished:
        raise ConfigError(f"{path}: curate.output: {recipe.curate.output} is not a finished gavel curate output "
                          f"(no {READY})")
    return recipe


def check_benchmarks(bench: BenchStage, path: Path) -> None:
    """Every benchmark named is registered and none is misfiled: a ConfigError of one line per bad name."""
    from gavel.bench import registry

    errors = []
    for field in ("pairwise", "absolute", "critique"):
        for name in getattr(bench, field):
            try:
                task = registry.get(name).task
            except KeyError as exc:
                errors.append(f"{path}: bench.{field}: {exc.args[0]}")
                continue
            if MISFILED.get(field) == task:
                errors.append(f"{path}: bench.{field}: {name!r} is a benchmark of task {task.value} "
                              f"(list it under bench.{task.value})")
    if errors:
        raise ConfigError("\n".join(errors))


@dataclass(frozen=True)
class BenchRun:
    """One bench run of the recipe: its mode, item limit and loaded benchmarks."""

    mode: str
    limit: int | None
    targets: list[BenchTarget]


def bench_runs(recipe: Recipe) -> list[BenchRun]:
    """The recipe's bench runs, their benchmarks loaded now (no model) so that missing data stops the recipe
    before any stage: a run none of whose benchmarks loads is a ValueError, as in `gavel bench`."""
    from gavel.bench.harness import load_targets

    root, bench = default_data_root(recipe.bench.data_root), recipe.bench
    asked = [(Mode.verdict.value, bench.pairwise + bench.absolute, bench.limit),
             (Mode.critique.value, bench.critique, bench.critique_limit)]
    return [BenchRun(mode, limit, load_targets(names, [], root, limit, bench.seed, root_option=ROOT_OPTION))
            for mode, names, limit in asked if names]


# -- stages -----------------------------------------------------------------------------------------
def curate_stage(recipe: Recipe, console) -> Path:
    """The folder of finished pairs: the recipe's own, or a fresh `gavel curate` run."""
    if recipe.curate.output is not None:
        if not CurateOutput(recipe.curate.output).finished:
            raise FileNotFoundError(f"{recipe.curate.output}: no {READY} marker, the mix is not finished")
        return recipe.curate.output
    out = RecipeOutput(recipe.output_dir).curate
    if out.finished:
        return out.root
    if recipe.curate.config is None:
        return recipe.train.data
    from gavel.curate.pipeline import run as curate

    curate(curate_config(recipe), out.root, console=console)
    return out.root


def curate_config(recipe: Recipe) -> CurateConfig:
    """The recipe's curate config; the mix's token limit is the trainer's ``max_length`` unless the config sets
    one (a longer pair would only be dropped by the trainer)."""
    config = load_config(recipe.curate.config)
    if "max_tokens" in config.mix.model_fields_set:
        if config.mix.max_tokens > recipe.train.max_length:
            log.warning("curate mix.max_tokens %d is above train.max_length %d: longer pairs will be dropped",
                        config.mix.max_tokens, recipe.train.max_length)
        return config
    return with_changes(config, mix=with_changes(config.mix, max_tokens=recipe.train.max_length))


def trained_spec(train: TrainConfig) -> str:
    """A model spec for the trained judge: over llama.cpp where a GGUF was written (what ships), else the
    trained transformers folder."""
    out = TrainOutput(train.output_dir)
    if train.export_gguf and train.method == "lora" and train.base == EMBEDDED_BASE:
        return f"smollm2+{out.gguf(train.method)}"
    if train.export_gguf and train.method == "full":
        return str(out.gguf(train.method))
    return str(out.merged if train.method == "lora" else out.trained(train.method))


def base_spec(train: TrainConfig) -> str:
    """The base through the same engine as the trained judge, so only the weights differ."""
    spec = trained_spec(train)
    if train.base == EMBEDDED_BASE:
        return "smollm2" if spec.endswith(".gguf") else "hf:smollm2"
    return f"hf:{train.base}"


def bench_stage(recipe: Recipe, bench: BenchRun, judges: list[str]) -> BenchOutput:
    from gavel.bench.harness import BenchConfig, run_bench

    out = RecipeOutput(recipe.output_dir).bench(bench.mode)
    config = BenchConfig(judges=judges, out_dir=out.root, limit=bench.limit, seed=recipe.bench.seed,
                         settings=JudgeSettings.of(recipe.bench.judge, mode=bench.mode),
                         command=f"gavel recipe ({recipe.name}): {bench.mode} stage")
    run_bench(config, bench.targets)
    return out


# -- the comparison ---------------------------------------------------------------------------------
def _rows(folder: BenchOutput, bench: str, judge: str) -> list[dict[str, Any]]:
    from gavel.judge.runner import read_results

    return read_results(folder.items(bench, judge))


def paired_delta(base: list[dict[str, Any]], trained: list[dict[str, Any]], task: str,
                 seed: int = DEFAULT_SEED) -> dict[str, float | None]:
    """Trained minus base on the items both judged, with a paired bootstrap 95% CI (items resampled jointly)."""
    from gavel.bench.metrics import as_judged, bootstrap_ci, primary_value

    by_id = {r["id"]: r for r in trained}
    pairs = [(b, by_id[b["id"]]) for b in base if b["id"] in by_id]
    if not pairs:
        return {"delta": None, "ci_low": None, "ci_high": None, "n": 0}
    left = np.array(as_judged(p[0] for p in pairs), dtype=object)
    right = np.array(as_judged(p[1] for p in pairs), dtype=object)

    def delta(a: np.ndarray, b: np.ndarray) -> float | None:
        x, y = primary_value(list(a), task), primary_value(list(b), task)
        return None if x is None or y is None else y - x

    low, high = bootstrap_ci([left, right], delta, seed=seed)
    return {"delta": delta(left, right), "ci_low": low, "ci_high": high, "n": len(pairs)}


def status_stats(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Share of items whose result the model wrote itself (status ok) and the median generated tokens."""
    if not rows:
        return {"ok_rate": None, "median_completion_tokens": None}
    return {"ok_rate": sum(r.get("status") == Status.ok for r in rows) / len(rows),
            "median_completion_tokens": float(np.median([r.get("completion_tokens", 0) for r in rows]))}


class Side(BaseModel):
    """One judge in a comparison: its bench summary and how it wrote its verdicts."""

    summary: Summary
    ok_rate: float | None = None  # share of items whose result the model wrote itself (status ok)
    median_completion_tokens: float | None = None


class Comparison(BaseModel):
    """One benchmark, base against trained: both sides, the paired delta with its CI, the baselines' values."""

    task: Task
    base: Side
    trained: Side
    baselines: dict[str, float | None]  # no-model baselines' primary values on the same items
    delta: float | None = None  # trained minus base
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0  # items both judged


def _both_orders(side: Side) -> BothOrders:
    return side.summary.both_orders or BothOrders()


#: The pairwise headline figures: their names in report.json and where each is read.
HEADLINES: dict[str, Callable[[Side], float | None]] = {
    "value": lambda side: side.summary.value,
    "accuracy_order_mean": lambda side: _both_orders(side).accuracy_order_mean,
    "consistency": lambda side: _both_orders(side).consistency,
    "position_bias_a": lambda side: _both_orders(side).position_bias_a,
    "parse_failure_rate": lambda side: side.summary.parse_failure_rate,
}


def compare(folder: BenchOutput, base: str, trained: str, seed: int = DEFAULT_SEED) -> dict[str, Comparison]:
    """Per benchmark: both judges' summaries (from results.json), status stats, the paired delta and the no-model
    baselines' primary values on the same items."""
    out = {}
    for bench, entry in read_results(folder.root).benchmarks.items():
        per_judge = entry.judges
        if base not in per_judge or trained not in per_judge:
            continue
        base_rows, trained_rows = _rows(folder, bench, base), _rows(folder, bench, trained)
        baselines = {name.removeprefix("baseline:"): summary.value
                     for name, summary in per_judge.items() if name.startswith("baseline:")}
        out[bench] = Comparison(task=entry.task, baselines=baselines,
                                base=Side(summary=per_judge[base], **status_stats(base_rows)),
                                trained=Side(summary=per_judge[trained], **status_stats(trained_rows)),
                                **paired_delta(base_rows, trained_rows, entry.task.value, seed))
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _arrow(row: Comparison, figure: Callable[[Side], float | None]) -> str:
    return f"{_fmt(figure(row.base))} -> {_fmt(figure(row.trained))}"


def pairwise_summary(rows: dict[str, Comparison]) -> dict[str, float | None]:
    """Means over the pairwise benchmarks, base and trained: the issue's headline figures."""
    pairwise = [r for r in rows.values() if r.task == Task.pairwise]
    out: dict[str, float | None] = {"n_benchmarks": len(pairwise)}
    for name, figure in HEADLINES.items():
        for side in ("base", "trained"):
            values = [v for r in pairwise if (v := figure(getattr(r, side))) is not None]
            out[f"{side}_{name}"] = float(np.mean(values)) if values else None
    return out


def _mode_lines(mode: str, rows: dict[str, Comparison]) -> list[str]:
    lines = [f"## {mode} mode", "",
             "| benchmark | metric | base [95% CI] | trained [95% CI] | delta [95% CI] | order-mean accuracy "
             "| consistency | share of A | parse failures | ok rate | median tokens "
             f"| baselines: {' / '.join(BASELINES)} |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for bench, row in rows.items():
        b, t = row.base.summary, row.trained.summary
        base_lines = " / ".join(_fmt(row.baselines.get(k)) for k in BASELINES)
        lines.append(
            f"| {bench} | {b.metric} | {_fmt(b.value)} [{_fmt(b.ci_low)}, {_fmt(b.ci_high)}] "
            f"| {_fmt(t.value)} [{_fmt(t.ci_low)}, {_fmt(t.ci_high)}] "
            f"| {_fmt(row.delta)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}] "
            f"| {_arrow(row, HEADLINES['accuracy_order_mean'])} | {_arrow(row, HEADLINES['consistency'])} "
            f"| {_arrow(row, HEADLINES['position_bias_a'])} | {_arrow(row, HEADLINES['parse_failure_rate'])} "
            f"| {_arrow(row, lambda side: side.ok_rate)} "
            f"| {row.base.median_completion_tokens} -> {row.trained.median_completion_tokens} | {base_lines} |")
    summary = pairwise_summary(rows)
    if summary["n_benchmarks"]:
        lines += ["", f"Pairwise means over {summary['n_benchmarks']} benchmarks, base -> trained: accuracy "
                  f"(orders combined) {_fmt(summary['base_value'])} -> {_fmt(summary['trained_value'])}; "
                  f"order-mean accuracy {_fmt(summary['base_accuracy_order_mean'])} -> "
                  f"{_fmt(summary['trained_accuracy_order_mean'])}; consistency {_fmt(summary['base_consistency'])} "
                  f"-> {_fmt(summary['trained_consistency'])}; share of A {_fmt(summary['base_position_bias_a'])} -> "
                  f"{_fmt(summary['trained_position_bias_a'])}."]
    return [*lines, ""]


def write_report(recipe: Recipe, comparisons: dict[str, dict[str, Comparison]], train_summary: dict[str, Any],
                 judges: tuple[str, str]) -> Path:
    lines = [f"# gavel recipe: {recipe.name}", "",
             f"Base `{judges[0]}` against trained `{judges[1]}` on the same seeded items (seed {recipe.bench.seed}). "
             f"Trained {train_summary.get('pairs')} pairs, {train_summary.get('steps')} steps in "
             f"{train_summary.get('seconds')} s, peak RSS {train_summary.get('peak_rss_mib')} MiB. "
             "The delta is trained minus base with a paired bootstrap CI (items resampled jointly).", ""]
    for mode, rows in comparisons.items():
        lines += _mode_lines(mode, rows)
    path = RecipeOutput(recipe.output_dir).report_md
    path.write_text("\n".join(lines), encoding="utf-8")
    summaries = {mode: pairwise_summary(rows) for mode, rows in comparisons.items()}
    RecipeOutput(recipe.output_dir).report_json.write_text(json.dumps(
        {"train": train_summary, "judges": {"base": judges[0], "trained": judges[1]},
         "pairwise_summary": summaries,
         **{mode: {bench: row.model_dump(mode="json") for bench, row in rows.items()}
            for mode, rows in comparisons.items()}}, indent=1))
    return path


def run(recipe: Recipe, runs: list[BenchRun], console=None) -> Path:
    """All stages, benching `runs` (from :func:`bench_runs`); each one resumes (curate READY, training
    checkpoints, bench item files)."""
    from gavel.bench.harness import judge_label
    from gavel.train.trainer import run as train

    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    config = with_changes(recipe.train, data=curate_stage(recipe, console))
    train(config)  # a finished run with the same settings and data returns at once; other ones are refused
    summary = TrainOutput(config.output_dir).read_summary()
    base, trained = base_spec(config), trained_spec(config)
    comparisons = {}
    for bench in runs:
        folder = bench_stage(recipe, bench, [base, trained])
        comparisons[bench.mode] = compare(folder, judge_label(base), judge_label(trained), recipe.bench.seed)
    return write_report(recipe, comparisons, summary, (base, trained))
