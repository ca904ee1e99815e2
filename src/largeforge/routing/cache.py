"""The response cache: exact answers for deterministic requests, semantic answers for similar prompts.

Owns cache keys and the two storage backends (in-process by default, Redis when
``LARGEFORGE_REDIS_URL`` is set, so that several router replicas share one cache). Every key starts
with the caller's scope — a hash of the API key it presented plus its ``X-LargeForge-Project`` header —
so an answer is never served to another key or project. Only non-streamed requests are cached; the
exact cache only takes deterministic ones (``temperature: 0``, or a ``seed``), because replaying a
sampled answer would change what the caller asked for. Which experts cache is the config's business.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np

from largeforge.routing.config import CacheConfig

_PROMPT_FIELDS = ("messages", "prompt", "stream", "stream_options", "user")


class CacheBackend(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def similar(self, bucket: str) -> list[tuple[np.ndarray, bytes]]:
        """Unexpired ``(vector, answer)`` entries of a semantic bucket."""
        ...

    async def add_similar(
        self, bucket: str, vector: np.ndarray, value: bytes, ttl: float, limit: int
    ) -> None: ...
    async def aclose(self) -> None: ...


class InProcessBackend:
    """A dict with expiry times; the default, for one router process."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._values: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._buckets: dict[str, list[tuple[float, np.ndarray, bytes]]] = {}
        self._max_keys = max_keys

    async def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._values[key] = (time.monotonic() + ttl, value)
        self._values.move_to_end(key)
        while len(self._values) > self._max_keys:
            self._values.popitem(last=False)

    async def similar(self, bucket: str) -> list[tuple[np.ndarray, bytes]]:
        now = time.monotonic()
        return [(vector, value) for expiry, vector, value in self._buckets.get(bucket, []) if expiry >= now]

    async def add_similar(
        self, bucket: str, vector: np.ndarray, value: bytes, ttl: float, limit: int
    ) -> None:
        now = time.monotonic()
        entries = [e for e in self._buckets.get(bucket, []) if e[0] >= now]
        entries.append((now + ttl, vector, value))
        self._buckets[bucket] = entries[-limit:]

    async def aclose(self) -> None:
        return None


class RedisBackend:
    """Keys in Redis with native expiry; semantic buckets are capped lists of JSON entries."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(f"lf:router:exact:{key}")
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(f"lf:router:exact:{key}", value, px=max(1, int(ttl * 1000)))

    async def similar(self, bucket: str) -> list[tuple[np.ndarray, bytes]]:
        now, found = time.time(), []
        for raw in await self._redis.lrange(f"lf:router:semantic:{bucket}", 0, -1):
            entry = json.loads(raw)
            if entry["expires"] >= now:
                vector = np.frombuffer(base64.b64decode(entry["vector"]), dtype=np.float32)
                found.append((vector, base64.b64decode(entry["value"])))
        return found

    async def add_similar(
        self, bucket: str, vector: np.ndarray, value: bytes, ttl: float, limit: int
    ) -> None:
        entry = {
            "expires": time.time() + ttl,
            "vector": base64.b64encode(vector.astype(np.float32).tobytes()).decode(),
            "value": base64.b64encode(value).decode(),
        }
        key = f"lf:router:semantic:{bucket}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, json.dumps(entry))
            pipe.ltrim(key, 0, limit - 1)
            pipe.pexpire(key, max(1, int(ttl * 1000)))
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_cache_backend(redis_url: str | None) -> CacheBackend:
    """Redis when a URL is configured (``LARGEFORGE_REDIS_URL``), else in-process."""
    return RedisBackend(redis_url) if redis_url else InProcessBackend()


def caller_scope(authorization: str | None, project: str | None) -> str:
    """A hash of who is asking: the bearer token and project; never the raw key (it is stored in keys)."""
    return hashlib.sha256(f"{authorization or ''}\x00{project or ''}".encode()).hexdigest()[:32]


class ResponseCache:
    """Exact and semantic lookups over a backend, per caller scope and expert."""

    def __init__(self, backend: CacheBackend) -> None:
        self.backend = backend

    @staticmethod
    def cacheable(body: dict[str, Any]) -> bool:
        return not body.get("stream")

    @staticmethod
    def deterministic(body: dict[str, Any]) -> bool:
        return body.get("temperature") == 0 or body.get("seed") is not None

    async def lookup(
        self,
        config: CacheConfig,
        scope: str,
        expert: str,
        path: str,
        body: dict[str, Any],
        vector: np.ndarray | None,
    ) -> tuple[bytes, str] | None:
        """The cached answer and how it was found (``exact`` or ``semantic``), or None."""
        if not self.cacheable(body):
            return None
        if config.exact and self.deterministic(body):
            hit = await self.backend.get(_exact_key(scope, expert, path, body))
            if hit is not None:
                return hit, "exact"
        if config.semantic_threshold is not None and vector is not None:
            best, answer = -1.0, None
            for stored, value in await self.backend.similar(_bucket(scope, expert, path, body)):
                similarity = float(stored @ vector)
                if similarity > best:
                    best, answer = similarity, value
            if answer is not None and best >= config.semantic_threshold:
                return answer, "semantic"
        return None

    async def store(
        self,
        config: CacheConfig,
        scope: str,
        expert: str,
        path: str,
        body: dict[str, Any],
        vector: np.ndarray | None,
        answer: bytes,
    ) -> None:
        if not self.cacheable(body):
            return
        if config.exact and self.deterministic(body):
            await self.backend.set(_exact_key(scope, expert, path, body), answer, config.ttl_seconds)
        if config.semantic_threshold is not None and vector is not None:
            bucket = _bucket(scope, expert, path, body)
            await self.backend.add_similar(bucket, vector, answer, config.ttl_seconds, config.max_entries)


def _exact_key(scope: str, expert: str, path: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({k: v for k, v in body.items() if k != "user"}, sort_keys=True, default=str)
    return f"{scope}:{expert}:{hashlib.sha256(f'{path}{canonical}'.encode()).hexdigest()}"


def _bucket(scope: str, expert: str, path: str, body: dict[str, Any]) -> str:
    """Similar prompts share a bucket only when every other parameter (max_tokens, temperature …) is equal."""
    settings = json.dumps(
        {k: v for k, v in body.items() if k not in _PROMPT_FIELDS}, sort_keys=True, default=str
    )
    return f"{scope}:{expert}:{hashlib.sha256(f'{path}{settings}'.encode()).hexdigest()[:32]}"


__all__ = [
    "CacheBackend",
    "InProcessBackend",
    "RedisBackend",
    "ResponseCache",
    "caller_scope",
    "open_cache_backend",
]
