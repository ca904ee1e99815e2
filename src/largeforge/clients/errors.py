"""Typed errors of the clients, translated from the ``openai`` and ``httpx`` exceptions at the boundary.

    ClientError (LargeForgeError)           anything the server or the connection said went wrong
    ├── AuthenticationFailed       401      a missing or wrong API key
    ├── BadRequest (InvalidInput)  400/422  the request was refused; the message says which field
    ├── ModelNotFound (NotFound)   404      no such model, adapter or expert
    ├── RateLimited                429      slow down (the official client already retried)
    ├── ServerError (Unavailable)  5xx      the server or every upstream behind the router failed
    ├── ConnectionFailed (Unavailable)      nothing answered at the address (or it timed out)
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

from largeforge.errors import InvalidInput, LargeForgeError, NotFound, Unavailable


class ClientError(LargeForgeError):
    """Base class; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationFailed(ClientError):
    status_code = 401
    code = "invalid_api_key"


class BadRequest(ClientError, InvalidInput):
    pass


class ModelNotFound(ClientError, NotFound):
    pass


class RateLimited(ClientError):
    status_code = 429
    code = "rate_limited"


class ServerError(ClientError, Unavailable):
    pass


class ConnectionFailed(ClientError, Unavailable):
    pass


class StreamFailed(ClientError):
    code = "stream_failed"


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
    "RateLimited",
    "ServerError",
    "StreamFailed",
    "raise_for_status",
    "translate",
    "translating",
]
