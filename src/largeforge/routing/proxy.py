"""Sending a request to an expert's upstreams: retries, backoff, the deadline, fallbacks, streaming.

Owns one request's journey: pick a replica, send, and on a connect error, a timeout, a 5xx or a 429
— or an upstream that dies before its answer is complete — try another replica after a backoff,
within ``retry.attempts`` per expert and ``retry.deadline_seconds`` overall; then the expert's
fallback chain. All of that happens before the first byte reaches the client. Streams are passed
through chunk by chunk as they arrive; a failure after the first chunk cannot be retried (the client
already has part of an answer), so the stream ends with an OpenAI-style error event instead of a
silent truncation. Which expert to start with is decided elsewhere (:mod:`.service`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from largeforge.errors import LargeForgeError
from largeforge.routing.config import ExpertConfig, RetryConfig
from largeforge.routing.replicas import Replica, ReplicaPool

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_PASSED_HEADERS = ("content-type", "openai-processing-ms", "x-request-id")


class UpstreamFailed(LargeForgeError):
    """Every replica of the expert and of its fallbacks failed within the deadline."""

    status_code = 502
    code = "upstream_failed"


@dataclass
class UpstreamResponse:
    """The answer of the replica that succeeded.

    Exactly one of ``content`` (non-streamed) and ``stream`` (server-sent events, bytes as they arrive)
    is set. ``status_code`` may be a 4xx the upstream returned: client errors are passed back, not retried.
    """

    expert: str
    replica: Replica
    status_code: int
    headers: dict[str, str]
    attempts: list[str] = field(default_factory=list)
    content: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def fallback_used(self) -> bool:
        return bool(self.attempts) and self.attempts[0].split(" ", 1)[0] != self.expert


class _AttemptFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Proxy:
    """Sends requests for experts through their replica pools."""

    def __init__(
        self,
        pools: dict[str, ReplicaPool],
        experts: dict[str, ExpertConfig],
        retry: RetryConfig,
        client: httpx.AsyncClient,
    ) -> None:
        self._pools, self._experts, self._retry, self._client = pools, experts, retry, client

    async def send(self, path: str, body: dict[str, Any], expert: str, *, stream: bool) -> UpstreamResponse:
        """Send ``body`` to ``path`` (``/chat/completions`` …) of ``expert`` or, failing that, its fallbacks.

        Raises:
            UpstreamFailed: every try failed or the deadline passed; the message lists each try.
        """
        deadline = time.monotonic() + self._retry.deadline_seconds
        attempts: list[str] = []
        for name in [expert, *self._experts[expert].fallbacks]:
            pool, tried = self._pools[name], set[str]()
            for number in range(self._retry.attempts):
                replica = await _wait_for_room(pool, tried, deadline)
                remaining = deadline - time.monotonic()
                if replica is None or remaining <= 0:
                    break
                tried.add(replica.name)
                try:
                    response = await self._attempt(pool, replica, path, body, stream, remaining)
                except _AttemptFailed as failure:
                    attempts.append(f"{name} {replica.name}: {failure.reason}")
                    pool.record_failure(replica, failure.reason)
                    delay = self._retry.backoff_seconds * (2**number)
                    await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
                    continue
                response.expert, response.attempts = name, attempts
                return response
        if time.monotonic() >= deadline:
            attempts.append(f"deadline of {self._retry.deadline_seconds:g} s passed")
        raise UpstreamFailed(
            f"no upstream of expert {expert!r} (or its fallbacks) answered: "
            + "; ".join(attempts or ["no replica"])
        )

    async def _attempt(
        self,
        pool: ReplicaPool,
        replica: Replica,
        path: str,
        body: dict[str, Any],
        stream: bool,
        remaining: float,
    ) -> UpstreamResponse:
        upstream = replica.config
        headers = {"accept-encoding": "identity", "content-type": "application/json"}
        if replica.api_key:
            headers["authorization"] = f"Bearer {replica.api_key}"
        timeout = min(upstream.timeout_seconds, remaining)
        request = self._client.build_request(
            "POST",
            f"{upstream.url}{path}",
            content=json.dumps({**body, "model": upstream.model}).encode(),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(upstream.connect_timeout_seconds, timeout)),
        )
        replica.outstanding += 1
        replica.requests += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                replica.outstanding -= 1

        try:
            response = await asyncio.wait_for(self._client.send(request, stream=True), timeout)
            if response.status_code in RETRYABLE_STATUS:
                await response.aclose()
                raise _AttemptFailed(f"HTTP {response.status_code}")
            kept = {k: v for k, v in response.headers.items() if k.lower() in _PASSED_HEADERS}
            if not stream or response.status_code >= 400:
                content = await asyncio.wait_for(response.aread(), max(0.001, timeout))
                await response.aclose()
                release()
                pool.record_success(replica)
                return UpstreamResponse(pool.expert, replica, response.status_code, kept, content=content)
            chunks = response.aiter_bytes()
            first = await asyncio.wait_for(anext(chunks), timeout)
        except _AttemptFailed:
            release()
            raise
        except (httpx.HTTPError, TimeoutError, StopAsyncIteration) as exc:
            release()
            raise _AttemptFailed(_describe(exc)) from exc
        except BaseException:
            release()
            raise
        pool.record_success(replica)
        result = UpstreamResponse(pool.expert, replica, response.status_code, kept)
        result.stream = _pass_through(first, chunks, response, release, result)
        return result


async def _wait_for_room(pool: ReplicaPool, tried: set[str], deadline: float) -> Replica | None:
    """A replica for the next try; when every one is at its ``max_concurrency``, wait for room."""
    while (replica := pool.pick(tried)) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return replica


async def _pass_through(
    first: bytes,
    chunks: AsyncIterator[bytes],
    response: httpx.Response,
    release: Any,
    result: UpstreamResponse,
) -> AsyncIterator[bytes]:
    """Yield the upstream's bytes as they come; end a broken or truncated stream with an error event."""
    tail = first[-64:]
    try:
        yield first
        async for chunk in chunks:
            tail = (tail + chunk)[-64:]
            if b'"usage"' in chunk:
                result.usage = _usage_from_events(chunk) or result.usage
            yield chunk
        if b"[DONE]" not in tail:
            yield stream_error_event("the upstream closed the stream before it was complete")
    except httpx.HTTPError as exc:
        log.warning("upstream %s failed mid-stream: %s", result.replica.name, _describe(exc))
        result.replica.failures += 1
        yield stream_error_event(f"the upstream failed after the stream started ({_describe(exc)})")
    finally:
        release()
        await response.aclose()


def stream_error_event(message: str) -> bytes:
    """The SSE event OpenAI sends for an error inside a stream (the official client raises on it)."""
    error = {"error": {"message": message, "type": "server_error", "param": None, "code": "upstream_failed"}}
    return f"data: {json.dumps(error)}\n\ndata: [DONE]\n\n".encode()


def _usage_from_events(chunk: bytes) -> dict[str, Any] | None:
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage"' in line:
            try:
                usage = json.loads(line[6:]).get("usage")
            except ValueError:
                return None  # an event split across chunks; the usage is not worth buffering for
            return usage if isinstance(usage, dict) else None
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, StopAsyncIteration):
        return "empty response"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = ["RETRYABLE_STATUS", "Proxy", "UpstreamFailed", "UpstreamResponse", "stream_error_event"]
