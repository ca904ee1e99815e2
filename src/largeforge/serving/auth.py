"""Bearer keys: the API key over every inference route, the admin key over adapter management."""

from __future__ import annotations

import hmac

from fastapi import Request

from largeforge.errors import Forbidden
from largeforge.errors import Unauthorized as _Unauthorized


class Unauthorized(_Unauthorized):
    code = "invalid_api_key"  # OpenAI's code for a bad key


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def require_api_key(request: Request) -> None:
    """Raise 401 unless the server has no key or the request carries it as ``Authorization: Bearer``."""
    expected: str | None = request.app.state.api_key
    if expected is None:
        return
    token = _bearer(request)
    if token is None or not hmac.compare_digest(token, expected):
        raise Unauthorized("Incorrect API key provided: send it as `Authorization: Bearer <key>`")


async def require_admin_key(request: Request) -> None:
    """Adapter management needs the admin key; a server started without one refuses it outright."""
    expected: str | None = request.app.state.admin_key
    if expected is None:
        raise Forbidden("loading adapters at run time is off; start the server with --admin-key KEY")
    token = _bearer(request)
    if token is None or not hmac.compare_digest(token, expected):
        raise Unauthorized("Incorrect admin key provided: send it as `Authorization: Bearer <admin key>`")


__all__ = ["Forbidden", "Unauthorized", "require_admin_key", "require_api_key"]
