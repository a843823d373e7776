"""Cut the benchmark fixtures in tests/fixtures/bench/local/ from the full benchmark data.

Every registered benchmark is loaded from the data root while the files it opens are recorded; each file is
then copied to the fixture root under the same relative path, cut to a few rows spread over the file (the
first, the last and evenly between), in its own format: JSON Lines (also gzipped), a JSON list, a JSON object
whose ``instances`` (or every list value) is cut, or CSV. LFQA-Verification's answers are kept for the
questions whose evidence documents are kept, as the loader joins them.

    python scripts/cut_bench_fixtures.py ../shared/data/benchmarks tests/fixtures/bench/local

It prints one line per file (rows kept of rows in the full file); tests/fixtures/bench/local/SOURCE.md
records provenance and licences.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

ROWS = 4
LFQA_QUESTIONS = 2


def spread(items: list[Any], n: int = ROWS) -> list[Any]:
    """n items spread over the list, first and last included, in order."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def cut_json(data: Any) -> Any:
    if isinstance(data, list):
        return spread(data)
    if isinstance(data, dict) and isinstance(data.get("instances"), list):
        return data | {"instances": spread(data["instances"])}
    if isinstance(data, dict):
        return {key: spread(value, 2) if isinstance(value, list) else value for key, value in data.items()}
    return data


def cut_file(source: Path, target: Path) -> str:
    """Write the cut copy of `source` to `target`; returns 'kept of total'."""
    target.parent.mkdir(parents=True, exist_ok=True)
    name = source.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(source, "rt", encoding="utf-8") as handle:
            lines = [line for line in handle if line.strip()]
        kept = spread(lines)
        data = "".join(kept).encode("utf-8")
        target.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        return f"{len(kept)} of {len(lines)} lines"
    if name.endswith(".json"):
        data = json.loads(source.read_text(encoding="utf-8"))
        cut = cut_json(data)
        target.write_text(json.dumps(cut, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return f"{_count(cut)} of {_count(data)} items"
    if name.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(source.read_text(encoding="utf-8"), newline="")))
        kept = [rows[0], *spread(rows[1:])]
        with target.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(kept)
        return f"{len(kept) - 1} of {len(rows) - 1} rows"
    raise ValueError(f"{source}: no rule to cut this format")


def _count(data: Any) -> int:
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict) and isinstance(data.get("instances"), list):
        return len(data["instances"])
    return sum(len(v) for v in data.values() if isinstance(v, list)) if isinstance(data, dict) else 1


def cut_lfqa(root: Path, out: Path, files: list[str]) -> None:
    """LFQA-Verification: the same few questions in the documents and in every system's answers."""
    docs_path = "lfqa-verification/data/docs/docs-webgpt.json"
    answers = {f: json.loads((root / f).read_text(encoding="utf-8")) for f in files if f != docs_path}
    docs = json.loads((root / docs_path).read_text(encoding="utf-8"))
    everywhere = set.intersection(*({item["question_id"] for item in items} for items in answers.values()))
    questions = set(spread(sorted(i["question_id"] for i in docs if i["question_id"] in everywhere),
                           LFQA_QUESTIONS))
    for path, data in [(docs_path, docs), *answers.items()]:
        kept = [item for item in data if item["question_id"] in questions]
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(json.dumps(kept, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{path}: {len(kept)} of {len(data)} items")


def files_read(root: Path) -> dict[str, list[str]]:
    """Benchmark name -> the data files its loader opens under `root`."""
    from gavel.bench import registry

    opened: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str | os.PathLike) and str(args[0]).startswith(str(root)):
            opened.append(os.path.relpath(args[0], root))

    sys.addaudithook(hook)
    found = {}
    for name, bench in sorted(registry.all_benchmarks().items()):
        opened.clear()
        try:
            bench.load_data(registry.LoadContext(root))
        except registry.BenchmarkUnavailable:
            continue
        found[name] = sorted(set(opened))
    return found


def main(root: Path, out: Path) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    files = sorted({f for paths in files_read(root.resolve()).values() for f in paths})
    lfqa = [f for f in files if f.startswith("lfqa-verification/")]
    for path in files:
        if path not in lfqa:
            print(f"{path}: {cut_file(root / path, out / path)}")
    cut_lfqa(root, out, lfqa)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
