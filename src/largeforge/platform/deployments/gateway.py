"""The metered OpenAI-compatible gateway in front of a deployment's replicas.

Owns what happens to one inference request between the caller's LargeForge API key and a replica:
the token rate limit (``app.state.rate_limiter``), balancing and retries (the expert router's
:class:`~largeforge.routing.proxy.Proxy` and :class:`~largeforge.routing.replicas.ReplicaPool`,
reused as they are: least outstanding requests, ejection of failing replicas), and metering. Metering
covers streams too: the gateway asks the replica for ``stream_options.include_usage``, reads the final
usage chunk as it passes, and drops that chunk again when the caller did not ask for it. Authorization
and the replica list come from the route's dependency; usage rows are written by
:mod:`largeforge.platform.usage.service`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from largeforge.errors import InvalidInput, Unavailable
from largeforge.platform.auth.principal import Principal
from largeforge.platform.deps import ProjectAccess
from largeforge.routing.config import ExpertConfig, HealthConfig, RetryConfig, UpstreamConfig
from largeforge.routing.proxy import Proxy, UpstreamFailed
from largeforge.routing.replicas import Replica, ReplicaPool

# Generation can take minutes; the gateway waits as long as a replica keeps working.
UPSTREAM_TIMEOUT_SECONDS = 600.0
RETRY = RetryConfig(attempts=3, backoff_seconds=0.05, deadline_seconds=UPSTREAM_TIMEOUT_SECONDS)
HEALTH = HealthConfig()
MAX_BODY_BYTES = 4 << 20
_EXPERT = "deployment"
CLIENT_CLOSED = 499  # nginx's code for "the client went away before the answer was complete"


@dataclass(frozen=True)
class GatewayTarget:
    """One authorized request's deployment: where its replicas listen and who is calling."""

    project_id: str
    deployment_id: str
    endpoints: tuple[str, ...]
    key: str
    default_model: str
    principal: Principal


@dataclass
class _Meter:
    """Counts one request; :meth:`finish` writes its usage row and charges the rate limiter once."""

    target: GatewayTarget
    model: str
    endpoint: str
    streamed: bool
    started: float = field(default_factory=time.perf_counter)
    done: bool = False

    async def finish(self, app: Any, status: int, usage: dict[str, Any] | None = None) -> None:
        if self.done:
            return
        self.done = True
        from largeforge.platform.usage.service import UsageEntry, record_usage

        prompt, completion = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
        entry = UsageEntry(
            project_id=self.target.project_id,
            deployment_id=self.target.deployment_id,
            api_key_id=self.target.principal.api_key_id,
            user_id=self.target.principal.user_id,
            model=self.model,
            endpoint=self.endpoint,
            prompt_tokens=prompt,
            completion_tokens=completion,
            status_code=status,
            streamed=self.streamed,
            duration_ms=round((time.perf_counter() - self.started) * 1000),
        )
        await anyio.to_thread.run_sync(record_usage, app.state.session_factory, entry)
        limiter = getattr(app.state, "rate_limiter", None)
        if limiter is not None and prompt + completion:
            await anyio.to_thread.run_sync(limiter.charge_tokens, self.target.principal, prompt + completion)


