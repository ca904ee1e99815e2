"""Uniform JSON errors: ``{"error": {"code", "message", ...}}`` with the right 4xx, never a bare 500.

Validation errors name the field and say what is wrong with it; an unexpected exception is logged with
its request id and answered with a 500 that carries that id, so an operator can find it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from largeforge.errors import LargeForgeError, Overloaded

log = logging.getLogger("largeforge.platform")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def error_body(code: str, message: str, request: Request, **extra: Any) -> dict[str, Any]:
    request_id = getattr(request.state, "request_id", None)
    return {"error": {"code": code, "message": message, "request_id": request_id, **extra}}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "request")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LargeForgeError)
    async def _ours(request: Request, exc: LargeForgeError) -> JSONResponse:
        body = exc.to_dict()
        body["error"]["request_id"] = getattr(request.state, "request_id", None)
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": _field(err.get("loc", ())), "problem": err.get("msg", "invalid")}
            for err in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:10])
        return JSONResponse(
            error_body("invalid_input", message or "invalid request", request, details=problems),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail), request), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "invalid_input", "a number in the request is too large to store; send a smaller one", request
            ),
            status_code=422,
        )

    @app.exception_handler(SATimeoutError)
    async def _pool_exhausted(request: Request, exc: SATimeoutError) -> JSONResponse:
        log.warning(
            "database connection pool exhausted",
            extra={"request_id": getattr(request.state, "request_id", None)},
        )
        return JSONResponse(
            error_body("unavailable", "the database is busy (no free connection); retry shortly", request),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        locked = "locked" in str(exc.orig)
        log.warning(
            "database error: %s", exc.orig, extra={"request_id": getattr(request.state, "request_id", None)}
        )
        message = (
            "the database is busy (locked by another writer)" if locked else "the database is unreachable"
        )
        return JSONResponse(
            error_body("unavailable", f"{message}; retry shortly", request),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", None)})
        return JSONResponse(
            error_body(
                "internal_error",
                "internal error; the server log has the details under this request id",
                request,
            ),
            status_code=500,
        )


__all__ = ["error_body", "install_error_handlers"]
