"""Optional Bearer API key over every inference route (``/v1/...``)."""

from __future__ import annotations

import hmac

from fastapi import Request

from largeforge.errors import LargeForgeError


class Unauthorized(LargeForgeError):
    status_code = 401
    code = "invalid_api_key"


async def require_api_key(request: Request) -> None:
    """Raise 401 unless the server has no key or the request carries it as ``Authorization: Bearer``."""
    expected: str | None = request.app.state.api_key
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        raise Unauthorized("Incorrect API key provided: send it as `Authorization: Bearer <key>`")


__all__ = ["Unauthorized", "require_api_key"]
