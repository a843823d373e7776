"""Running the app under uvicorn with a graceful stop.

SIGTERM (or Ctrl-C): uvicorn stops accepting connections; the queue stops taking jobs (a request still
arriving on an open connection gets 503); what was accepted runs until the grace period ends, then what is
still queued is answered 503; the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import uvicorn

from gavel.serve.app import create_app
from gavel.serve.service import JudgeService

#: Seconds uvicorn allows, after the grace period, for the last answers (503s included) to be written.
_WRITE_MARGIN_S = 5.0


class _GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: JudgeService) -> None:
        super().__init__(config)
        self.service = service

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain = asyncio.ensure_future(asyncio.to_thread(self.service.batcher.close, self.service.config.grace_s))
        await super().shutdown(sockets)
        await drain


def run(service: JudgeService, log_level: str = "info") -> None:
    """Serve until SIGTERM or Ctrl-C; returns normally (exit 0) after the graceful stop."""
    config = service.config
    app = create_app(service)
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                               timeout_graceful_shutdown=int(config.grace_s + _WRITE_MARGIN_S),
                               server_header=False, proxy_headers=False)
    server = _GracefulServer(uv_config, service)
    # uvicorn re-raises the signal that stopped it once it is done; a no-op handler makes that a normal exit
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.close()
