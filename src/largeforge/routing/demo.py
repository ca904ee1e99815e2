"""The quickstart's routing stage: two adapters of one model as two experts behind the router.

Starts ``largeforge serve MODEL --adapter NAME=PATH ...`` and ``largeforge router`` as child
processes on free loopback ports, sends each expert's demo prompt with ``model: "auto"`` through
:class:`~largeforge.clients.RouterClient`, and reports which expert the router chose and why. Both
processes are stopped before it returns, whatever happens. It is a caller of the router like any
client; it adds no routing logic.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from largeforge.errors import Unavailable


@dataclass(frozen=True)
class DemoExpert:
    """One expert of the demo: an adapter plus what should route to it."""

    name: str
    adapter: Path
    description: str
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    prompt: str = ""  # the demo request that should reach this expert


@dataclass(frozen=True)
class DemoRow:
    prompt: str
    expected: str
    expert: str
    decision: str
    reason: str
    answer: str


def run_router_demo(
    model_dir: Path,
    experts: Sequence[DemoExpert],
    workdir: Path,
    *,
    classifier: str = "hybrid",
    max_tokens: int = 24,
) -> list[DemoRow]:
    """Serve ``model_dir`` with every expert's adapter, route each demo prompt with ``model: auto``.

    The first expert is the default (abstentions go there). Use ``classifier="keyword"`` where the
    routing extra (the embedding model) is not installed.

    Returns:
        One row per expert with a prompt: expected vs chosen expert, the reason, the answer.

    Raises:
        Unavailable: a server did not start (its last stderr lines are in the message).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    serve_command = [sys.executable, "-m", "largeforge", "serve", str(model_dir)]
    for expert in experts:
        serve_command += ["--adapter", f"{expert.name}={expert.adapter}"]
    with child_server([*serve_command, "--port"], "/health", workdir / "serve.log") as server_url:
        document = {
            "default": experts[0].name,
            "classifier": {"type": classifier},
            "decisions": {"path": str(workdir / "decisions.jsonl")},
            "experts": [
                {
                    "name": e.name,
                    "description": e.description,
                    "keywords": list(e.keywords),
                    "examples": list(e.examples),
                    "upstreams": [{"url": f"{server_url}/v1", "model": e.name}],
                }
                for e in experts
            ],
        }
        config = workdir / "experts.yaml"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        router_command = [sys.executable, "-m", "largeforge", "router", "--config", str(config), "--port"]
        with child_server(router_command, "/health", workdir / "router.log") as router_url:
            return _ask(f"{router_url}/v1", experts, max_tokens)


def _ask(router_v1: str, experts: Sequence[DemoExpert], max_tokens: int) -> list[DemoRow]:
    from largeforge.clients import RouterClient

    rows = []
    with RouterClient(router_v1, max_retries=0) as client:
        for expert in experts:
            if not expert.prompt:
                continue
            answer = client.routed_chat(expert.prompt, max_tokens=max_tokens, temperature=0)
            rows.append(
                DemoRow(
                    expert.prompt, expert.name, answer.expert, answer.decision, answer.reason, answer.text
                )
            )
    return rows


@contextmanager
def child_server(command: list[str], probe: str, log_file: Path) -> Iterator[str]:
    """Run ``command + [port]`` until the block ends; yields ``http://127.0.0.1:PORT``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    with log_file.open("wb") as log:
        process = subprocess.Popen([*command, str(port)], stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(process, f"{url}{probe}", log_file)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(process: subprocess.Popen[Any], probe: str, log_file: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(
                f"{probe} never came up (exit code {process.returncode}): {log_file.read_text()[-1500:]}"
            )
        try:
            httpx.get(probe, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise Unavailable(f"{probe} did not answer within {seconds:.0f} s; see {log_file}")


__all__ = ["DemoExpert", "DemoRow", "child_server", "run_router_demo"]
