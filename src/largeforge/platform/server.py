"""The control-plane process: the API app with its background services, on uvicorn.

Owns which hooks a server process runs (the embedded job worker, the deployment supervisor), logging
set-up, and the shutdown order: on SIGTERM/SIGINT the server stops accepting connections, lets
in-flight requests finish (up to a grace period), then stops the worker, which stops claiming and
leaves its running jobs claimable by another worker, and exits 0. It does not own the app's routes
(app.py) or the worker's loop (jobs/worker.py).

Embedded default: a SQLite file and a local artifact directory under LARGEFORGE_HOME and a worker in
this process; scale out by pointing LARGEFORGE_DATABASE_URL/LARGEFORGE_REDIS_URL at shared servers,
running API replicas with ``--no-worker`` and separate ``largeforge worker`` processes.
"""

from __future__ import annotations

import importlib
import logging
import signal
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from largeforge.errors import Unavailable
from largeforge.platform.app import Hook, create_platform_app
from largeforge.platform.logging_setup import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

    from largeforge.settings import Settings

log = logging.getLogger("largeforge.platform.server")


@dataclass(frozen=True)
class _HookSpec:
    """A background service, by module and function names so that it is imported only when used."""

    module: str
    start: str
    stop: str
    what: str


WORKER = _HookSpec(
    "largeforge.platform.jobs.worker", "start_embedded_worker", "stop_embedded_worker", "embedded job worker"
)
SUPERVISOR = _HookSpec(
    "largeforge.platform.deployments.supervisor",
    "start_supervisor",
    "stop_supervisor",
    "deployment supervisor",
)


def _load_hooks(spec: _HookSpec) -> tuple[Hook, Hook] | None:
    """The service's (start, stop) hooks, or None when this build has no such module."""
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name != spec.module:
            raise  # the module exists but one of its own imports is missing: a real error
        log.warning("%s not available (%s is missing); starting without it", spec.what, spec.module)
        return None
    return getattr(module, spec.start), getattr(module, spec.stop)


def build_server_app(
    settings: Settings, *, worker: bool = True, supervisor: bool = True, secure_cookies: bool = False
) -> FastAPI:
    """The app a ``largeforge server`` process serves.

    Args:
        settings: where the database and home are.
        worker: run the embedded job worker (False for an API-only replica).
        supervisor: run the deployment supervisor.
        secure_cookies: mark session cookies Secure (behind HTTPS).
    """
    startup: list[Hook] = []
    shutdown: list[Hook] = []
    for spec in [s for s, wanted in ((WORKER, worker), (SUPERVISOR, supervisor)) if wanted]:
        hooks = _load_hooks(spec)
        if hooks is not None:
            startup.append(hooks[0])
            shutdown.insert(0, hooks[1])  # stop in the reverse order of starting
    return create_platform_app(
        database_url=settings.resolved_database_url(),
        secure_cookies=secure_cookies,
        startup=startup,
        shutdown=shutdown,
    )


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    worker: bool = True,
    supervisor: bool = True,
    secure_cookies: bool = False,
    graceful_timeout: int = 30,
    settings: Settings | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully and return (the process exits 0).

    Args:
        graceful_timeout: seconds in-flight requests get to finish after the signal; longer ones
            (event streams) are cancelled.

    Raises:
        Unavailable: the database cannot be reached (before anything is served).
    """
    from sqlalchemy.exc import OperationalError

    from largeforge.settings import get_settings

    settings = settings or get_settings()
    try:
        # Opening the database (and migrating it) happens here, so a wrong URL fails before logging
        # is taken over and before the port is bound.
        app = build_server_app(settings, worker=worker, supervisor=supervisor, secure_cookies=secure_cookies)
    except OperationalError as exc:
        raise Unavailable(
            f"cannot open the database {_redacted(settings.resolved_database_url())}: {exc.orig}; "
            "check LARGEFORGE_DATABASE_URL and that the database server runs"
        ) from exc
    configure_logging(settings.log_format, settings.log_level)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # configure_logging owns the handlers and the format
        log_level=settings.log_level.lower(),
        access_log=False,  # the request middleware logs each request once, with its request id
        timeout_graceful_shutdown=graceful_timeout,
        lifespan="on",
    )
    server = _ReadinessAwareServer(config, app)
    # Uvicorn re-raises the signal it caught once it has shut down; a Python handler here turns that
    # into a normal return, so a graceful stop exits 0 (what systemd and Kubernetes expect).
    previous = {sig: signal.signal(sig, _note_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info(
            "serving",
            extra={
                "url": f"http://{host}:{port}",
                "database": _redacted(settings.resolved_database_url()),
                "worker": worker,
                "rate_limits": "redis" if settings.redis_url else "in-process",
            },
        )
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise SystemExit(1)  # uvicorn logged why (port in use, start-up hook failed)
    log.info("stopped")


def _note_signal(sig: int, _frame: FrameType | None) -> None:
    log.info("shutdown signal handled", extra={"signal": signal.Signals(sig).name})


class _ReadinessAwareServer(uvicorn.Server):
    """Turns /ready to 503 the moment a stop signal arrives, so load balancers stop routing here while
    in-flight requests finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.ready = False
        log.info("stopping: draining in-flight requests", extra={"signal": signal.Signals(sig).name})
        super().handle_exit(sig, frame)


def _redacted(url: str) -> str:
    """A database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


__all__ = ["SUPERVISOR", "WORKER", "build_server_app", "run_server"]
