"""The default executor: the job's runner as a child process of the worker, in its own process group.

Cancelling signals the whole group (a runner's own children, such as data-loader workers, go too).
The runner's stdin is a pipe that the worker never writes: when the worker dies, even by SIGKILL, the
kernel closes it and the runner stops itself (see runner.py), so a job never runs twice at once after
its lease is claimed again.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from largeforge.platform.jobs.executors import LOG_FILE, runner_command

# After the runner exits, how long to wait for its stdout to close (a grandchild may still hold it).
_DRAIN_SECONDS = 5.0


class ProcessExecution:
    """One runner process: its event lines (read by a thread into a queue), exit code, and stop."""

    def __init__(self, job_dir: Path, env: dict[str, str]) -> None:
        from largeforge.settings import child_environment

        job_dir.mkdir(parents=True, exist_ok=True)
        with (job_dir / LOG_FILE).open("ab") as log:
            self.process = subprocess.Popen(
                runner_command(job_dir),
                cwd=job_dir,
                env=child_environment(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self.pid = self.process.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._eof = False
        self._exited_at: float | None = None
        threading.Thread(target=self._pump, name=f"job-stdout-{self.pid}", daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for raw in self.process.stdout:
                self._lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self._lines.put(None)

    def read_lines(self, timeout: float) -> list[str]:
        lines: list[str] = []
        try:
            item = self._lines.get(timeout=timeout)
            while True:
                if item is None:
                    self._eof = True
                else:
                    lines.append(item)
                item = self._lines.get_nowait()
        except queue.Empty:
            return lines

    def returncode(self) -> int | None:
        code = self.process.poll()
        if code is None:
            return None
        if self._exited_at is None:
            self._exited_at = time.monotonic()
        if (self._eof and self._lines.empty()) or time.monotonic() - self._exited_at > _DRAIN_SECONDS:
            self._close_stdin()
            return code
        return None

    def _close_stdin(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def terminate(self, grace_seconds: float = 10.0) -> None:
        self._signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_seconds)
        self._signal(signal.SIGKILL)  # the group: children that ignored SIGTERM, or outlived the runner
        self.process.wait()
        self._close_stdin()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.pid, signum)


class LocalExecutor:
    name = "local"

    def start(self, job_dir: Path, env: dict[str, str]) -> ProcessExecution:
        return ProcessExecution(job_dir, env)

    def close(self) -> None:
        return None


__all__ = ["LocalExecutor", "ProcessExecution"]
