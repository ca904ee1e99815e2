"""``largeforge quickstart --via-server``: the loop through a real ``largeforge server`` (slow), and the
replay of a job's progress events onto the local progress reporter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from largeforge.cli.main import app
from largeforge.clients import ServerEvent
from largeforge.quickstart_via_server import follow_progress


class RecordingProgress:
    """A ProgressReporter that writes down what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Any]:
        self.calls.append(("start", description, total))
        recorder = self

        class Handle:
            def advance(self, steps: int = 1, **fields: Any) -> None:
                recorder.calls.append(("advance", description, steps, fields))

        yield Handle()
        self.calls.append(("finish", description))


def progress_event(**record: Any) -> ServerEvent:
    return ServerEvent(id=None, event="progress", data=record)


def test_progress_events_replay_as_local_tasks() -> None:
    events = [
        ServerEvent(id="1", event="state", data={"state": "running"}),
        progress_event(event="start", task="Training (sft)", total=4),
        progress_event(event="progress", task="Training (sft)", completed=1, total=4, loss=2.5),
        progress_event(event="progress", task="Training (sft)", completed=3, total=4, loss=1.5),
        progress_event(event="finish", task="Training (sft)", completed=4, total=4),
        ServerEvent(id="2", event="log", data={"message": "stage: evaluate"}),
        # A task whose start was missed (a reconnect) still gets a bar; it is closed at the end.
        progress_event(event="progress", task="Evaluating", completed=2, total=5, time=1.0),
    ]
    recorder = RecordingProgress()
    follow_progress(iter(events), recorder)
    assert recorder.calls == [
        ("start", "Training (sft)", 4),
        ("advance", "Training (sft)", 1, {"loss": 2.5}),
        ("advance", "Training (sft)", 2, {"loss": 1.5}),
        ("finish", "Training (sft)"),
        ("start", "Evaluating", 5),
        ("advance", "Evaluating", 2, {}),
        ("finish", "Evaluating"),
    ]


@pytest.mark.slow
@pytest.mark.e2e
def test_quickstart_via_server_runs_the_pipeline_and_queries_the_deployment(tmp_path: Path) -> None:
    args = ["quickstart", "--via-server", "--workdir", str(tmp_path / "qs"), "--train-rows", "40"]
    args += ["--eval-rows", "5", "--sft-steps", "2", "--gate-pass-rate", "0", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    stages = {stage["name"]: stage for stage in doc["stages"]}
    assert list(stages) == ["server", "data (upload)", "base model", "pipeline", "serve + query"]
    job = stages["pipeline"]["details"]
    assert job["kind"] == "pipeline" and job["state"] == "succeeded"
    assert job["result"]["gate_passed"] is True and job["result"]["alias_moved"] is True
    assert "quickstart-sft:1 (@production → 1)" in stages["pipeline"]["summary"]
    served = stages["serve + query"]["details"]
    assert len(served["answers"]) == 5 and served["usage"]["requests"] == 5
    assert served["usage"]["total_tokens"] > 0
    # The live progress came over SSE as JSON lines on stderr (the --json reporter).
    progress = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(p["task"].startswith("Training") and p["event"] == "finish" for p in progress)
    # Server log written next to the run; the server is gone once the command returns.
    assert (tmp_path / "qs" / "server.log").exists()
