"""The data card: Markdown for people, JSON for programs, both from one dictionary."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from gavel.labels import Mode, Task
from gavel.layout import CurateOutput


def _length_stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"min": ordered[0], "median": statistics.median(ordered), "mean": round(statistics.fmean(ordered), 1),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def card_data(report) -> dict[str, Any]:
    rows = report.rows
    kinds = Counter(r["kind"] for r in rows)
    by_source = Counter(r["source"] for r in rows)
    by_source_kind = Counter((r["source"], r["kind"]) for r in rows)
    tokens = [max(r.get("_tokens", [0])) for r in rows]
    examples = []
    critique, verdict, pairwise = Mode.critique.value, Mode.verdict.value, Task.pairwise.value
    for kind, task in ((critique, None), (verdict, pairwise), (critique, pairwise), (verdict, None)):
        match = next((r for r in rows if r["kind"] == kind and (task is None or r["task"] == task)
                      and r["id"] not in {e["id"] for e in examples}), None)
        if match is not None and len(examples) < 3:
            examples.append({k: v for k, v in match.items() if not k.startswith("_")})
    return {
        "rows": len(rows),
        "per_source": dict(sorted(by_source.items())),
        "per_source_kind": {f"{s}/{k}": n for (s, k), n in sorted(by_source_kind.items())},
        "per_task": dict(sorted(Counter(r["task"] for r in rows).items())),
        "per_chosen_label": dict(sorted(Counter(f"{r['task']}:{r['chosen_label']}" for r in rows).items())),
        "swapped": sum(bool(r["swapped"]) for r in rows),
        "ratio": {critique: kinds[critique], verdict: kinds[verdict],
                  "critique_share": round(kinds[critique] / len(rows), 4) if rows else None,
                  "configured_critique_ratio": report.config["mix"]["critique_ratio"]},
        "length_tokens": {"prompt_plus_answer_max_side": _length_stats(tokens),
                          "limit": report.config["mix"]["max_tokens"]},
        "critique_tokens_note": "critiques are cut to mix.max_critique_tokens at a sentence end",
        "stages": [{"name": s.name, "seconds": round(s.seconds, 2), "in": s.before, "out": s.after, "note": s.note}
                   for s in report.stages],
        "wall_seconds_total": round(report.extra.get("wall_seconds_total", 0.0), 1),
        "row_errors": dict(report.row_errors),
        "unavailable_sources": report.unavailable_sources,
        "reward_model_dropped": report.rm_dropped,
        "decontamination": {"removed": report.decontam_removed,
                            "removed_per_benchmark": {b: sum(v.values()) for b, v in
                                                      sorted(report.decontam_removed.items())},
                            "benchmarks_indexed": report.extra.get("decontam_benchmarks", []),
                            "benchmarks_unavailable": report.decontam_unavailable},
        "consistency": report.consistency.as_dict(),
        "final_too_long": report.extra.get("final_too_long", 0),
        "config": report.config,
        "examples": examples,
    }


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown(data: dict[str, Any]) -> str:
    cfg = data["config"]
    parts = [
        "# Data card: gavel curate mix",
        "",
        f"{data['rows']} preference pairs (TRL conversational format: prompt / chosen / rejected), "
        f"built by `gavel curate` with seed {cfg['seed']}, teacher `{cfg['teacher']['model'] or 'embedded'}` "
        f"(max {cfg['teacher']['max_new_tokens']} new tokens; rejected critiques: "
        f"{cfg['teacher'].get('rejected', 'teacher')}), total wall time {data['wall_seconds_total']} s.",
        "",
        "## Counts per source and stage",
        "",
    ]
    stages = data["stages"]
    sources = sorted({s for st in stages for s in list(st["in"]) + list(st["out"])
                      if s not in ("calls", "outputs", "rows")})
    source_stages = [st for st in stages if st["name"] not in ("teacher", "export")]
    header = ["source"] + [st["name"] + " out" for st in source_stages]
    parts.append(_table(header, [[s] + [st["out"].get(s, 0) for st in source_stages] for s in sources]))
    per_kind = ", ".join(f"{k} {v}" for k, v in data["per_source_kind"].items())
    parts += ["", f"Final rows per source and kind: {per_kind}",
              "", "## Stages (wall time)", ""]
    parts.append(_table(["stage", "seconds", "note"], [[st["name"], st["seconds"], st["note"]] for st in stages]))
    cons = data["consistency"]
    parts += ["", "## Consistency filter (teacher critiques)", "",
              f"Drop rate: chosen {_pct(cons['drop_rate']['chosen'])}, rejected {_pct(cons['drop_rate']['rejected'])} "
              "(paper: 0.8% chosen, 23.7% rejected). Trusted source critiques used as chosen are not checked.", ""]
    parts.append(_table(["source", "role", "checked", "kept", "drop rate"],
                        [[s, role, v["checked"], v["kept"], _pct(v["drop_rate"])]
                         for s, per in cons["per_source"].items() for role, v in per.items()]))
    parts += ["", "Drop reasons: " + (", ".join(f"{r['source']}/{r['role']}: {r['reason']} {r['count']}"
                                                  for r in cons["reasons"]) or "none"),
              "", "Teacher statuses: " + (", ".join(f"{t['role']} {t['status']} {t['count']}"
                                                   for t in cons["teacher_status"]) or "none")]
    ratio = data["ratio"]
    parts += ["", "## Mix", "",
              f"- critique+verdict pairs: {ratio['critique']}, verdict-only: {ratio['verdict']} "
              f"(critique share {_pct(ratio['critique_share'])}; configured {cfg['mix']['critique_ratio']})",
              f"- pairwise rows in swapped order: {data['swapped']}",
              f"- per task: {data['per_task']}",
              f"- chosen labels: {data['per_chosen_label']}",
              f"- prompt+answer tokens (longer side): {data['length_tokens']['prompt_plus_answer_max_side']} "
              f"(limit {data['length_tokens']['limit']}); dropped at export for length: {data['final_too_long']}",
              f"- source rows logged as errors (not dropped silently): {data['row_errors']}",
              f"- unavailable sources: {data['unavailable_sources'] or 'none'}",
              f"- reward-model filter drops: {data['reward_model_dropped'] or 'filter off'}",
              "", "## Decontamination", "",
              f"Word {cfg['decontam']['n']}-gram overlap >= {cfg['decontam']['threshold']} of an instruction or "
              "response against every benchmark that loads.", ""]
    removed = data["decontamination"]["removed"]
    parts.append(_table(["benchmark", "removed", "from sources"],
                        [[b, sum(v.values()), ", ".join(f"{s} {n}" for s, n in sorted(v.items()))]
                         for b, v in sorted(removed.items())]) if removed else "Nothing removed.")
    parts += ["", "Benchmarks indexed: " + ", ".join(data["decontamination"]["benchmarks_indexed"]),
              "", "Benchmarks not loadable here (not checked): "
              + (", ".join(sorted(data["decontamination"]["benchmarks_unavailable"])) or "none"),
              "", "## Examples", ""]
    for example in data["examples"]:
        parts += [f"### {example['source']} / {example['task']} / {example['kind']} (id `{example['id']}`)", "",
                  "Prompt (user turn):", "", "```", example["prompt"][0]["content"], "```", "",
                  "Chosen:", "", "```", example["chosen"][0]["content"], "```", "",
                  "Rejected:", "", "```", example["rejected"][0]["content"], "```", ""]
    return "\n".join(parts) + "\n"


def write(report, output: Path) -> dict[str, Any]:
    data = card_data(report)
    layout = CurateOutput(output)
    layout.card_json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    layout.card_md.write_text(markdown(data), encoding="utf-8")
    return data
