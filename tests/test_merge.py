"""The default judge as one merged file (``default@FORMAT``): spec, identity by content, built once, and its
results against the adapter applied at every pass (batched critiques on it: tests/test_batched_llamacpp.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gavel.backends import load_backend, parse_spec
from gavel.backends.merge import merged_path
from gavel.judge.engine import Judge
from gavel.judge.records import JudgeRecord

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.jsonl"


def test_merged_spec_forms() -> None:
    merged = parse_spec("default@q8_0")
    assert merged.kind == "llama.cpp" and merged.options["merge"] == "q8_0" and "lora_path" in merged.options
    assert parse_spec("openai:judge@http://127.0.0.1:9/v1").base_url == "http://127.0.0.1:9/v1"  # not a format
    with pytest.raises(ValueError, match="has none"):
        parse_spec("smollm2@f16")
    with pytest.raises(ValueError, match="unknown merged format 'q5_k'"):
        parse_spec("default@q5_k")


def test_merged_file_is_named_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAVEL_CACHE", str(tmp_path / "cache"))
    base, adapter, copy = tmp_path / "base.gguf", tmp_path / "a.gguf", tmp_path / "copy" / "a.gguf"
    base.write_bytes(b"base weights")
    adapter.write_bytes(b"adapter v1")
    copy.parent.mkdir()
    copy.write_bytes(b"adapter v1")
    first = merged_path(base, adapter, "q8_0")
    assert merged_path(base, copy, "q8_0") == first  # the same content elsewhere: the same file
    assert merged_path(base, adapter, "f16") != first
    adapter.write_bytes(b"adapter v2")  # retrained at the same path: another file
    assert merged_path(base, adapter, "q8_0") != first


@pytest.fixture(scope="module")
def records() -> list[JudgeRecord]:
    return [JudgeRecord.model_validate(json.loads(line)) for line in QUICKSTART.read_text().splitlines()]


@pytest.fixture(scope="module")
def merged_cache(tmp_path_factory: pytest.TempPathFactory):
    """A cache folder of this module's own, so the build happens here, once."""
    before = os.environ.get("GAVEL_CACHE")
    os.environ["GAVEL_CACHE"] = str(tmp_path_factory.mktemp("gavel-cache"))
    yield Path(os.environ["GAVEL_CACHE"])
    if before is None:
        os.environ.pop("GAVEL_CACHE")
    else:
        os.environ["GAVEL_CACHE"] = before


@pytest.mark.model
def test_default_at_q8_0_is_built_once_and_stays_close_to_the_default(merged_cache: Path, records) -> None:
    merged = load_backend("default@q8_0", n_threads=1)
    try:
        built = list((merged_cache / "merged").glob("*.q8_0.gguf"))
        assert len(built) == 1 and not list((merged_cache / "merged").glob(".merge-*"))  # no staging left
        stamp = built[0].stat().st_mtime_ns
        assert Path(merged.llm.model_path) == built[0]  # llama.cpp loaded the merged file, no adapter beside it
        assert merged.info.identity.merged == "q8_0" and merged.info.identity.key.endswith(":merged:q8_0")
        fast = Judge(merged, mode="verdict").judge(records)
    finally:
        merged.close()
    load_backend("default@q8_0", n_threads=1, batch_size=1).close()
    assert built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
    default = load_backend(None, n_threads=1)
    try:
        assert default.info.identity.key != merged.info.identity.key
        today = Judge(default, mode="verdict").judge(records)
    finally:
        default.close()
    gaps = [abs(a.probabilities[k] - b.probabilities[k]) for a, b in zip(today, fast, strict=True)
            for k in a.probabilities]
    assert 0 < max(gaps) < 0.05  # measured: at most 0.026 over 98 fixture records (docs/performance.md)
