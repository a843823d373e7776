"""What ``gavel serve`` is started with: where it listens, its key, its limits and its batching."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from gavel.backends.gavel_http import API_KEY_ENV


class Limits(BaseModel):
    """Limits on what one request may ask; anything over is refused (413 or 422 naming the field)."""

    max_body_bytes: int = Field(1_000_000, ge=1)
    max_records: int = Field(64, ge=1, description="records (or queries, or backend requests) per request")
    max_field_chars: int = Field(20_000, ge=1, description="characters in one text field of a record")
    max_prompt_chars: int = Field(100_000, ge=1, description="characters in one rendered message (/v1/generate)")
    max_new_tokens: int = Field(1024, ge=1)
    max_retries: int = Field(2, ge=0)


class ServeConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535, description="0: any free port")
    api_key: SecretStr | None = None
    insecure: bool = False
    limits: Limits = Field(default_factory=Limits)
    max_batch: int = Field(16, ge=1, description="items handed to the model at once")
    max_wait_s: float = Field(0.01, ge=0.0, description="how long the first item of a batch waits for company")
    max_queue: int = Field(256, ge=1, description="items waiting for the model; more are refused with 503")
    timeout_s: float = Field(300.0, gt=0.0, description="per request; a request waiting longer gets 504")
    grace_s: float = Field(30.0, ge=0.0, description="after SIGTERM, time to finish what was accepted")
    log_level: str = Field("info", description="uvicorn's log level")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        from uvicorn.config import LOG_LEVELS

        if level.lower() not in LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(LOG_LEVELS)}")
        return level.lower()

    def check_exposure(self) -> None:
        """Refuse to listen beyond loopback without a key (unless ``insecure``): ValueError, one line."""
        if self.api_key is None and not self.insecure and not is_loopback(self.host):
            raise ValueError(f"--host {self.host} is reachable from other machines: set an API key "
                             f"(${API_KEY_ENV} or --api-key-file), or pass --insecure to serve without one")


#: The `gavel serve` option that sets each field, for one-line errors naming the option.
SERVE_OPTIONS = {"host": "--host", "port": "--port", "log_level": "--log-level", "max_batch": "--max-batch",
                 "max_wait_s": "--max-wait-ms (in seconds)", "max_queue": "--max-queue", "timeout_s": "--timeout",
                 "grace_s": "--grace", "limits.max_body_bytes": "--max-body-bytes",
                 "limits.max_records": "--max-records", "limits.max_field_chars": "--max-field-chars"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_api_key(key_file: Path | None) -> SecretStr | None:
    """The key from ``--api-key-file`` (first line) or else ``$GAVEL_API_KEY``; None when neither is set."""
    if key_file is not None:
        key = key_file.read_text(encoding="utf-8").strip()
        if not key:
            raise ValueError(f"{key_file}: the API key file is empty")
        return SecretStr(key)
    key = os.environ.get(API_KEY_ENV, "").strip()
    return SecretStr(key) if key else None


def public_limits(config: ServeConfig) -> dict[str, Any]:
    """What a client may ask, as ``GET /v1/models`` reports it."""
    return {**config.limits.model_dump(), "max_queue": config.max_queue, "timeout_s": config.timeout_s}
