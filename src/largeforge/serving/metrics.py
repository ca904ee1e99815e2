"""Prometheus metrics of one inference server (``GET /metrics``).

Each app gets its own registry (tests run several servers in one process). Latencies are measured in
the API layer around the engine's stream, so every engine reports the same metrics the same way;
running/waiting/KV-cache gauges are read from the engine at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from largeforge.serving.engine import GenerationChunk

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """The counters, histograms and gauges of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "largeforge_requests", "Answered inference requests.", ["endpoint", "status"], registry=r
        )
        self.prompt_tokens = Counter(
            "largeforge_prompt_tokens", "Prompt tokens processed.", ["model"], registry=r
        )
        self.generation_tokens = Counter(
            "largeforge_generation_tokens", "Tokens generated.", ["model"], registry=r
        )
        self.cancelled = Counter(
            "largeforge_requests_cancelled",
            "Streams the client closed before the end.",
            ["model"],
            registry=r,
        )
        self.ttft = Histogram(
            "largeforge_time_to_first_token_seconds",
            "From request arrival to the first generated token.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "largeforge_inter_token_latency_seconds",
            "Between consecutive generated tokens of one stream.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.running = Gauge("largeforge_requests_running", "Sequences being generated.", registry=r)
        self.waiting = Gauge("largeforge_requests_waiting", "Sequences queued for a slot.", registry=r)
        self.kv_cache = Gauge(
            "largeforge_kv_cache_usage_ratio", "Fraction of the KV cache in use.", registry=r
        )

    def render(self, engine: Any) -> bytes:
        stats = engine.stats()
        self.running.set(stats.running)
        self.waiting.set(stats.waiting)
        self.kv_cache.set(stats.kv_cache_usage)
        return generate_latest(self.registry)

    async def timed(
        self, model: str, started: float, stream: AsyncIterator[GenerationChunk]
    ) -> AsyncIterator[GenerationChunk]:
        """Pass a stream through, observing TTFT, inter-token latency, tokens and cancellation."""
        last: float | None = None
        try:
            async for chunk in stream:
                if chunk.token_ids:
                    now = time.perf_counter()
                    if last is None:
                        self.ttft.labels(model).observe(now - started)
                    else:
                        self.itl.labels(model).observe((now - last) / len(chunk.token_ids))
                    last = now
                    self.generation_tokens.labels(model).inc(len(chunk.token_ids))
                yield chunk
        except (GeneratorExit, asyncio.CancelledError):
            self.cancelled.labels(model).inc()
            raise
        finally:
            await _close(stream)


async def _close(stream: AsyncIterator[GenerationChunk]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


__all__ = ["ServerMetrics"]
