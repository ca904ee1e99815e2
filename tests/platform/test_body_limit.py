"""Request bodies are capped everywhere but the streamed dataset upload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from largeforge.platform.app import create_platform_app
from largeforge.settings import get_settings
from tests.platform.conftest import Cast


@pytest.fixture
def small_body_client(platform_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LARGEFORGE_MAX_REQUEST_BYTES", "4096")
    get_settings.cache_clear()
    with TestClient(create_platform_app(database_url=platform_db), base_url="http://127.0.0.1") as client:
        yield client
    get_settings.cache_clear()


def test_oversized_bodies_are_413_declared_or_chunked(small_body_client: TestClient, cast: Cast) -> None:
    huge = {"name": "x" * 10_000}
    declared = small_body_client.post("/api/v1/projects", json=huge, headers=cast.auth("owner"))
    assert declared.status_code == 413 and "4096 bytes" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    chunked = small_body_client.post(
        "/api/v1/projects",
        content=chunks(),
        headers={**cast.auth("owner"), "content-type": "application/json"},
    )
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large"
    fine = small_body_client.post("/api/v1/projects", json={"name": "small"}, headers=cast.auth("owner"))
    assert fine.status_code == 201
    # the dataset upload keeps its own, larger limit
    upload = small_body_client.post(
        f"/api/v1/projects/{cast.projects['alpha']}/datasets",
        files={"file": ("rows.jsonl", b'{"text": "' + b"y" * 8000 + b'"}\n')},
        data={"name": "big-rows"},
        headers=cast.auth("developer"),
    )
    assert upload.status_code != 413, upload.text
