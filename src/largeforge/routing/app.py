"""The router app: wiring only — the Router on ``app.state``, routes, health, metrics, errors, SIGHUP.

Errors use OpenAI's shape (the clients in front of the router are OpenAI clients). ``/health`` and
``/metrics`` need no API key so that load balancers and Prometheus can reach them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from largeforge.errors import LargeForgeError
from largeforge.routing.service import Router
from largeforge.serving.app import openai_error

log = logging.getLogger(__name__)


def create_app(router: Router, *, api_key: str | None = None, reload_on_sighup: bool = False) -> FastAPI:
    """The router's FastAPI app.

    Args:
        router: a built :class:`Router`; the app starts its health checks and closes it on shutdown.
        api_key: when set, every route except /health and /metrics needs ``Authorization: Bearer KEY``.
        reload_on_sighup: reload the config file on SIGHUP (the CLI turns this on; tests of the app
            in-process leave the process's signals alone).
    """
    from largeforge.routing.routes import routes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await router.start()
        loop = asyncio.get_running_loop()
        if reload_on_sighup:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_quietly(router)))
        try:
            yield
        finally:
            if reload_on_sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            await router.aclose()

    app = FastAPI(title="LargeForge expert router", lifespan=lifespan)
    app.state.router = router
    app.state.api_key = api_key
    app.include_router(routes)

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 while every expert has a healthy replica; 503 (``degraded``) names those that have none."""
        experts = router.describe_experts()
        down = [e["name"] for e in experts if not any(r["healthy"] for r in e["replicas"])]
        body = {
            "status": "degraded" if down else "ok",
            "experts": len(experts),
            "without_healthy_replica": down,
        }
        return JSONResponse(body, status_code=503 if down else 200)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(router.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.exception_handler(LargeForgeError)
    async def _domain_error(request: Request, exc: LargeForgeError) -> JSONResponse:
        status = 400 if exc.status_code == 422 else exc.status_code
        code = "model_not_found" if exc.status_code == 404 else exc.code
        return openai_error(status, exc.message, code=code)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in error['loc'] if p != 'body')}: {error['msg']}"
            for error in exc.errors()
        ]
        return openai_error(400, "; ".join(problems), code="invalid_parameter")

    return app


async def _reload_quietly(router: Router) -> Any:
    """SIGHUP has nobody to answer: a bad config is logged and the running one kept."""
    try:
        await router.reload()
    except LargeForgeError as error:
        log.error("reload on SIGHUP failed, keeping the running config: %s", error.message)


__all__ = ["create_app"]
