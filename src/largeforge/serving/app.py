"""The serving app: wiring only — engine on ``app.state``, routes, health, metrics, OpenAI-shaped errors."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from largeforge.errors import LargeForgeError, Overloaded
from largeforge.serving.metrics import ServerMetrics

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


def openai_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(engine: Any, *, api_key: str | None = None, admin_key: str | None = None) -> FastAPI:
    """The app around a loaded engine; closing the app (shutdown) closes the engine."""
    from largeforge.serving.admin import admin_routes
    from largeforge.serving.openai.routes import routes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.aclose()

    app = FastAPI(title="LargeForge inference server", lifespan=lifespan)
    app.state.engine = engine
    app.state.api_key = api_key
    app.state.admin_key = admin_key
    app.state.metrics = metrics = ServerMetrics()
    app.include_router(routes)
    app.include_router(admin_routes)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """200 once the model is loaded and the engine can serve; 503 otherwise."""
        await engine.check_health()
        return {"status": "ok", "models": engine.model_ids()}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(engine), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        response = await call_next(request)
        if request.url.path.endswith("completions"):
            metrics.requests.labels(request.url.path, str(response.status_code)).inc()
        return response

    @app.exception_handler(LargeForgeError)
    async def _domain_error(request: Request, exc: LargeForgeError) -> JSONResponse:
        # OpenAI reports invalid requests as 400, where our hierarchy says 422.
        status = 400 if exc.status_code == 422 else exc.status_code
        code = "model_not_found" if exc.status_code == 404 else exc.code
        headers = None
        if isinstance(exc, Overloaded) or status == 503:
            headers = {"Retry-After": str(math.ceil(getattr(exc, "retry_after", 1.0)))}
        return openai_error(status, exc.message, param=_param_of(exc.message), code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if p != "body")
        return openai_error(400, f"{param}: {first['msg']}", param=param, code="invalid_parameter")

    return app


def _param_of(message: str) -> str | None:
    """Domain errors about one parameter start with its name (``tool_choice: ...``)."""
    head, sep, _ = message.partition(":")
    return (
        head
        if sep and head.replace("_", "").replace(".", "").replace("[", "").replace("]", "").isalnum()
        else None
    )


__all__ = ["create_app", "openai_error"]
