"""Workers running real jobs on the tiny model: a train job end to end (events, metrics, registration
owned by the project), a permanent failure, cancellation that reaches the running process, a graceful
stop that hands the job back, and the Ray executor on a local Ray instance."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from largeforge.platform.deps import make_session_factory
from largeforge.platform.jobs.executors import Executor
from largeforge.platform.jobs.orm import JobEvent
from largeforge.platform.jobs.worker import Worker
from tests.platform.conftest import Cast
from tests.platform.test_jobs import jobs_url, submit, tiny_recipe, upload_dataset

TERMINAL = {"succeeded", "failed", "cancelled"}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def wait_for(
    client: TestClient, cast: Cast, job_id: str, states: set[str], timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{jobs_url(cast)}/{job_id}", headers=cast.auth("viewer")).json()
        if job["state"] in states:
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is still {job['state']} after {timeout}s: {job}")


def events_of(platform_db: str, job_id: str) -> list[JobEvent]:
    with make_session_factory(platform_db)() as session:
        return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))


@pytest.fixture
def make_worker(platform_db: str, cast: Cast) -> Iterator[Any]:
    workers: list[Worker] = []

    def build(executor: Executor | None = None, lease_seconds: float = 6.0) -> Worker:
        worker = Worker(
            make_session_factory(platform_db),
            executor=executor,
            lease_seconds=lease_seconds,
            poll_seconds=0.1,
            backoff_seconds=0,
            worker_id=f"test-{len(workers)}",
        )
        worker.start()
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.stop(grace_seconds=2)


def test_worker_trains_registers_and_reports(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path, make_worker: Any
) -> None:
    upload_dataset(platform_client, cast)
    recipe = {**tiny_recipe(tiny_model_dir, steps=4), "register_as": {"name": "tiny-sft"}}
    job = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": recipe}}).json()
    make_worker()
    done = wait_for(platform_client, cast, job["id"], TERMINAL)
    assert done["state"] == "succeeded", done["error"]
    assert done["attempts"] == 1 and done["worker_info"]["cpus"] == os.cpu_count()
    result = done["result"]
    assert result["steps"] == 4 and math.isfinite(result["final_loss"])
    assert result["registered"].endswith("tiny-sft:1")
    # The registered model is the project's: its models list shows it under the name the recipe used.
    models = platform_client.get(
        f"/api/v1/projects/{cast.projects['alpha']}/models", headers=cast.auth("viewer")
    )
    assert "tiny-sft" in models.text
    events = events_of(platform_db, job["id"])
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    states = [e.data["state"] for e in events if e.type == "state"]
    assert states == ["queued", "running", "succeeded"]
    losses = [e.data["step"] for e in events if e.type == "metric" and "loss" in e.data]
    assert losses == [1, 2, 3, 4]
    progress = [e.data for e in events if e.type == "progress"]
    assert progress[0]["event"] == "start" and progress[-1]["event"] == "finish"
    assert progress[-1]["completed"] == 4


@sqlite_only
def test_embedded_worker_hooks_run_jobs_and_permanent_errors_fail_without_retries(
    platform_db: str, cast: Cast, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from largeforge.platform.app import create_platform_app
    from largeforge.platform.jobs.worker import start_embedded_worker, stop_embedded_worker

    app = create_platform_app(
        database_url=platform_db, startup=[start_embedded_worker], shutdown=[stop_embedded_worker]
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert isinstance(app.state.job_worker, Worker)
        upload_dataset(client, cast)
        not_a_model = tmp_path / "empty-model"
        not_a_model.mkdir()
        job = submit(client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(not_a_model)}}).json()
        done = wait_for(client, cast, job["id"], TERMINAL)
    assert app.state.job_worker is None  # the shutdown hook stopped it
    assert done["state"] == "failed" and done["attempts"] == 1
    assert str(not_a_model) in done["error"]


def running_pid(worker: Worker, job_id: str, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempt = worker._attempts.get(job_id)
        if attempt is not None:
            return int(attempt.execution.pid)  # type: ignore[attr-defined]
        time.sleep(0.05)
    raise AssertionError("the job never started")


def assert_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still alive")


def wait_for_progress(platform_db: str, job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.type == "progress" and e.data.get("completed") for e in events_of(platform_db, job_id)):
            return
        time.sleep(0.2)
    raise AssertionError("no training step was reported")


@sqlite_only
def test_cancel_reaches_the_running_process_and_stop_hands_jobs_back(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path, make_worker: Any
) -> None:
    upload_dataset(platform_client, cast)
    long_recipe = tiny_recipe(tiny_model_dir, steps=100_000)
    first = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": long_recipe}}).json()
    worker = make_worker(lease_seconds=3)
    pid = running_pid(worker, first["id"])
    wait_for_progress(platform_db, first["id"])
    url = f"{jobs_url(cast)}/{first['id']}"
    flagged = platform_client.post(f"{url}/cancel", headers=cast.auth("developer")).json()
    assert flagged["state"] == "running" and flagged["cancel_requested"] is True
    done = wait_for(platform_client, cast, first["id"], TERMINAL, timeout=60)
    assert done["state"] == "cancelled"
    assert_gone(pid)

    second = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": long_recipe}}).json()
    pid = running_pid(worker, second["id"])
    worker.stop(grace_seconds=2)
    assert_gone(pid)
    handed_back = platform_client.get(f"{jobs_url(cast)}/{second['id']}", headers=cast.auth("viewer")).json()
    assert (handed_back["state"], handed_back["attempts"], handed_back["lease_owner"]) == ("queued", 0, None)


@pytest.mark.slow
@sqlite_only
def test_ray_executor_runs_a_job_on_a_local_ray_instance(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path, make_worker: Any
) -> None:
    pytest.importorskip("ray", reason="the ray executor needs the [ray] extra")
    from largeforge.platform.jobs.executors.ray import RayExecutor

    upload_dataset(platform_client, cast)
    job = submit(
        platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir, 2)}}
    ).json()
    make_worker(executor=RayExecutor(num_cpus=0.5), lease_seconds=30)
    done = wait_for(platform_client, cast, job["id"], TERMINAL, timeout=400)
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["steps"] == 2
    losses = [
        e.data["step"] for e in events_of(platform_db, job["id"]) if e.type == "metric" and "loss" in e.data
    ]
    assert losses == [1, 2]


SUITE = {
    "name": "tiny-json",
    "generation": {"max_tokens": 4, "temperature": 0},
    "cases": [
        {"id": "one", "prompt": "Maria Lopez, 34, lives in Lisbon.", "expected": '{"name": "Maria Lopez"}'},
        {"id": "two", "prompt": "hello world", "expected": '{"name": "Ana"}'},
    ],
    "checks": [{"type": "json", "name": "json_valid"}],
}


@sqlite_only
def test_pipeline_trains_evaluates_gates_promotes_and_deploys(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path, make_worker: Any
) -> None:
    upload_dataset(platform_client, cast)
    spec = {
        "recipe": tiny_recipe(tiny_model_dir, steps=2),
        "suite": SUITE,
        "gate": {"pass_rate": 0.0},
        "register": {"name": "piped", "alias": "production"},
        "deploy": {"replicas": 1},
    }
    job = submit(platform_client, cast, {"kind": "pipeline", "spec": spec}).json()
    make_worker(lease_seconds=20)
    done = wait_for(platform_client, cast, job["id"], TERMINAL, timeout=300)
    assert done["state"] == "succeeded", done["error"]
    result = done["result"]
    assert result["gate_passed"] is True and result["alias_moved"] is True
    assert result["registered"].endswith("piped:1") and result["train"]["steps"] == 2
    deployments = platform_client.get(
        f"/api/v1/projects/{cast.projects['alpha']}/deployments", headers=cast.auth("viewer")
    )
    assert result["deployment"] in deployments.text and "piped" in deployments.text
    stages = [
        e.data["message"]
        for e in events_of(platform_db, job["id"])
        if e.type == "log" and "stage" in str(e.data)
    ]
    assert stages == ["stage: train", "stage: evaluate", "stage: gate"]

    # A gate the model cannot pass fails the pipeline for good: nothing is promoted or deployed.
    strict = {**spec, "gate": {"pass_rate": 1.5}, "register": {"name": "piped", "alias": "strict"}}
    failing = submit(platform_client, cast, {"kind": "pipeline", "spec": strict}).json()
    failed = wait_for(platform_client, cast, failing["id"], TERMINAL, timeout=300)
    assert failed["state"] == "failed" and failed["attempts"] == 1 and "gate failed" in failed["error"]


@sqlite_only
def test_evaluate_and_export_jobs_use_the_projects_models(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path, make_worker: Any
) -> None:
    upload_dataset(platform_client, cast)
    recipe = {**tiny_recipe(tiny_model_dir, steps=2), "register_as": {"name": "tiny-sft"}}
    trained = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": recipe}}).json()
    evaluation = submit(
        platform_client, cast, {"kind": "evaluate", "spec": {"suite": SUITE, "model": "tiny-sft"}}
    )
    assert evaluation.status_code == 404  # not registered yet: the project has no such model
    make_worker(lease_seconds=20)
    assert wait_for(platform_client, cast, trained["id"], TERMINAL)["state"] == "succeeded"

    evaluation = submit(
        platform_client, cast, {"kind": "evaluate", "spec": {"suite": SUITE, "model": "tiny-sft:1"}}
    )
    export = submit(
        platform_client, cast, {"kind": "export", "spec": {"format": "merged", "model": "tiny-sft:1"}}
    )
    assert evaluation.status_code == 201 and export.status_code == 201, (evaluation.text, export.text)
    evaluated = wait_for(platform_client, cast, evaluation.json()["id"], TERMINAL)
    assert evaluated["state"] == "succeeded", evaluated["error"]
    summary = evaluated["result"]["summary"]
    assert summary["cases"] == 2 and set(summary["checks"]) == {"json_valid"}
    assert evaluated["result"]["version"].endswith("tiny-sft:1")
    exported = wait_for(platform_client, cast, export.json()["id"], TERMINAL)
    assert exported["state"] == "succeeded", exported["error"]
    assert exported["result"]["registered"].endswith("tiny-sft-merged:1")
    models = platform_client.get(
        f"/api/v1/projects/{cast.projects['alpha']}/models", headers=cast.auth("viewer")
    )
    assert "tiny-sft-merged" in models.text
    # Another project cannot name alpha's model.
    beta = platform_client.post(
        f"/api/v1/projects/{cast.projects['beta']}/jobs",
        json={"kind": "export", "spec": {"format": "merged", "model": "tiny-sft:1"}},
        headers=cast.auth("outsider"),
    )
    assert beta.status_code == 404