class Gateway:
    """Per app: replica pools that outlive requests (their outstanding counts balance the load) and one
    HTTP client (per event loop)."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str], tuple[tuple[str, ...], ReplicaPool]] = {}
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT_SECONDS)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _pool(self, target: GatewayTarget, model: str) -> ReplicaPool:
        key = (target.deployment_id, model)
        cached = self._pools.get(key)
        if cached is not None and cached[0] == target.endpoints:
            return cached[1]
        replicas = [
            Replica(
                _EXPERT,
                UpstreamConfig(url=f"{url}/v1", model=model, timeout_seconds=UPSTREAM_TIMEOUT_SECONDS),
                api_key=target.key,
            )
            for url in target.endpoints
        ]
        pool = ReplicaPool(_EXPERT, replicas, HEALTH)
        self._pools[key] = (target.endpoints, pool)
        return pool

    async def complete(self, request: Request, target: GatewayTarget, path: str) -> Response:
        """Forward a (chat) completion to a replica and meter it.

        Raises:
            InvalidInput: the body is not a JSON object. Overloaded: over the key's token rate limit.
            UpstreamFailed (502): no replica answered.
        """
        body = await _json_object(request)
        limiter = getattr(request.app.state, "rate_limiter", None)
        if limiter is not None:
            await anyio.to_thread.run_sync(limiter.check_tokens, target.principal)
        requested = body.get("model")
        model = requested if isinstance(requested, str) else target.default_model
        stream = body.get("stream") is True
        wants_usage = True
        if stream:
            given = body.get("stream_options")
            options: dict[str, Any] = given if isinstance(given, dict) else {}
            wants_usage = bool(options.get("include_usage"))
            body["stream_options"] = {**options, "include_usage": True}
        meter = _Meter(target, model, path.strip("/"), stream)
        pool = self._pool(target, model)
        proxy = Proxy({_EXPERT: pool}, {_EXPERT: _expert(pool)}, RETRY, self._http())
        try:
            upstream = await proxy.send(path, body, _EXPERT, stream=stream)
        except UpstreamFailed:
            await meter.finish(request.app, 502)
            raise
        if upstream.stream is None:
            content = upstream.content or b""
            usage = _usage_of(content) if upstream.status_code == 200 else None
            await meter.finish(request.app, upstream.status_code, usage)
            return Response(content, status_code=upstream.status_code, headers=upstream.headers)
        return StreamingResponse(
            _metered(upstream.stream, wants_usage, meter, request.app),
            status_code=upstream.status_code,
            media_type="text/event-stream",
        )

    async def models(self, target: GatewayTarget) -> Response:
        """``GET /v1/models`` of one replica (every replica serves the same models)."""
        replica = self._pool(target, target.default_model).pick()
        if replica is None:
            raise UpstreamFailed(f"deployment {target.deployment_id} has no replica to ask")
        try:
            response = await self._http().get(
                f"{replica.config.url}/models",
                headers={"authorization": f"Bearer {target.key}"},
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise UpstreamFailed(
                f"replica {replica.config.url} did not answer: {type(exc).__name__}"
            ) from exc
        return Response(response.content, status_code=response.status_code, media_type="application/json")


def resolve_target(db: Session, access: ProjectAccess, deployment_id: str) -> GatewayTarget:
    """The deployment's running replicas for an authorized caller.

    Raises:
        NotFound: no such deployment in the caller's project. Unavailable: none of its replicas runs.
    """
    from largeforge.platform.deployments.repository import DeploymentRepository

    repo = DeploymentRepository(db)
    deployment = repo.get_or_raise(access.project.id, deployment_id)
    endpoints = tuple(
        replica.endpoint
        for replica in repo.replicas_of(deployment.id)
        if replica.status == "running" and replica.endpoint
    )
    if deployment.desired_state != "running" or not endpoints:
        hint = "start it with POST .../start" if deployment.desired_state != "running" else "retry shortly"
        raise Unavailable(
            f"deployment {deployment.id} has no running replica (status {deployment.status}); {hint}"
        )
    return GatewayTarget(
        project_id=access.project.id,
        deployment_id=deployment.id,
        endpoints=endpoints,
        key=deployment.internal_key,
        default_model=deployment.served_model_name,
        principal=access.principal,
    )


def gateway_of(app: Any) -> Gateway:
    """The app's gateway, made on first use (apps built without the supervisor hooks proxy too)."""
    gateway: Gateway | None = getattr(app.state, "deployment_gateway", None)
    if gateway is None:
        gateway = app.state.deployment_gateway = Gateway()
    return gateway


async def _metered(
    chunks: AsyncIterator[bytes], wants_usage: bool, meter: _Meter, app: Any
) -> AsyncIterator[bytes]:
    """Pass server-sent events through, noting the usage chunk (and dropping it unless asked for)."""
    buffer, usage, status = b"", None, CLIENT_CLOSED
    try:
        async with aclosing(chunks) as source:  # type: ignore[type-var]
            async for chunk in source:
                buffer += chunk
                *events, buffer = buffer.split(b"\n\n")
                kept = []
                for event in events:
                    found, keep, failed = _inspect(event, wants_usage)
                    usage = found or usage
                    status = 502 if failed else status
                    if status == CLIENT_CLOSED and event.strip() == b"data: [DONE]":
                        # complete: a client that hangs up right after reading [DONE] is not a 499
                        status = 200
                    if keep:
                        kept.append(event + b"\n\n")
                if kept:
                    yield b"".join(kept)
            if buffer.strip():
                yield buffer
        status = 200 if status == CLIENT_CLOSED else status
    finally:
        with anyio.CancelScope(shield=True):
            await meter.finish(app, status, usage)


def _inspect(event: bytes, wants_usage: bool) -> tuple[dict[str, Any] | None, bool, bool]:
    """(usage found in the event, keep it for the client, it is an error event)."""
    for line in event.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        try:
            document = json.loads(line[6:])
        except ValueError:
            return None, True, False
        usage = document.get("usage") if isinstance(document.get("usage"), dict) else None
        usage_only = usage is not None and document.get("choices") == []
        return usage, wants_usage or not usage_only, "error" in document
    return None, True, False


def _usage_of(content: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(content)
    except ValueError:
        return None
    usage = document.get("usage") if isinstance(document, dict) else None
    return usage if isinstance(usage, dict) else None


def _count(usage: dict[str, Any] | None, name: str) -> int:
    value = (usage or {}).get(name)
    return value if isinstance(value, int) and value >= 0 else 0


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        from largeforge.errors import TooLarge

        raise TooLarge(f"request body is {len(raw)} bytes; the gateway accepts at most {MAX_BODY_BYTES}")
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidInput("the request body must be a JSON object (an OpenAI request)") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object (an OpenAI request)")
    return body


def _expert(pool: ReplicaPool) -> ExpertConfig:
    return ExpertConfig(name=_EXPERT, upstreams=[replica.config for replica in pool.replicas])


__all__ = ["Gateway", "GatewayTarget", "gateway_of", "resolve_target"]
