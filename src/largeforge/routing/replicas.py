"""Replica pools: which upstream of an expert gets the next request, and which are healthy.

Owns balancing (least outstanding requests, scaled by weight, capped by ``max_concurrency``),
passive ejection (``failures_to_eject`` consecutive failures remove a replica for
``cooldown_seconds``) and active health checks (``GET <url>/models`` every ``interval_seconds``,
which also brings an ejected replica back early once it answers). It does not send requests:
:mod:`largeforge.routing.proxy` asks a pool for a replica and reports how the attempt went.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import httpx

from largeforge.routing.config import ExpertConfig, HealthConfig, UpstreamConfig

log = logging.getLogger(__name__)


@dataclass
class Replica:
    """One upstream of one expert, with its live state."""

    expert: str
    config: UpstreamConfig
    api_key: str | None = None
    outstanding: int = 0
    consecutive_failures: int = 0
    ejected_until: float = 0.0
    healthy: bool = True  # the last active check's verdict
    last_error: str | None = None
    requests: int = 0
    failures: int = 0

    @property
    def name(self) -> str:
        return f"{self.config.url}#{self.config.model}"

    def available(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until

    def has_room(self) -> bool:
        limit = self.config.max_concurrency
        return limit is None or self.outstanding < limit

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "url": self.config.url,
            "model": self.config.model,
            "weight": self.config.weight,
            "healthy": self.available(now),
            "ejected_for_seconds": round(max(0.0, self.ejected_until - now), 1),
            "outstanding": self.outstanding,
            "requests": self.requests,
            "failures": self.failures,
            "last_error": self.last_error,
        }


@dataclass
class ReplicaPool:
    """The replicas of one expert."""

    expert: str
    replicas: list[Replica]
    health: HealthConfig
    _rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_config(cls, expert: ExpertConfig, health: HealthConfig) -> ReplicaPool:
        from largeforge.settings import read_secret_env

        replicas = [
            Replica(
                expert.name, upstream, read_secret_env(upstream.api_key_env) if upstream.api_key_env else None
            )
            for upstream in expert.upstreams
        ]
        return cls(expert.name, replicas, health)

    def pick(self, exclude: Collection[str] = ()) -> Replica | None:
        """The replica with the fewest outstanding requests per unit of weight, or None.

        Healthy replicas with room come first. When none is healthy, unhealthy ones are tried anyway
        (a health check can be wrong; refusing outright would turn a blip into an outage); replicas in
        ``exclude`` (already tried for this request) are skipped unless nothing else is left.
        """
        now = time.monotonic()
        for candidates in (
            [r for r in self.replicas if r.name not in exclude and r.available(now) and r.has_room()],
            [r for r in self.replicas if r.name not in exclude and r.has_room()],
            [r for r in self.replicas if r.has_room()],
        ):
            if candidates:
                load = [(r.outstanding + 1) / r.config.weight for r in candidates]
                lowest = min(load)
                return self._rng.choice(
                    [r for r, value in zip(candidates, load, strict=True) if value == lowest]
                )
        return None

    def record_success(self, replica: Replica) -> None:
        replica.consecutive_failures = 0
        replica.ejected_until = 0.0

    def record_failure(self, replica: Replica, error: str) -> None:
        """Count a failed attempt; eject the replica after ``failures_to_eject`` in a row."""
        replica.failures += 1
        replica.consecutive_failures += 1
        replica.last_error = error
        if replica.consecutive_failures >= self.health.failures_to_eject:
            replica.ejected_until = time.monotonic() + self.health.cooldown_seconds
            log.warning("ejecting %s for %.0f s: %s", replica.name, self.health.cooldown_seconds, error)

    async def check(self, client: httpx.AsyncClient) -> None:
        """One round of active health checks, all replicas at once."""
        await asyncio.gather(*(self._check_one(client, replica) for replica in self.replicas))

    async def _check_one(self, client: httpx.AsyncClient, replica: Replica) -> None:
        headers = {"authorization": f"Bearer {replica.api_key}"} if replica.api_key else {}
        try:
            response = await client.get(f"{replica.config.url}/models", headers=headers, timeout=2.0)
            ok = response.status_code < 500
            error = None if ok else f"health check: HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"health check: {type(exc).__name__}"
        if ok and not replica.healthy:
            log.info("%s is healthy again", replica.name)
        if ok:
            replica.healthy = True
            if replica.ejected_until:
                replica.ejected_until = 0.0
                replica.consecutive_failures = 0
        else:
            replica.healthy, replica.last_error = False, error


async def run_health_checks(pools: list[ReplicaPool], client: httpx.AsyncClient, interval: float) -> None:
    """Check every pool every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.gather(*(pool.check(client) for pool in pools))
        await asyncio.sleep(interval)


__all__ = ["Replica", "ReplicaPool", "run_health_checks"]
