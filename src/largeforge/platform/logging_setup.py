"""Log lines of the control-plane processes (`largeforge server`, `largeforge worker`).

Owns the format (one JSON object per line for log collectors, or text for people) and the request id
every line logged while serving a request carries, so an operator can go from a response's
``X-Request-ID`` header to every line that request caused. It does not decide what is logged: the
audit middleware logs one "request" record per request, domains log their own events.

Libraries never configure logging (they only get loggers); a process entry point calls
:func:`configure_logging` once.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from starlette.types import ASGIApp, Receive, Scope, Send

# The request being served in this task or thread (anyio copies context into the route's thread).
request_id_var: ContextVar[str | None] = ContextVar("largeforge_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
}
_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id``: the one passed in ``extra``, else the current request's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def configure_logging(
    log_format: Literal["json", "text"] = "json", level: str = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records (ours, uvicorn's, SQLAlchemy's) to one handler on ``stream``
    (default stderr), replacing the root logger's handlers; returns that handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Uvicorn's own handlers would print a second, unstructured copy; its records reach the root instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)  # the level given here governs, not one uvicorn set earlier
    return handler


class LogContextMiddleware:
    """Binds the request id (set by the audit middleware, which must wrap this one) to
    :data:`request_id_var` for the duration of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id_var.set(scope.get("state", {}).get("request_id"))
        try:
            await self.app(scope, receive, send)
        finally:
            request_id_var.reset(token)


__all__ = ["JsonFormatter", "LogContextMiddleware", "RequestIdFilter", "configure_logging", "request_id_var"]
