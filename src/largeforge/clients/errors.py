"""Typed errors of the clients, translated from the ``openai`` and ``httpx`` exceptions at the boundary.

    ClientError (LargeForgeError)           anything the server or the connection said went wrong
    ├── AuthenticationFailed       401      a missing or wrong API key
    ├── PermissionDenied (Forbidden) 403    known caller, too low a role (control plane)
    ├── BadRequest (InvalidInput)  400/422  the request was refused; the message says which field
    ├── ResourceNotFound (NotFound) 404     no such project, job, dataset … (or not yours)
    │   └── ModelNotFound          404      no such model, adapter or expert
    ├── StateConflict (Conflict)   409      the request clashes with the resource's state
    ├── PayloadTooLarge (TooLarge) 413      an upload over the server's limit
    ├── RateLimited                429      slow down; ``retry_after`` seconds when the server said
    ├── ServerError (Unavailable)  5xx      the server or every upstream behind the router failed
    ├── ConnectionFailed (Unavailable)      nothing answered at the address (or it timed out)
    ├── WaitTimedOut                        a job did not finish within the time the caller gave
    └── StreamFailed                        a stream broke after it started (an error event arrived)

Each is also a :class:`largeforge.errors.LargeForgeError`, so CLI commands and services that call a
server handle them like any other error of ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai

from largeforge.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LargeForgeError,
    NotFound,
    TooLarge,
    Unavailable,
)


class ClientError(LargeForgeError):
    """Base class; ``status`` is the HTTP status when there was one. ``server_code`` and ``request_id``
    come from the control plane's ``{"error": {...}}`` body (quote the request id in bug reports)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        server_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.server_code = server_code
        self.request_id = request_id


class AuthenticationFailed(ClientError):
    status_code = 401
    code = "invalid_api_key"


class BadRequest(ClientError, InvalidInput):
    pass


class PermissionDenied(ClientError, Forbidden):
    pass


class ResourceNotFound(ClientError, NotFound):
    pass


class ModelNotFound(ResourceNotFound):
    pass


class StateConflict(ClientError, Conflict):
    pass


class PayloadTooLarge(ClientError, TooLarge):
    pass


class RateLimited(ClientError):
    status_code = 429
    code = "rate_limited"
    retry_after: float | None = None


class ServerError(ClientError, Unavailable):
    pass


class ConnectionFailed(ClientError, Unavailable):
    pass


class StreamFailed(ClientError):
    code = "stream_failed"


class WaitTimedOut(ClientError):
    code = "wait_timed_out"


_BY_STATUS: dict[int, type[ClientError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: AuthenticationFailed,
    404: ModelNotFound,
    422: BadRequest,
    429: RateLimited,
}


def from_status(status: int, message: str) -> ClientError:
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else BadRequest)
    return kind(message, status)


# The control plane's statuses: 403 is a role, not a key problem; 404 is any resource.
_PLATFORM_BY_STATUS: dict[int, type[ClientError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: ResourceNotFound,
    409: StateConflict,
    413: PayloadTooLarge,
    422: BadRequest,
    429: RateLimited,
}


def raise_for_platform_status(response: httpx.Response) -> None:
    """A control-plane error response (``{"error": {"code", "message", "request_id"}}``) as a typed error.

    Raises:
        ClientError: the subclass for the status, carrying the server's message, code and request id.
    """
    if response.status_code < 400:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or response.text or response.reason_phrase)
    kind = _PLATFORM_BY_STATUS.get(
        response.status_code, ServerError if response.status_code >= 500 else BadRequest
    )
    raised = kind(
        message,
        response.status_code,
        server_code=error.get("code"),
        request_id=error.get("request_id"),
    )
    if isinstance(raised, RateLimited):
        retry_after = response.headers.get("retry-after", "")
        raised.retry_after = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
    raise raised


def translate(exc: Exception) -> ClientError:
    """The typed error for an exception of ``openai`` or ``httpx``."""
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return ConnectionFailed(f"could not reach the server: {exc}")
    if isinstance(exc, openai.APIStatusError):
        return from_status(exc.status_code, _message(exc.body, exc.message))
    if isinstance(exc, openai.APIError):  # an error event inside a stream carries no status
        return StreamFailed(exc.message)
    return ClientError(str(exc))


@contextmanager
def translating() -> Iterator[None]:
    """Re-raise ``openai``/``httpx`` exceptions raised inside the block as :class:`ClientError`."""
    try:
        yield
    except (openai.OpenAIError, httpx.HTTPError) as exc:
        raise translate(exc) from exc


def raise_for_status(response: httpx.Response) -> None:
    """For our own non-OpenAI endpoints (/route, /experts …): an error body becomes a typed error."""
    if response.status_code < 400:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    raise from_status(response.status_code, _message(body, response.text))


def _message(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return fallback


__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "ClientError",
    "ConnectionFailed",
    "ModelNotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "ResourceNotFound",
    "ServerError",
    "StateConflict",
    "StreamFailed",
    "WaitTimedOut",
    "raise_for_platform_status",
    "raise_for_status",
    "translate",
    "translating",
]
