"""Progress reporting for every long operation.

One interface, three sinks: a rich bar on a terminal, JSON lines for the control plane and the UI
(one event object per line), and silence for library callers that do not care. Code that does long
work accepts a :class:`ProgressReporter` and never decides itself how progress is shown.

    with reporter.task("Training tokenizer", total=3) as task:
        for step in steps:
            ...
            task.advance(loss=0.12)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TaskHandle(Protocol):
    def advance(self, steps: int = 1, **fields: Any) -> None:
        """Record ``steps`` units of work done; ``fields`` are live metrics (loss, tokens/s …)."""


class ProgressReporter(Protocol):
    def task(self, description: str, total: int | None = None) -> Any:
        """Context manager yielding a :class:`TaskHandle`; ``total=None`` means unknown length."""


class _NullTask:
    def advance(self, steps: int = 1, **fields: Any) -> None:
        return None


class NullProgress:
    """Reports nothing: the default for library calls."""

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[TaskHandle]:
        yield _NullTask()


class _JsonTask:
    def __init__(self, emit: Any, description: str, total: int | None) -> None:
        self._emit, self._description, self._total = emit, description, total
        self.completed = 0

    def advance(self, steps: int = 1, **fields: Any) -> None:
        self.completed += steps
        self._emit("progress", self._description, completed=self.completed, total=self._total, **fields)


class JsonLinesProgress:
    """Writes one JSON object per event: ``{"event", "task", "completed", "total", "time", ...}``."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr

    def _emit(self, event: str, task: str, **fields: Any) -> None:
        record = {"event": event, "task": task, "time": round(time.time(), 3), **fields}
        self._stream.write(json.dumps(record, default=str) + "\n")
        self._stream.flush()

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[TaskHandle]:
        handle = _JsonTask(self._emit, description, total)
        self._emit("start", description, total=total)
        yield handle
        self._emit("finish", description, completed=handle.completed, total=total)


class _RichTask:
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress, self._task_id = progress, task_id

    def advance(self, steps: int = 1, **fields: Any) -> None:
        shown = "  ".join(f"{k}={_format_metric(v)}" for k, v in fields.items())
        self._progress.update(self._task_id, advance=steps, metrics=shown)


class RichProgress:
    """A rich progress bar on stderr (stdout stays free for results and ``--json``)."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[TaskHandle]:
        columns = (
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
        )
        with Progress(*columns, console=self._console, transient=False) as progress:
            task_id = progress.add_task(description, total=total, metrics="")
            yield _RichTask(progress, task_id)
            if total is not None:
                progress.update(task_id, completed=total)


def _format_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


__all__ = ["JsonLinesProgress", "NullProgress", "ProgressReporter", "RichProgress", "TaskHandle"]
