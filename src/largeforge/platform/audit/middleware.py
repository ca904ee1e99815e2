"""ASGI middleware: a request id on every request, and one audit entry per state-changing request.

The entry is written when the response *starts* (status known, body not yet sent), so a client that
got an answer can always find its entry. Pure ASGI rather than BaseHTTPMiddleware so server-sent
event streams pass through untouched.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import anyio
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from largeforge.platform.audit.service import append_entry

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Inference through the deployments' gateway is a POST but changes nothing; usage records log it, and
# serializing every completion through the audit chain would make the chain the gateway's bottleneck.
INFERENCE_MARK = "/v1/"


def is_audited(method: str, path: str) -> bool:
    """State-changing API requests: mutating methods under /api/, except inference calls."""
    return method in MUTATING and path.startswith("/api/") and INFERENCE_MARK not in path[len("/api/v1") :]


log = logging.getLogger("largeforge.platform.access")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or scope.get("path", "")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, session_factory: sessionmaker[Session]) -> None:
        self.app = app
        self.session_factory = session_factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        method = scope["method"]
        audited = is_audited(method, scope["path"])
        started = time.perf_counter()
        status_holder: dict[str, int] = {}

        async def send_with_context(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
                if audited:
                    await anyio.to_thread.run_sync(self._audit, scope, state, message["status"], request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": scope["path"],
                    "status": status_holder.get("status", 500),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )

    def _audit(self, scope: Scope, state: dict[str, Any], status: int, request_id: str) -> None:
        principal = state.get("principal")
        client = scope.get("client")
        with self.session_factory() as session:
            append_entry(
                session,
                action=f"{scope['method']} {_route_template(scope)}",
                result=str(status),
                actor_id=getattr(principal, "user_id", None),
                actor=getattr(principal, "email", None) or state.get("audit_actor"),
                api_key_id=getattr(principal, "api_key_id", None),
                resource=state.get("audit_resource") or scope["path"],
                project_id=state.get("project_id"),
                source_ip=client[0] if client else None,
                request_id=request_id,
            )
            session.commit()


__all__ = ["RequestContextMiddleware"]
