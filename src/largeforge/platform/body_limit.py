"""A cap on request bodies, so a client cannot make the API buffer gigabytes of JSON.

Dataset uploads stream to disk under their own, larger limit (``LARGEFORGE_MAX_UPLOAD_BYTES``); every
other request body is capped at ``LARGEFORGE_MAX_REQUEST_BYTES``. A declared Content-Length over the cap
is answered 413 before anything is read; a chunked body is cut off the moment it crosses the cap.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from largeforge.errors import TooLarge

# POST /api/v1/projects/{project_id}/datasets streams to disk with its own limit.
_UPLOAD = re.compile(r"^/api/v1/projects/[^/]+/datasets/?$")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> TooLarge:
        return TooLarge(
            f"request body over {self.max_bytes} bytes; send less (dataset files go to the upload route, "
            "which streams them)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _UPLOAD.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_error(send, self._refusal())
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # an HTTPException: FastAPI re-raises those from body parsing (anything else
                    # becomes a vague 400); the app's handler renders it as the uniform 413 error
                    raise HTTPException(413, detail=self._refusal().message)
            return message

        await self.app(scope, limited_receive, send)


async def _send_error(send: Send, error: TooLarge) -> None:
    import json

    body = json.dumps(error.to_dict()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["BodyLimitMiddleware"]
