"""Where a job's runner process runs: the seam between the worker and the machine.

Both executors start the same command, ``python -m largeforge.platform.jobs.runner <job dir>``, whose
stdout is a stream of JSON-lines events and whose stderr goes to ``<job dir>/job.log``:

- ``local`` (default): a child process of the worker in its own process group;
- ``ray``: the same child started by a Ray actor on a Ray cluster (extra ``[ray]``).

A worker only sees an :class:`Execution`: lines to read, an exit code to wait for, a process to stop.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

LOG_FILE = "job.log"


def runner_command(job_dir: Path) -> list[str]:
    return [sys.executable, "-m", "largeforge.platform.jobs.runner", str(job_dir)]


class Execution(Protocol):
    def read_lines(self, timeout: float) -> list[str]:
        """Event lines written since the last call; waits up to ``timeout`` seconds for the first."""

    def returncode(self) -> int | None:
        """The exit code once the process ended and every line was read, else None."""

    def terminate(self, grace_seconds: float = 10.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace_seconds``."""


class Executor(Protocol):
    name: str

    def start(self, job_dir: Path, env: dict[str, str]) -> Execution:
        """Start the runner for the job in ``job_dir``; ``env`` is added to the environment of the
        machine it runs on (the database URL and home the runner must use)."""

    def close(self) -> None:
        """Release what the executor holds (a Ray connection)."""


def _local() -> Executor:
    from largeforge.platform.jobs.executors.local import LocalExecutor

    return LocalExecutor()


def _ray() -> Executor:
    from largeforge.platform.jobs.executors.ray import RayExecutor

    return RayExecutor()


EXECUTORS: dict[str, Callable[[], Executor]] = {"local": _local, "ray": _ray}


def make_executor(name: str) -> Executor:
    from largeforge.errors import InvalidInput

    if name not in EXECUTORS:
        raise InvalidInput(f"executor {name!r}: use one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name]()


__all__ = ["EXECUTORS", "LOG_FILE", "Execution", "Executor", "make_executor", "runner_command"]
