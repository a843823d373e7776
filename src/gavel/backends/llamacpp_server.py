"""``python -m gavel.backends.llamacpp_server ARGS``: llama.cpp's OpenAI-compatible server (``python -m
llama_cpp.server ARGS``) with the weights in plain buffers, so it also runs on CPUs where llama.cpp's repacked
(AMX) weight buffers crash; see `gavel.backends.llamacpp.plain_weight_buffers`."""

import runpy

from gavel.backends.llamacpp import plain_weight_buffers

if __name__ == "__main__":
    with plain_weight_buffers():
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
