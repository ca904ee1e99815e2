"""The clients reuse the router's process fixtures (fake upstreams and the router itself), and run the
control plane under a real uvicorn on a free loopback port for the PlatformClient and the remote CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _free_port
from tests.platform.conftest import Cast, make_cast
from tests.routing.conftest import fake_upstream, router_process


@dataclass
class LivePlatform:
    """A control plane answering at ``url``; ``cast`` holds its users, keys and projects."""

    url: str
    cast: Cast
    database_url: str
    app: Any


def start_platform(
    database_url: str,
    startup: list[Callable[[Any], Any]] | None = None,
    shutdown: list[Callable[[Any], Any]] | None = None,
) -> tuple[Any, threading.Thread, str]:
    """uvicorn serving ``create_platform_app`` in a thread; returns (server, thread, url) once it is ready."""
    import uvicorn

    from largeforge.platform.app import create_platform_app

    app = create_platform_app(database_url=database_url, startup=startup, shutdown=shutdown)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="platform-uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return server, thread, url
        except httpx.TransportError:
            pass  # not listening yet
        if not thread.is_alive():
            break
        time.sleep(0.05)
    server.should_exit = True
    raise RuntimeError(f"the control plane did not become ready at {url}")


def _run_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, with_worker: bool
) -> Iterator[LivePlatform]:
    from largeforge.db import dispose_engines
    from largeforge.platform.deps import make_session_factory
    from largeforge.settings import get_settings

    database_url = f"sqlite:///{tmp_path / 'platform.db'}"
    # The job runner's subprocesses (dataset store, registry) must see the same database.
    monkeypatch.setenv("LARGEFORGE_DATABASE_URL", database_url)
    monkeypatch.setenv("LARGEFORGE_JOB_POLL_SECONDS", "0.2")
    get_settings.cache_clear()
    hooks: tuple[list[Callable[[Any], Any]] | None, list[Callable[[Any], Any]] | None] = (None, None)
    if with_worker:
        from largeforge.platform.jobs.worker import start_embedded_worker, stop_embedded_worker

        hooks = ([start_embedded_worker], [stop_embedded_worker])
    server, thread, url = start_platform(database_url, *hooks)
    try:
        with make_session_factory(database_url)() as session:
            cast = make_cast(session)
        yield LivePlatform(url=url, cast=cast, database_url=database_url, app=server.config.app)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        dispose_engines()
        get_settings.cache_clear()


@pytest.fixture
def live_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LivePlatform]:
    """The control plane over a fresh SQLite file, with the cast of tests/platform/conftest.py; no worker,
    so submitted jobs stay queued."""
    yield from _run_platform(tmp_path, monkeypatch, with_worker=False)


@pytest.fixture
def working_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LivePlatform]:
    """The same with the embedded worker: submitted jobs run (in subprocesses, as in `largeforge server`)."""
    yield from _run_platform(tmp_path, monkeypatch, with_worker=True)


__all__ = [
    "LivePlatform",
    "fake_upstream",
    "live_platform",
    "router_process",
    "start_platform",
    "working_platform",
]
