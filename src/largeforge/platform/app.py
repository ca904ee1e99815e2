"""The control-plane app: wiring only. Every rule lives in a domain package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from largeforge import __version__
from largeforge.platform.audit.middleware import RequestContextMiddleware
from largeforge.platform.audit.routes import router as audit_router
from largeforge.platform.auth.routes import router as auth_router
from largeforge.platform.body_limit import BodyLimitMiddleware
from largeforge.platform.datasets.routes import router as datasets_router
from largeforge.platform.deployments.routes import router as deployments_router
from largeforge.platform.deps import make_session_factory
from largeforge.platform.http_errors import install_error_handlers
from largeforge.platform.jobs.routes import router as jobs_router
from largeforge.platform.logging_setup import LogContextMiddleware
from largeforge.platform.metrics import MetricsMiddleware, PlatformMetrics
from largeforge.platform.models.routes import router as models_router
from largeforge.platform.projects.routes import router as projects_router
from largeforge.platform.ratelimit import RateLimiter, build_rate_limiter
from largeforge.platform.usage.routes import router as usage_router
from largeforge.settings import get_settings

# Routes that answer without credentials; tests/platform/test_access_matrix.py holds every other route to it.
PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/auth/login",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/ui",  # the web UI's shell and static assets (they hold no data; every API call they make is authorized)
    }
)

# Hooks run at start-up and shutdown (the embedded worker, deployments' supervisor); domains register them.
Hook = Callable[[FastAPI], Any]


def create_platform_app(
    *,
    database_url: str | None = None,
    secure_cookies: bool = False,
    startup: list[Hook] | None = None,
    shutdown: list[Hook] | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    """The REST API over one database. ``startup``/``shutdown`` hooks get the app (server.py passes the
    embedded worker and the deployment supervisor; tests pass nothing). ``rate_limiter`` defaults to
    the one the settings describe (Redis when LARGEFORGE_REDIS_URL is set, else in-process)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in startup or []:
            await _maybe_await(hook(app))
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            for hook in shutdown or []:
                await _maybe_await(hook(app))
            app.state.rate_limiter.close()

    app = FastAPI(
        title="LargeForge control plane",
        version=__version__,
        description="Datasets, jobs, models, deployments and usage for many users and projects.",
        lifespan=lifespan,
    )
    session_factory = make_session_factory(database_url)
    app.state.session_factory = session_factory
    app.state.secure_cookies = secure_cookies
    app.state.ready = False
    app.state.rate_limiter = rate_limiter or build_rate_limiter(get_settings())
    app.state.metrics = PlatformMetrics(session_factory)
    install_error_handlers(app)
    for router in (
        auth_router,
        projects_router,
        audit_router,
        datasets_router,
        jobs_router,
        models_router,
        deployments_router,
        usage_router,
    ):
        app.include_router(router)

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    def ready() -> JSONResponse:
        """Readiness: started up, not shutting down, and the database answers."""
        try:
            with session_factory() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any driver error means "not ready", with the reason
            return JSONResponse({"status": "unavailable", "reason": f"database: {exc}"}, status_code=503)
        if not app.state.ready:
            return JSONResponse({"status": "unavailable", "reason": "starting or stopping"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"])
    def metrics() -> Response:
        """Prometheus exposition: HTTP requests and latency by route, jobs by state, process."""
        body, content_type = app.state.metrics.render()
        return Response(body, media_type=content_type)

    # The web UI: static files only; it signs in and calls /api/v1 like any client.
    app.mount("/ui", StaticFiles(packages=[("largeforge.web", "static")], html=True), name="ui")

    # The last added is the outermost: the request id exists before the inner two read it.
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(LogContextMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=get_settings().max_request_bytes)
    app.add_middleware(RequestContextMiddleware, session_factory=session_factory)
    return app


async def _maybe_await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value


__all__ = ["PUBLIC_PATHS", "create_platform_app"]
