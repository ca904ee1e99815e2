"""Following a job from a terminal: its server-sent events as live rich progress bars (people) or
JSON lines (scripts), both on stderr so stdout keeps the final result.

The worker reports progress with :class:`largeforge.progress.JsonLinesProgress` records
(``{"event": "start"|"progress"|"finish", "task", "completed", "total", …metrics}``), which arrive
here as ``progress`` events; ``state`` events mark the job's transitions, ``log`` events carry what
the runner says (``{"message": …}``: stages, registered versions, errors), ``metric`` events the
training metrics, and ``end`` closes the stream.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from largeforge.cli.output import stderr_console
from largeforge.clients import PlatformClient, ServerEvent

# Progress-record keys that are bookkeeping, not metrics worth showing next to a bar.
_RECORD_KEYS = frozenset({"event", "task", "completed", "total", "time", "stage"})
_STATE_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}


class RichJobView:
    """One bar per progress task of the job, metrics beside it, a line per state change and log message."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console or stderr_console(),
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichJobView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, event: ServerEvent) -> None:
        data = event.data if isinstance(event.data, dict) else {"message": event.data}
        console = self.progress.console
        if event.event == "progress":
            self._progress(data)
        elif event.event == "state":
            state = str(data.get("state", "?"))
            line = Text("● ", style=_STATE_STYLE.get(state, "cyan"))
            line.append(state, style=_STATE_STYLE.get(state, "cyan"))
            if data.get("attempts"):
                line.append(f" (attempt {data['attempts']})", style="dim")
            if data.get("error"):
                line.append(f" {data['error']}")
            console.print(line)
        elif event.event == "log":
            console.print(Text(str(data.get("message", data)), style="dim"))
        elif event.event == "metric":
            shown = "  ".join(f"{k}={_metric(v)}" for k, v in data.items() if k not in _RECORD_KEYS)
            if shown:
                console.print(Text(f"metrics {shown}", style="dim"))

    def _progress(self, record: dict[str, Any]) -> None:
        name = str(record.get("task") or "job")
        total = record.get("total")
        task = self._tasks.get(name)
        if task is None:
            task = self._tasks[name] = self.progress.add_task(name, total=total, metrics="")
        if record.get("event") == "finish" and total is not None:
            self.progress.update(task, completed=total, total=total)
        elif record.get("completed") is not None:
            self.progress.update(task, completed=record["completed"], total=total)
        metrics = "  ".join(f"{k}={_metric(v)}" for k, v in record.items() if k not in _RECORD_KEYS)
        if metrics:
            self.progress.update(task, metrics=metrics)


class JsonLinesJobView:
    """Each event as one JSON object per line on stderr: ``{"seq", "type", "data"}``."""

    def __enter__(self) -> JsonLinesJobView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def show(self, event: ServerEvent) -> None:
        sys.stderr.write(json.dumps({"seq": event.seq, "type": event.event, "data": event.data}) + "\n")
        sys.stderr.flush()


def follow_job(client: PlatformClient, project: str, job: str, *, json_output: bool) -> dict[str, Any]:
    """Show the job's events live until it ends; return its final state."""
    view: RichJobView | JsonLinesJobView = JsonLinesJobView() if json_output else RichJobView()
    with view:
        for event in client.jobs.events(project, job):
            view.show(event)
    return client.jobs.get(project, job)


def _metric(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = ["JsonLinesJobView", "RichJobView", "follow_job"]
