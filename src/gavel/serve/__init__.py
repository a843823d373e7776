"""``gavel serve``: one loaded judge shared by many clients over HTTP (FastAPI + uvicorn).

Endpoints: ``POST /v1/judge`` (records in, results out), ``POST /get_reward`` (OpenRLHF's remote reward
model), ``POST /v1/generate`` (rendered requests in, replies out: what the ``gavel+http://`` model spec
speaks), ``GET /healthz``, ``GET /v1/models``, ``GET /metrics`` (Prometheus), ``/docs`` (OpenAPI).
Needs the ``serve`` extra: ``pip install 'gavel[serve]'``.
"""

from __future__ import annotations

from gavel.serve.config import API_KEY_ENV, Limits, ServeConfig

__all__ = ["API_KEY_ENV", "Limits", "ServeConfig"]
