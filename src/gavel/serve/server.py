"""Running the app under uvicorn with a graceful stop.

SIGTERM (or Ctrl-C): uvicorn stops accepting connections; the queue stops taking jobs (a request still
arriving on an open connection gets 503); what was accepted runs until the grace period ends, then what is
still queued is answered 503; the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

import uvicorn

from gavel.serve.app import create_app
from gavel.serve.config import ServeConfig
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


def listen(config: ServeConfig) -> socket.socket:
    """The server's socket, bound before the model loads: a taken port or an unknown host is a ValueError."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"--host {config.host} --port {config.port}: cannot listen there "
                         f"({exc.strerror or exc})") from None
    return sock


def run(service: JudgeService, sock: socket.socket | None = None) -> None:
    """Serve on `sock` (default: bind the config's host and port) until SIGTERM or Ctrl-C; returns normally
    (exit 0) after the graceful stop."""
    config = service.config
    sock = sock or listen(config)
    app = create_app(service)
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_level=config.log_level,
                               timeout_graceful_shutdown=int(config.grace_s + _WRITE_MARGIN_S),
                               server_header=False, proxy_headers=False)
    server = _GracefulServer(uv_config, service)
    # uvicorn re-raises the signal that stopped it once it is done; a no-op handler makes that a normal exit
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        host, port = sock.getsockname()[:2]
        logging.getLogger("uvicorn.error").info("gavel serve on http://%s:%d (SIGTERM or Ctrl-C stops it)",
                                                f"[{host}]" if ":" in host else host, port)
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.close()
