"""`largeforge server` as a real process on a free loopback port, for the operations tests.

The server inherits the test's environment (LARGEFORGE_HOME, LARGEFORGE_DATABASE_URL from the
fixtures) and writes its JSON log lines to a file the test can read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import _free_port


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_records(self) -> list[dict[str, Any]]:
        """Every log line, parsed; fails the test on a line that is not one JSON object."""
        records = []
        for line in self.log_path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                assert isinstance(record, dict), line
                records.append(record)
        return records

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    log_dir: Path, *flags: str, env: dict[str, str] | None = None, seconds: float = 120
) -> ServerProcess:
    """Start ``largeforge server --port <free> *flags`` and wait until /ready says ready."""
    port = _free_port()
    log_path = log_dir / f"server-{port}.log"
    command = [sys.executable, "-m", "largeforge", "server", "--port", str(port), *flags]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            ready = httpx.get(f"{server.url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready:
            return server
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(
        f"{server.url}/ready did not answer 200 in {seconds} s: {log_path.read_text()[-3000:]}"
    )
