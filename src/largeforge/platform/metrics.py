"""Prometheus metrics of one control-plane process (``GET /metrics``).

Owns the HTTP metrics (requests by method, route template and status; latency; requests in flight),
the process metrics, and the jobs-by-state gauge, which is read from the database at scrape time (one
indexed GROUP BY) so every replica reports the queue the same way without keeping it in sync.
Serving and routing have their own metrics (serving/metrics.py, routing/).

Each app gets its own registry: tests build many apps in one process. Routes are labelled by their
template (``/api/v1/projects/{project_id}/jobs``), never the raw path, so ids cannot explode the
number of series; paths that match no route share the label ``unmatched``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from largeforge.platform.jobs.orm import JOB_STATES, Job

log = logging.getLogger("largeforge.platform.metrics")

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "unmatched"


class JobsByStateCollector(Collector):
    """``largeforge_platform_jobs{state}``: jobs in each state, counted when Prometheus scrapes."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self._session_factory() as session:
                rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        except SQLAlchemyError as exc:
            # A scrape must not fail because the database hiccuped: report no gauge, say why.
            log.warning("jobs gauge skipped: the database did not answer (%s)", exc)
            return
        counts = dict.fromkeys(JOB_STATES, 0) | {str(state): int(count) for state, count in rows}
        family = GaugeMetricFamily("largeforge_platform_jobs", "Jobs in each state.", labels=["state"])
        for state, count in counts.items():
            family.add_metric([state], count)
        yield family


class PlatformMetrics:
    """The registry and instruments of one app; :class:`MetricsMiddleware` feeds the HTTP ones."""

    def __init__(self, session_factory: sessionmaker[Session] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "largeforge_platform_http_requests",
            "Answered HTTP requests.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "largeforge_platform_http_request_duration_seconds",
            "From the request's arrival to the start of its response (so streams count their first byte).",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "largeforge_platform_http_requests_in_flight", "Requests being handled now.", registry=r
        )
        ProcessCollector(registry=r)
        if session_factory is not None:
            r.register(JobsByStateCollector(session_factory))

    def render(self) -> tuple[bytes, str]:
        """The exposition document and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_label(scope: Scope) -> str:
    """The matched route's template, or ``unmatched``."""
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class MetricsMiddleware:
    """Counts and times every HTTP request. Pure ASGI, so event streams pass through untouched."""

    def __init__(self, app: ASGIApp, metrics: PlatformMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def send_and_observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                self.metrics.latency.labels(scope["method"], route_label(scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            self.metrics.in_flight.dec()
            # No response started: the app raised past every handler, which the server answers with 500.
            code = str(status[0]) if status else "500"
            self.metrics.requests.labels(scope["method"], route_label(scope), code).inc()


__all__ = ["UNMATCHED", "JobsByStateCollector", "MetricsMiddleware", "PlatformMetrics", "route_label"]
