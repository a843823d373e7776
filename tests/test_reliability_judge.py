"""Issue 17, the judge's cases: a bad LoRA adapter (1), the model's identity by content (6), edited items
judged again (7), the default judge's single-order pairwise verdicts (12).

Real files throughout: the committed adapter and the embedded base, adapters and bases written with the
`gguf` package, the real embedded model through llama.cpp where a case judges. docs/reliability.md lists
the cases and the behaviour.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line

from gavel.backends import parse_spec
from gavel.backends.base import Backend, BackendInfo, Reply
from gavel.backends.embedded import embedded_gguf, judge_adapter
from gavel.backends.identity import model_identity
from gavel.backends.lora import AdapterMismatch, check_adapter
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord, read_rows
from gavel.judge.runner import run_records, settings_path

PAIRS = [
    {"id": f"p{i}", "task": "pairwise", "instruction": question, "response_a": a, "response_b": b, "label": label}
    for i, (question, a, b, label) in enumerate([
        ("What is the capital of France?", "Paris.", "Lyon is the capital of France.", "A"),
        ("Name a prime number.", "Nine is prime.", "Seven.", "B"),
        ("How many legs does a spider have?", "Eight.", "Six legs.", "A"),
        ("Translate 'gato' from Spanish.", "Dog.", "Cat.", "B"),
    ], start=1)
]




def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _retrain(adapter: Path) -> None:
    """Change an adapter's weights in place, as a retraining would: same path, size and modification time."""
    from gguf import GGUFReader

    stat = adapter.stat()
    tensor = next(t for t in GGUFReader(adapter, "r+").tensors if t.name.endswith(".lora_b"))
    tensor.data[...] = tensor.data * 1.5
    del tensor
    os.utime(adapter, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert adapter.stat().st_size == stat.st_size and adapter.stat().st_mtime_ns == stat.st_mtime_ns


def _gguf(path: Path, shapes: dict[str, tuple[int, ...]], **fields: str) -> Path:
    """A GGUF file of zero tensors (llama architecture) with these shapes (GGUF order) and string fields."""
    from gguf import GGUFWriter

    writer = GGUFWriter(path, "llama")
    for key, value in fields.items():
        writer.add_string(key, value)
    for name, shape in shapes.items():
        writer.add_tensor(name, np.zeros(shape[::-1], dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _adapter_targets() -> list[str]:
    from gguf import GGUFReader

    return sorted({t.name.rsplit(".lora_", 1)[0] for t in GGUFReader(judge_adapter()).tensors})


# -- 1. a bad or mismatched adapter is refused before llama.cpp sees it ------------------------------


def test_1_the_shipped_adapter_fits_its_base():
    check_adapter(embedded_gguf(), judge_adapter())


def test_1_adapters_that_do_not_fit_are_refused_naming_why(tmp_path):
    targets = _adapter_targets()
    other_base = _gguf(tmp_path / "other-base.gguf", {name: (64, 64) for name in targets})
    with pytest.raises(AdapterMismatch, match=rf"does not fit .*other-base.gguf: {targets[0]} is 64x64"):
        check_adapter(other_base, judge_adapter())
    model = _gguf(tmp_path / "model.gguf", {"blk.0.attn_q.weight": (8, 8)})
    with pytest.raises(AdapterMismatch, match=r"not a LoRA adapter .*general\.type None"):
        check_adapter(embedded_gguf(), model)
    half = _gguf(tmp_path / "half.gguf", {"blk.0.attn_q.weight.lora_a": (576, 8)}, **{
        "general.type": "adapter", "adapter.type": "lora"})
    with pytest.raises(AdapterMismatch, match=r"blk\.0\.attn_q\.weight has \.lora_a without \.lora_b"):
        check_adapter(embedded_gguf(), half)
    unknown = _gguf(tmp_path / "unknown.gguf", {"blk.99.attn_q.weight.lora_a": (576, 8),
                                                "blk.99.attn_q.weight.lora_b": (8, 576)},
                    **{"general.type": "adapter", "adapter.type": "lora"})
    with pytest.raises(AdapterMismatch, match=r"the base has no tensor blk\.99\.attn_q\.weight"):
        check_adapter(embedded_gguf(), unknown)


def test_1_cli_refuses_a_bad_adapter_in_one_line_and_leaves_no_files(tmp_path, gavel):
    """A text file, an adapter for another base, a model given as adapter: exit 2, nothing written."""
    records = _write(tmp_path / "one.jsonl", PAIRS[:1])
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a GGUF file\n")
    other_base = _gguf(tmp_path / "other-base.gguf", {name: (64, 64) for name in _adapter_targets()})
    cases = [(f"smollm2+{fake}", "fake.gguf is not a GGUF adapter file"),
             (f"{other_base}+{judge_adapter()}", "does not fit"),
             (f"smollm2+{other_base}", "is a GGUF file but not a LoRA adapter")]
    for spec, message in cases:
        out = tmp_path / "out.jsonl"
        result = gavel("judge", records, "-m", spec, "-o", out, "--mode", "verdict", "-q")
        assert result.exit_code == 2, result.output
        assert message in one_error_line(result.output)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf", "one.jsonl", "other-base.gguf"]


def test_1_server_specs_with_a_bad_url_or_local_only_options_are_usage_errors(tmp_path, gavel, monkeypatch):
    """A port that is not a number, a scheme that is not http(s), --batch or --threads for a server: exit 2,
    one line, before any model or connection."""
    import gavel.backends as backends

    monkeypatch.setattr(backends, "_build_backend", lambda *a: pytest.fail("nothing may be loaded"))
    records = _write(tmp_path / "one.jsonl", PAIRS[:1])
    cases = [(("-m", "gavel+http://nope:abc"), "'http://nope:abc' is not a valid URL"),
             (("-m", "openai:x@http://nope:99999/v1"), "is not a valid URL (Port out of range"),
             (("-m", "http://127.0.0.1:8/v1#m", "--batch", "4"), "--batch applies to local models"),
             (("-m", "openai:x@ftp://host/v1"), "is not an http(s) URL with a host"),
             (("-m", "gavel+http://127.0.0.1:8", "--threads", "1"), "--threads applies to llama.cpp models")]
    for args, message in cases:
        result = gavel("judge", records, *args, "-o", tmp_path / "out.jsonl", "-q")
        assert result.exit_code == 2, result.output
        assert message in one_error_line(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl"]


class _Failing(Backend):
    """Every request fails (a backend error): the run judges nothing."""

    def __init__(self) -> None:
        self.info = BackendInfo(name="failing", kind="fake")

    def run(self, requests):
        return [Reply(error="backend down") for _ in requests]


def test_1_a_run_that_judges_nothing_leaves_no_output(tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run_records(Judge(_Failing()), read_rows(_write(tmp_path / "in.jsonl", PAIRS)), out)
    assert summary.judged == 0 and summary.failed == len(PAIRS)
    assert not out.exists() and not settings_path(out).exists()


# -- 6. a model is its base and adapter by content ----------------------------------------------------


def test_6_identity_is_base_and_adapter_by_content(tmp_path):
    default = model_identity(None)
    assert default == model_identity("default") == model_identity(parse_spec(f"smollm2+{judge_adapter()}"))
    assert default.base.path == str(embedded_gguf().resolve()) and default.adapter.path == str(judge_adapter())
    assert len(default.base.sha256) == 64 and default.base.size == embedded_gguf().stat().st_size
    assert default.key != model_identity("smollm2").key
    copy = shutil.copy(judge_adapter(), tmp_path / "a.gguf")
    copied = model_identity(f"smollm2+{copy}")
    assert copied.key == default.key and copied.adapter.path != default.adapter.path  # same content, same model
    _retrain(Path(copy))
    retrained = model_identity(f"smollm2+{copy}")
    assert retrained.key != copied.key
    assert retrained.changes(copied) == [f"adapter: {copied.adapter} then, {retrained.adapter} now"]
    server = model_identity("openai:selene@http://127.0.0.1:8080/v1/")
    assert server.key == "openai:http://127.0.0.1:8080/v1:selene" and server.base is None
    assert model_identity("hf:smollm2").base == default.base and model_identity("hf:smollm2").key != default.key


@pytest.mark.model
def test_6_resume_with_another_adapter_is_refused_naming_it(tmp_path, gavel):
    a = Path(shutil.copy(judge_adapter(), tmp_path / "a.gguf"))
    b = Path(shutil.copy(judge_adapter(), tmp_path / "b.gguf"))
    _retrain(b)
    out = tmp_path / "out.jsonl"
    first = gavel("judge", _write(tmp_path / "in.jsonl", PAIRS[:1]), "-m", f"smollm2+{a}", "-o", out,
                  "--mode", "verdict", "-q")
    assert first.exit_code == 0, first.output
    stored = json.loads(settings_path(out).read_text())["settings"]["model_identity"]
    assert stored["adapter"]["path"] == str(a) and stored["base"]["path"] == str(embedded_gguf().resolve())
    before = out.read_bytes()
    records = _write(tmp_path / "in.jsonl", PAIRS[:2])
    other = gavel("judge", records, "-m", f"smollm2+{b}", "-o", out, "--mode", "verdict", "-q")
    assert other.exit_code == 2
    line = one_error_line(other.output)
    assert f"adapter: {a} (sha256" in line and f"{b} (sha256" in line
    _retrain(a)  # retrained in place: same path, size and mtime
    again = gavel("judge", records, "-m", f"smollm2+{a}", "-o", out, "--mode", "verdict", "-q")
    assert again.exit_code == 2 and f"adapter: {a} (sha256" in one_error_line(again.output)
    assert out.read_bytes() == before
    forced = gavel("judge", records, "-m", f"smollm2+{a}", "-o", out, "--mode", "verdict", "-q", "--force")
    assert forced.exit_code == 0 and [row["id"] for row in _lines(out)] == ["p1", "p2"]


@pytest.mark.model
def test_6_bench_item_files_keep_the_identity_and_refuse_a_retrained_adapter(tmp_path, gavel):
    a = Path(shutil.copy(judge_adapter(), tmp_path / "a.gguf"))
    data = _write(tmp_path / "pairs.jsonl", PAIRS[:2])
    args = ("bench", "--data", data, "-j", f"smollm2+{a}", "-o", tmp_path / "bench", "--mode", "verdict")
    assert gavel(*args).exit_code == 0
    (item_file,) = (tmp_path / "bench" / "items").rglob("default.jsonl")
    assert json.loads(settings_path(item_file).read_text())["settings"]["model_identity"]["adapter"]["path"] == str(a)
    _retrain(a)
    rerun = gavel(*args)
    assert rerun.exit_code == 2 and "adapter:" in one_error_line(rerun.output)


# -- 7. an item edited under the same id is judged again -------------------------------------------


class _Counting(Backend):
    """Answers A with p 0.8 and counts the requests (control flow only)."""

    def __init__(self) -> None:
        self.info = BackendInfo(name="counting", kind="fake")
        self.calls = 0

    def run(self, requests):
        self.calls += len(requests)
        return [Reply(label_probs={label: 0.8 if label == r.labels[0] else 0.2 for label in r.labels})
                for r in requests]


def test_7_content_hash_covers_what_the_judge_sees_only():
    record = JudgeRecord.model_validate(PAIRS[0])
    same = JudgeRecord.model_validate({**PAIRS[0], "label": "B", "source": "elsewhere"})
    edited = JudgeRecord.model_validate({**PAIRS[0], "response_b": "Marseille."})
    assert record.content_hash == same.content_hash != edited.content_hash


def test_7_resume_judges_edited_rows_again_and_keeps_the_rest(tmp_path):
    backend, out = _Counting(), tmp_path / "out.jsonl"
    source = _write(tmp_path / "in.jsonl", PAIRS)
    run_records(Judge(backend, mode="verdict"), read_rows(source), out)
    before = {row["id"]: line for row, line in zip(_lines(out), out.read_text().splitlines(), strict=True)}
    edited = [dict(row) for row in PAIRS]
    edited[1] |= {"response_a": "Eleven is prime.", "label": "A"}  # responses and label changed, id kept
    edited[2] |= {"label": "B"}  # only the gold changed: the verdict still holds
    summary = run_records(Judge(backend, mode="verdict"), read_rows(_write(source, edited)), out)
    assert (summary.rejudged, summary.judged, summary.skipped, backend.calls) == (1, 1, 3, len(PAIRS) + 1)
    after = _lines(out)
    assert [row["id"] for row in after] == ["p1", "p3", "p4", "p2"]  # one line per id
    assert {row["id"]: row["input_hash"] for row in after} == {
        row["id"]: JudgeRecord.model_validate(row).content_hash for row in edited}
    kept = dict(zip([row["id"] for row in after], out.read_text().splitlines(), strict=True))
    assert all(kept[i] == before[i] for i in ("p1", "p3", "p4"))
    assert next(row for row in after if row["id"] == "p2")["response_a"] == "Eleven is prime."


@pytest.mark.model
def test_7_bench_rerun_judges_an_edited_item_again(tmp_path, gavel):
    data = _write(tmp_path / "pairs.jsonl", PAIRS)
    args = ("bench", "--data", data, "-j", "smollm2", "-o", tmp_path / "bench", "--mode", "verdict")
    assert gavel(*args).exit_code == 0
    (item_file,) = (tmp_path / "bench" / "items").rglob("default.jsonl")
    first = {row["id"]: row for row in _lines(item_file)}
    edited = [dict(row) for row in PAIRS]
    edited[0] |= {"response_a": edited[0]["response_b"], "response_b": edited[0]["response_a"], "label": "B"}
    _write(data, edited)
    assert gavel(*args).exit_code == 0
    second = {row["id"]: row for row in _lines(item_file)}
    assert len(_lines(item_file)) == len(PAIRS)
    assert second["p1"]["input_hash"] == JudgeRecord.model_validate(edited[0]).content_hash != first["p1"]["input_hash"]
    assert second["p1"]["probabilities"] != first["p1"]["probabilities"]  # judged on the swapped pair
    assert all(second[i] == first[i] for i in ("p2", "p3", "p4"))
    results = json.loads((tmp_path / "bench" / "results.json").read_text())
    summary = results["benchmarks"]["pairs"]["judges"]["smollm2"]
    correct = sum(row["result"] == row["label"] for row in second.values())
    assert summary["n"] == len(PAIRS) and summary["value"] == pytest.approx(correct / len(PAIRS))


# -- 12. the default judge's pairwise verdicts need both orders ----------------------------------


@pytest.mark.model
def test_12_default_judge_single_order_pairwise_answers_a_and_warns_once(tmp_path, gavel, caplog):
    """What the model card says: single-order verdicts of the shipped judge are A; gavel says so once."""

    def warnings() -> int:
        count = sum("judge both orders (--both-orders)" in r.getMessage() for r in caplog.records)
        caplog.clear()
        return count

    source = _write(tmp_path / "pairs.jsonl", PAIRS)
    swapped = _write(tmp_path / "swapped.jsonl", [
        row | {"response_a": row["response_b"], "response_b": row["response_a"]} for row in PAIRS])
    for path in (source, swapped):
        out = tmp_path / f"{path.stem}.judged.jsonl"
        result = gavel("judge", path, "-o", out, "--mode", "verdict", "-q")
        assert result.exit_code == 0, result.output
        assert warnings() == 1
        assert [row["result"] for row in _lines(out)] == ["A"] * len(PAIRS)
    both = gavel("judge", source, "-o", tmp_path / "both.jsonl", "--mode", "verdict", "--both-orders", "-q")
    base = gavel("judge", source, "-m", "smollm2", "-o", tmp_path / "base.jsonl", "--mode", "verdict", "-q")
    assert both.exit_code == base.exit_code == 0
    assert warnings() == 0


@pytest.mark.model
def test_6_an_empty_spec_is_the_default_judge_by_name_and_an_adapter_is_named(tmp_path, gavel):
    """`-m ""` (an unset variable) is the default judge under its own name, so resuming with `-m default` works;
    a base + adapter spec names both files."""
    from gavel.backends import load_backend

    records = _write(tmp_path / "in.jsonl", PAIRS[:1])
    out = tmp_path / "out.jsonl"
    assert gavel("judge", records, "-m", "", "-o", out, "--mode", "verdict", "-q").exit_code == 0
    assert _lines(out)[0]["model"].startswith("gavel-judge-135m")
    again = gavel("judge", records, "-m", " default", "-o", out, "--mode", "verdict")
    assert again.exit_code == 0 and "already done (skipped)" in again.output and len(_lines(out)) == 1
    copy = shutil.copy(judge_adapter(), tmp_path / "mine.gguf")
    with load_backend(f"smollm2+{copy}", n_threads=1) as backend:
        assert backend.info.name == f"{embedded_gguf().name} + mine.gguf"
