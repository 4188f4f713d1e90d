"""The studio's app factory and ``serve``: the API, the static page, error handling and guards.

Binds 127.0.0.1 by default; then only requests naming a loopback Host are served (a guard
against DNS rebinding), and any request that changes something must come from the studio's own
page or a non-browser client (the Origin header, when sent, must match the Host).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ..errors import ConfigError, DeviceError, ImpastoError, InputError
from .api import build_router
from .estimate import StepRate, estimate_router
from .fields import worded
from .jobs import Conflict, JobManager, QueueFull, Runner
from .media import StorageFull, TooLarge
from .settings import StudioSettings
from .submit import UnsupportedMedia

__all__ = ["LOOPBACK", "create_app", "serve"]

log = logging.getLogger("impasto.web")

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
JANITOR_SECONDS = 60.0
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Cache-Control": "no-cache",
}
_STATUS: tuple[tuple[type[ImpastoError], int], ...] = (
    (TooLarge, 413),
    (StorageFull, 507),
    (UnsupportedMedia, 415),
    (QueueFull, 429),
    (Conflict, 409),
    (ConfigError, 422),
    (DeviceError, 422),
    (InputError, 400),
)


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class _Guard:
    """Refuse foreign Host headers, cross-site writes and bodies that take longer than ``upload_seconds``
    to arrive (408: a slow client must not hold a request open for ever); add defensive headers to
    every answer."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: tuple[str, ...] | None, max_body: int, upload_seconds: float
    ) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}
        self.max_body = max_body  # the route's own limit answers in plain text: answer in JSON first
        self.upload_seconds = upload_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        hostname = (urlsplit(f"//{host}").hostname or "") if host else ""
        refusal = None
        if self.allowed is not None and hostname not in self.allowed:
            refusal = _error(400, f"unexpected Host header '{host[:60]}'")
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin is not None and urlsplit(origin).netloc != host:
            refusal = _error(403, f"cross-site request from '{origin[:60]}' refused")
        length = headers.get("content-length", "")
        if refusal is None and length.isdigit() and int(length) > self.max_body:
            refusal = _error(413, f"request over the limit of {self.max_body:,} bytes")
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        deadline = asyncio.get_running_loop().time() + self.upload_seconds
        body_done = False

        async def receive_in_time() -> Message:
            nonlocal body_done
            if body_done:  # later calls only wait for a disconnect (an event stream): no deadline
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.0))
            except asyncio.TimeoutError:
                raise StarletteHTTPException(
                    408, f"the request's body took longer than {self.upload_seconds:g} s to arrive"
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive_in_time, send_with_headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of the request's path answers (for a 405's Allow header)."""
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _install_handlers(app: FastAPI, settings: StudioSettings) -> None:
    @app.exception_handler(ImpastoError)
    async def impasto_error(request: Request, exc: ImpastoError) -> JSONResponse:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
        return _error(status, worded(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        headers = exc.headers
        if exc.status_code == 413:
            detail = f"request over the limit of {settings.max_request_bytes:,} bytes"
        if exc.status_code == 405:  # Starlette's Allow names one route's methods: name every route's of this path
            headers = {"Allow": ", ".join(_allowed_methods(request))}
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        log.info("%s %s: the client went away before its request arrived", request.method, request.url.path)
        return _error(400, "the client disconnected before the request's body arrived")  # read by nobody

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error (see the server log)")


def create_app(
    settings: StudioSettings | None = None,
    runner: Runner | None = None,
    step_rate: Callable[[], float | None] | None = None,
) -> FastAPI:
    """The studio app. ``runner`` replaces :func:`impasto.transfer.transfer` (tests pass a fast double),
    ``step_rate`` the measured seconds per pixel pass of the estimate (:class:`impasto.web.estimate.StepRate`)."""
    settings = StudioSettings.from_env() if settings is None else settings
    manager = JobManager(settings, runner)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def janitor() -> None:
            while True:
                await asyncio.sleep(JANITOR_SECONDS)
                await run_in_threadpool(manager.prune)

        task = asyncio.create_task(janitor())
        log.info("studio ready")
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(manager.close)

    app = FastAPI(
        title="impasto studio",
        version=__version__,
        description="Neural style transfer (Gatys et al.) in the browser. Start a job with `POST /api/jobs`, "
        "follow it with `GET /api/jobs/{id}/events` (server-sent events), fetch `GET /api/jobs/{id}/image`.",
        lifespan=lifespan,
    )
    app.state.manager = manager
    app.state.settings = settings
    _install_handlers(app, settings)
    app.include_router(build_router(manager))
    app.include_router(estimate_router(settings, step_rate or StepRate()))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    app.add_middleware(
        _Guard,
        allowed_hosts=settings.allowed_hosts,
        max_body=settings.max_request_bytes,
        upload_seconds=settings.upload_seconds,
    )
    return app


def _log_config() -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["impasto"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: StudioSettings | None = None,
    announce: Callable[[], None] | None = None,
) -> None:
    """Run the studio until Ctrl-C or SIGTERM (blocking). On a loopback ``host`` only loopback Host
    headers pass. Raises an ImpastoError (one line) if another studio uses the work folder; else calls
    ``announce`` (the CLI's banner) and serves."""
    from .serving import run

    settings = StudioSettings.from_env() if settings is None else settings
    if settings.allowed_hosts is None and host in LOOPBACK:
        settings = dataclasses.replace(settings, allowed_hosts=LOOPBACK)
    app = create_app(settings)  # takes the work folder's lock
    manager: JobManager = app.state.manager
    try:
        if announce is not None:
            announce()
        warm_network()
        run(app, host, port, max_connections=settings.max_connections, header_seconds=settings.header_seconds,
            on_stopping=manager.stop, log_config=_log_config())  # fmt: skip
    finally:
        manager.close()  # the lifespan's close did it, unless uvicorn never started it


def warm_network() -> None:
    """Load the default preset's network before serving: its weights file is opened while files are
    plenty (a flood of connections cannot make the first job fail to open it). A failure is logged:
    the first job that needs the network reports it."""
    from ..config import resolve
    from ..net.network import load_network, resolve_device, resolve_precision

    opts = resolve("default")
    try:
        device = resolve_device(opts.device)
        precision, _ = resolve_precision(opts.precision, device)
        load_network(opts.weights, opts.weights_format, opts.pooling, str(device), opts.network, precision)
    except ImpastoError as exc:
        log.warning("the network is not loaded yet: %s", exc)
