"""The job queue's promise: a `largeforge worker` killed with SIGKILL mid-training loses nothing.

Its runner dies with it, the lease runs out, another worker claims the job again, the run resumes from
its newest complete checkpoint and ends with the loss of an uninterrupted run of the same recipe, and
the job's metric events hold every step exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.platform.conftest import Cast
from tests.platform.test_jobs import submit, tiny_recipe, upload_dataset
from tests.platform.test_worker import TERMINAL, assert_gone, events_of, wait_for

STEPS = 24


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    """A worker process with a short lease; LARGEFORGE_HOME/DATABASE_URL come from the test's env."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "largeforge", "worker", "--lease-seconds", "3", "--poll-interval", "0.2"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigkilled_worker_job_is_reclaimed_and_resumes_exactly(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path, largeforge_home: Path
) -> None:
    upload_dataset(platform_client, cast)
    recipe = tiny_recipe(tiny_model_dir, steps=STEPS, batch_size=8)
    recipe["checkpoints"] = {"save_steps": 4, "keep_last": 2}
    body = {"kind": "train", "spec": {"recipe": recipe}}
    victim = submit(platform_client, cast, {**body, "priority": 1}).json()
    reference = submit(platform_client, cast, body).json()  # the same recipe, never interrupted

    first = start_worker(largeforge_home / "worker-1.log")
    marker = largeforge_home / "jobs" / victim["id"] / "run" / "checkpoints" / "checkpoint-8" / "COMPLETE"
    deadline = time.monotonic() + 240
    while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), (largeforge_home / "worker-1.log").read_text()[-3000:]
    runner_pids = [e.data["pid"] for e in events_of(platform_db, victim["id"]) if e.data.get("pid")]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert runner_pids, "the worker did not report its runner's pid"
    assert_gone(runner_pids[0])  # the runner noticed its worker's death and stopped itself
    assert not (marker.parent.parent.parent / "result.json").exists(), "finished before the kill"

    second = start_worker(largeforge_home / "worker-2.log")
    try:
        resumed = wait_for(platform_client, cast, victim["id"], TERMINAL, timeout=400)
        straight = wait_for(platform_client, cast, reference["id"], TERMINAL, timeout=400)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0  # graceful stop
    assert resumed["state"] == "succeeded", resumed["error"]
    assert straight["state"] == "succeeded", straight["error"]
    assert resumed["attempts"] == 2 and straight["attempts"] == 1
    assert resumed["result"]["resumed_from"].endswith(("checkpoint-8", "checkpoint-12", "checkpoint-16"))
    assert resumed["result"]["final_loss"] == pytest.approx(straight["result"]["final_loss"], abs=1e-5)

    events = events_of(platform_db, victim["id"])
    steps = [e.data["step"] for e in events if e.type == "metric" and "loss" in e.data]
    assert sorted(steps) == list(range(1, STEPS + 1)) and len(steps) == STEPS, steps
    reclaims = [e.data for e in events if e.type == "state" and e.data.get("reclaimed_from")]
    assert len(reclaims) == 1 and reclaims[0]["state"] == "running"
