"""The one error hierarchy of LargeForge.

    LargeForgeError                 500  something went wrong that is ours to explain
    ├── InvalidInput                422  the caller sent something we cannot use; the message says what to fix
    │   └── DataValidationError     422  a dataset has bad rows; carries every row error
    ├── Unauthorized                401  no credentials, or credentials we do not accept
    ├── Forbidden                   403  known caller, not allowed to do this
    ├── NotFound                    404  an id, name or path that does not exist
    ├── Conflict                    409  the request clashes with the current state
    ├── TooLarge                    413  a body or upload over the configured limit
    ├── Overloaded                  429  too much work or over a rate limit; retry after a while
    ├── Unavailable                 503  a dependency (GPU, server, optional package) is missing right now
    └── JobFailed                   500  a long operation ran and failed

Each class knows its HTTP status (for the API handlers of later layers) and its CLI exit code.
Library exceptions are translated into these at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from largeforge.data.validation import ValidationReport


class LargeForgeError(Exception):
    """Base class: a message a person can act on, plus a machine-readable code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The ``{"error": {"code", "message"}}`` body used by the CLI's --json and the APIs."""
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(LargeForgeError):
    status_code = 422
    code = "invalid_input"


class DataValidationError(InvalidInput):
    """A dataset failed validation; ``report`` lists every bad row (up to the report's limit)."""

    code = "invalid_data"

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"]["report"] = self.report.to_dict()
        return body


class Unauthorized(LargeForgeError):
    status_code = 401
    code = "unauthorized"


class Forbidden(LargeForgeError):
    status_code = 403
    code = "forbidden"


class TooLarge(LargeForgeError):
    status_code = 413
    code = "too_large"


class NotFound(LargeForgeError):
    status_code = 404
    code = "not_found"


class Conflict(LargeForgeError):
    status_code = 409
    code = "conflict"


class Unavailable(LargeForgeError):
    status_code = 503
    code = "unavailable"


class Overloaded(LargeForgeError):
    """Too much work right now; the client should retry after ``retry_after`` seconds (HTTP 429)."""

    status_code = 429
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobFailed(LargeForgeError):
    status_code = 500
    code = "job_failed"


__all__ = [
    "Conflict",
    "DataValidationError",
    "Forbidden",
    "InvalidInput",
    "JobFailed",
    "LargeForgeError",
    "NotFound",
    "Overloaded",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
]
