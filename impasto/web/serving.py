"""Running the studio under uvicorn: connections that cannot pile up, and a shutdown in order.

- **Idle and slow connections are closed**: a connection must send a whole request header within
  ``header_seconds`` of opening (or of its previous answer); uvicorn's keep-alive timeout closes it
  between requests; a request's body has ``upload_seconds`` (server.py, 408).
- **At most** ``max_connections`` **connections at once**, lowered to fit the process's open-file
  limit with room to spare for the jobs' own files (:data:`FD_RESERVE`) and for a burst of accepts
  (asyncio accepts up to :data:`BACKLOG` connections before the first is seen): one more is
  answered 503 and closed at once. A flood is logged once (and a line a minute while it lasts), not per accept;
  so is the accept loop's "Too many open files", should the limit be reached all the same.
- **Shutdown in order** (Ctrl-C, SIGTERM): stop accepting; tell the job manager, which wakes every
  event stream to send its job's state and a ``stopping`` event and end; then uvicorn's own shutdown
  finds no stream left to wait for, and the app's lifespan closes the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["FD_RESERVE", "connection_cap", "run"]

log = logging.getLogger("impasto.web")

FD_RESERVE = 64  # open files kept free for the jobs (images, weights, results), the database and logs
MIN_CONNECTIONS = 8
BACKLOG = 128  # connections the kernel holds before accept: enough for a burst, not a queue for ever
FLOOD_LOG_SECONDS = 60.0
_BODY = b'{"detail":"the studio has too many open connections: try again in a moment"}'
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"retry-after: 5\r\ncontent-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered so that the connections, and a burst of accepts on top, leave
    :data:`FD_RESERVE` files of the process's limit free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(MIN_CONNECTIONS, min(wanted, soft - FD_RESERVE - BACKLOG))


class _Once:
    """A warning logged once, then at most once every FLOOD_LOG_SECONDS with a count of what it skipped."""

    def __init__(self) -> None:
        self.last = -FLOOD_LOG_SECONDS
        self.skipped = 0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < FLOOD_LOG_SECONDS:
            self.skipped += 1
            return
        more = f" ({self.skipped} more since the last report)" if self.skipped else ""
        log.warning(message + more, *args)
        self.last, self.skipped = now, 0


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a cap on connections and a deadline for each request header."""

    max_connections = 256  # set by run()
    header_seconds = 10.0
    refused = _Once()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.time() + self.header_seconds
        if len(self.connections) > self.max_connections:
            self.refused.warn("%d connections open, the most allowed: new ones are answered 503", self.max_connections)
            transport.write(BUSY)
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        """Close the connection at the header's deadline unless a whole header has come by then."""
        self._unset_keepalive_if_required()
        delay = max(0.0, self._deadline - self.loop.time())
        self.timeout_keep_alive_task = self.loop.call_later(delay, self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # cancels the timer; a whole header starts the request's cycle
        if self._waiting() and not self.transport.is_closing():
            self._arm()  # the same deadline: a byte at a time does not buy more time

    def _waiting(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def on_response_complete(self) -> None:
        self._deadline = self.loop.time() + self.header_seconds  # for the next request on this connection
        super().on_response_complete()  # uvicorn's keep-alive timer, sooner than the deadline


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """The accept loop's out-of-files errors as one warning a minute, without their traceback."""
    once = _Once()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRORS:
            once.warn("cannot accept connections: %s", exc.strerror or exc)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class _Server(uvicorn.Server):
    """uvicorn's server, which tells the studio it is stopping before it waits for open requests."""

    def __init__(self, config: uvicorn.Config, on_stopping: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stopping = on_stopping

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        _quiet_accept_errors(asyncio.get_running_loop())
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting first (uvicorn does it again: harmless)
        self.on_stopping()  # every event stream sends its last event and ends
        await super().shutdown(sockets)


def run(app: Any, host: str, port: int, *, max_connections: int, header_seconds: float,
        on_stopping: Callable[[], None], log_config: dict[str, Any]) -> None:  # fmt: skip
    """Serve ``app`` until Ctrl-C or SIGTERM (blocking)."""
    cap = connection_cap(max_connections)
    if cap < max_connections:
        log.info(
            "at most %d connections (the open-file limit is %d)", cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        )
    protocol = type("StudioProtocol", (_Protocol,), {"max_connections": cap, "header_seconds": header_seconds})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        backlog=BACKLOG,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=3,  # a request still running by then is cancelled (streams end at once)
        log_config=log_config,
    )
    server = _Server(config, on_stopping)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the signal it caught again once stopped
        server.run()
    if not server.started:  # as uvicorn.run: it could not start (the port is taken, mostly; it logged why)
        raise SystemExit(STARTUP_FAILURE)
