"""Prometheus metrics and JSON logs of the control plane."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from largeforge.platform.deps import make_session_factory
from largeforge.platform.jobs.orm import Job
from largeforge.platform.logging_setup import JsonFormatter, RequestIdFilter, configure_logging
from tests.platform.conftest import Cast


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition document, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_by_route_template(platform_client: TestClient, cast: Cast) -> None:
    alpha, beta = cast.projects["alpha"], cast.projects["beta"]
    for project in (alpha, alpha, beta):
        platform_client.get(f"/api/v1/projects/{project}", headers=cast.auth("developer"))
    platform_client.get("/no/such/path/12345")
    response = platform_client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    route = "/api/v1/projects/{project_id}"

    def requests(method: str, route: str, status: str) -> float:
        labels = frozenset({"method": method, "route": route, "status": status}.items())
        return found.get(("largeforge_platform_http_requests_total", labels), 0)

    assert requests("GET", route, "200") == 2
    assert requests("GET", route, "404") == 1  # developer is no member of beta
    assert requests("GET", "unmatched", "404") == 1
    # raw paths never become labels
    assert alpha not in response.text and "12345" not in response.text
    count = found[
        (
            "largeforge_platform_http_request_duration_seconds_count",
            frozenset({"method": "GET", "route": route}.items()),
        )
    ]
    assert count == 3
    # this very scrape is in flight while it renders
    assert found[("largeforge_platform_http_requests_in_flight", frozenset())] == 1


def test_jobs_gauge_reads_the_queue_at_scrape_time(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    def jobs_by_state() -> dict[str, float]:
        found = samples(platform_client.get("/metrics").text)
        return {
            dict(labels)["state"]: value
            for (name, labels), value in found.items()
            if name == "largeforge_platform_jobs"
        }

    before = jobs_by_state()
    assert before["queued"] == 0 and before["running"] == 0 and set(before) >= {"succeeded", "failed"}
    with make_session_factory(platform_db)() as session:
        for state in ("queued", "queued", "running"):
            session.add(Job(project_id=cast.projects["alpha"], kind="train", spec={}, state=state))
        session.commit()
    after = jobs_by_state()
    assert after["queued"] == 2 and after["running"] == 1 and after["failed"] == 0


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Route LargeForge's records through the JSON formatter into a buffer for the test's duration."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("largeforge")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_log_lines_are_json_with_the_response_request_id(
    platform_client: TestClient, cast: Cast, json_log: io.StringIO
) -> None:
    route_log = logging.getLogger("largeforge.platform.test_route")

    # A route that logs without passing the request id: the context must supply it.
    @platform_client.app.get("/api/v1/test-observability")  # type: ignore[attr-defined]
    def noisy() -> dict[str, str]:
        route_log.info("inside the route", extra={"detail": 7})
        return {"ok": "yes"}

    response = platform_client.get("/api/v1/test-observability")
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    chosen = platform_client.get(
        "/api/v1/auth/me", headers={**cast.auth("viewer"), "X-Request-ID": "trace-42"}
    )
    assert chosen.headers["x-request-id"] == "trace-42"

    records = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    inside = next(r for r in records if r["message"] == "inside the route")
    assert inside["request_id"] == request_id and inside["detail"] == 7
    assert inside["logger"] == "largeforge.platform.test_route" and inside["level"] == "INFO"
    access = [r for r in records if r["message"] == "request"]
    mine = next(r for r in access if r["request_id"] == request_id)
    assert mine["path"] == "/api/v1/test-observability" and mine["status"] == 200
    assert mine["duration_ms"] >= 0
    assert next(r for r in access if r["request_id"] == "trace-42")["status"] == 200


def test_configure_logging_formats_every_logger() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    try:
        configure_logging("json", "INFO", stream=buffer)
        logging.getLogger("uvicorn.error").info("Started server process")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("largeforge.x").exception("failed", extra={"job_id": "j1"})
        configure_logging("text", "WARNING", stream=buffer)
        logging.getLogger("largeforge.x").info("hidden at WARNING")
        logging.getLogger("largeforge.x").warning("plain words")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    lines = buffer.getvalue().splitlines()
    started, failed = json.loads(lines[0]), json.loads(lines[1])
    assert started["logger"] == "uvicorn.error" and started["message"] == "Started server process"
    assert failed["job_id"] == "j1" and "ValueError: boom" in failed["exception"]
    assert failed["request_id"] is None
    text = [line for line in lines if "plain words" in line]
    assert len(text) == 1 and "WARNING" in text[0] and "largeforge.x" in text[0]
    assert not any("hidden at WARNING" in line for line in lines)
