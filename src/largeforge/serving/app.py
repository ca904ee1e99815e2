"""The serving app: wiring only — engine on ``app.state``, routes, health, and OpenAI-shaped errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from largeforge.errors import LargeForgeError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_error",
}


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None
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
    return JSONResponse(body, status_code=status)


def create_app(engine: Any, *, api_key: str | None = None) -> FastAPI:
    from largeforge.serving.openai.routes import routes

    app = FastAPI(title="LargeForge inference server")
    app.state.engine = engine
    app.state.api_key = api_key
    app.include_router(routes)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        await engine.check_health()
        return {"status": "ok", "models": engine.model_ids()}

    @app.exception_handler(LargeForgeError)
    async def _domain_error(request: Request, exc: LargeForgeError) -> JSONResponse:
        # OpenAI reports invalid requests as 400, where our hierarchy says 422.
        status = 400 if exc.status_code == 422 else exc.status_code
        code = "model_not_found" if exc.status_code == 404 else exc.code
        return openai_error(status, exc.message, code=code)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if p != "body")
        return openai_error(400, f"{param}: {first['msg']}", param=param, code="invalid_parameter")

    return app


__all__ = ["create_app", "openai_error"]
