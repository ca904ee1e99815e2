"""Jobs API: submission validated by the libraries that will run the spec, roles, project scoping,
filters, cancel/retry/resume rules, logs, and the server-sent event stream."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from largeforge.platform.deps import make_session_factory
from largeforge.platform.jobs.repository import JobRepository
from tests.platform.conftest import Cast

SFT_DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "extraction-sft.jsonl"


def upload_dataset(client: TestClient, cast: Cast, name: str = "extraction", project: str = "alpha") -> str:
    """The example SFT rows as the project's dataset ``name``; returns the version id."""
    response = client.post(
        f"/api/v1/projects/{cast.projects[project]}/datasets",
        files={"file": ("extraction-sft.jsonl", SFT_DATA.read_bytes(), "application/octet-stream")},
        data={"name": name},
        headers=cast.auth("developer" if project == "alpha" else "outsider"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["version_id"])


def tiny_recipe(model: Path, steps: int = 4, **training: Any) -> dict[str, Any]:
    return {
        "method": "sft",
        "model": str(model),
        "data": {"train": "extraction"},
        "training": {
            "max_steps": steps,
            "batch_size": 4,
            "learning_rate": 1e-2,
            "max_length": 96,
            **training,
        },
        "lora": {"r": 4},
        "checkpoints": {"save_steps": 2, "keep_last": 2},
    }


def jobs_url(cast: Cast, project: str = "alpha") -> str:
    return f"/api/v1/projects/{cast.projects[project]}/jobs"


def submit(client: TestClient, cast: Cast, body: dict[str, Any], who: str = "developer") -> Any:
    return client.post(jobs_url(cast), json=body, headers=cast.auth(who))


@pytest.fixture
def dataset(platform_client: TestClient, cast: Cast) -> str:
    return upload_dataset(platform_client, cast)


def test_submit_stores_the_resolved_spec(
    platform_client: TestClient, cast: Cast, dataset: str, tiny_model_dir: Path
) -> None:
    created = submit(
        platform_client,
        cast,
        {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}, "name": "t1"},
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert (job["state"], job["kind"], job["attempts"], job["max_attempts"]) == ("queued", "train", 0, 3)
    assert job["spec"]["recipe"]["data"]["train"] == dataset  # the project's name → the store's version
    assert job["created_by"] == cast.user_ids["developer"] and job["api_key_id"] is not None
    read = platform_client.get(f"{jobs_url(cast)}/{job['id']}", headers=cast.auth("viewer"))
    assert read.status_code == 200 and read.json()["name"] == "t1"


def test_bad_specs_get_422_naming_the_field(
    platform_client: TestClient, cast: Cast, tiny_model_dir: Path
) -> None:
    upload_dataset(platform_client, cast)
    recipe = tiny_recipe(tiny_model_dir)
    bad_steps = {**recipe, "training": {**recipe["training"], "max_steps": 0}}
    response = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": bad_steps}})
    assert response.status_code == 422
    assert "training.max_steps" in response.json()["error"]["message"]

    unknown_field = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": recipe, "oops": 1}})
    assert unknown_field.status_code == 422 and "spec.oops" in unknown_field.json()["error"]["message"]

    missing_data = {**recipe, "data": {"train": "no-such-dataset"}}
    not_found = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": missing_data}})
    assert not_found.status_code == 404 and "data.train" in not_found.json()["error"]["message"]

    pipeline = {"recipe": recipe, "gate": {"pass_rate": 0.5}, "register": {"name": "m"}}
    gate_alone = submit(platform_client, cast, {"kind": "pipeline", "spec": pipeline})
    assert gate_alone.status_code == 422 and "spec.suite" in gate_alone.json()["error"]["message"]

    unknown_model = submit(
        platform_client, cast, {"kind": "evaluate", "spec": {"suite": {}, "model": "ghost"}}
    )
    assert unknown_model.status_code in (404, 422)
    assert submit(platform_client, cast, {"kind": "sing", "spec": {}}).status_code == 422


def test_roles_and_projects(
    platform_client: TestClient, cast: Cast, dataset: str, tiny_model_dir: Path
) -> None:
    body = {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}}
    assert submit(platform_client, cast, body, who="viewer").status_code == 403
    job = submit(platform_client, cast, body).json()
    assert (
        platform_client.post(f"{jobs_url(cast)}/{job['id']}/cancel", headers=cast.auth("viewer")).status_code
        == 403
    )
    # another project's member, and another project's path: 404 both ways
    assert (
        platform_client.get(f"{jobs_url(cast)}/{job['id']}", headers=cast.auth("outsider")).status_code == 404
    )
    beta_path = f"{jobs_url(cast, 'beta')}/{job['id']}"
    assert platform_client.get(beta_path, headers=cast.auth("outsider")).status_code == 404
    assert (
        platform_client.get(f"{jobs_url(cast)}/{job['id']}/events", headers=cast.auth("outsider")).status_code
        == 404
    )


def test_list_filters_and_pages(
    platform_client: TestClient, cast: Cast, dataset: str, tiny_model_dir: Path
) -> None:
    ids = [
        submit(
            platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}}
        ).json()["id"]
        for _ in range(3)
    ]
    platform_client.post(f"{jobs_url(cast)}/{ids[0]}/cancel", headers=cast.auth("developer"))
    listed = platform_client.get(jobs_url(cast), headers=cast.auth("viewer")).json()
    assert listed["count"] == 3 and [j["id"] for j in listed["data"]] == ids[::-1]  # newest first
    queued = platform_client.get(
        jobs_url(cast), params={"state": "queued"}, headers=cast.auth("viewer")
    ).json()
    assert queued["count"] == 2 and {j["id"] for j in queued["data"]} == set(ids[1:])
    page = platform_client.get(
        jobs_url(cast), params={"limit": 1, "offset": 1}, headers=cast.auth("viewer")
    ).json()
    assert page["count"] == 3 and [j["id"] for j in page["data"]] == [ids[1]]
    evaluations = platform_client.get(
        jobs_url(cast), params={"kind": "evaluate"}, headers=cast.auth("viewer")
    )
    assert evaluations.json() == {"data": [], "count": 0}
    too_many = platform_client.get(jobs_url(cast), params={"limit": 501}, headers=cast.auth("viewer"))
    assert too_many.status_code == 422
    beta = platform_client.get(jobs_url(cast, "beta"), headers=cast.auth("outsider")).json()
    assert beta["count"] == 0


def test_cancel_retry_resume_rules(
    platform_client: TestClient, cast: Cast, dataset: str, tiny_model_dir: Path
) -> None:
    job = submit(
        platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}}
    ).json()
    url, dev = f"{jobs_url(cast)}/{job['id']}", cast.auth("developer")
    assert platform_client.post(f"{url}/retry", headers=dev).status_code == 409  # still queued
    cancelled = platform_client.post(f"{url}/cancel", headers=dev)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    again = platform_client.post(f"{url}/cancel", headers=dev)
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]["message"]
    retried = platform_client.post(f"{url}/retry", headers=dev).json()
    assert (retried["state"], retried["attempts"], retried["finished_at"]) == ("queued", 0, None)
    platform_client.post(f"{url}/cancel", headers=dev)
    resumed = platform_client.post(f"{url}/resume", headers=dev)
    assert resumed.status_code == 200 and resumed.json()["state"] == "queued"


def _frames(text: str) -> list[dict[str, str]]:
    frames = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            if key and not key.startswith(":"):
                fields[key] = value
        if fields:
            frames.append(fields)
    return frames


def test_event_stream_is_ordered_and_ends_at_a_terminal_state(
    platform_client: TestClient, cast: Cast, platform_db: str, dataset: str, tiny_model_dir: Path
) -> None:
    job = submit(
        platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}}
    ).json()
    factory = make_session_factory(platform_db)

    def fake_worker() -> None:
        """What a worker writes, spread over time while the client is already listening."""
        time.sleep(0.3)
        with factory() as session:
            JobRepository(session).claim("fake", 30)
            session.commit()
        for step in (1, 2, 3):
            time.sleep(0.2)
            with factory() as session:
                JobRepository(session).add_events(
                    job["id"],
                    [("progress", {"completed": step}), ("metric", {"step": step, "loss": 1.0 / step})],
                )
                session.commit()
        with factory() as session:
            JobRepository(session).complete(job["id"], "fake", {"steps": 3})
            session.commit()

    thread = threading.Thread(target=fake_worker)
    thread.start()
    url = f"{jobs_url(cast)}/{job['id']}/events"
    with platform_client.stream("GET", url, headers=cast.auth("viewer")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    thread.join()
    frames = _frames(text)
    assert frames[-1]["event"] == "end" and json.loads(frames[-1]["data"])["state"] == "succeeded"
    events = frames[:-1]
    seqs = [int(frame["id"]) for frame in events]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [frame["event"] for frame in events]
    assert kinds == ["state", "state"] + ["progress", "metric"] * 3 + ["state"]
    states = [json.loads(f["data"])["data"]["state"] for f in events if f["event"] == "state"]
    assert states == ["queued", "running", "succeeded"]

    # Reconnecting with Last-Event-ID (or ?after=) sends only what came later; the job is over, so it ends.
    resumed = platform_client.get(url, headers={**cast.auth("viewer"), "Last-Event-ID": "6"})
    later = _frames(resumed.text)
    assert [int(f["id"]) for f in later[:-1]] == list(range(7, len(seqs) + 1)) and later[-1]["event"] == "end"
    after = _frames(platform_client.get(url, params={"after": len(seqs)}, headers=cast.auth("viewer")).text)
    assert [f["event"] for f in after] == ["end"]


def test_logs_are_served_in_chunks(
    platform_client: TestClient,
    cast: Cast,
    platform_db: str,
    dataset: str,
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    job = submit(
        platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}}
    ).json()
    url = f"{jobs_url(cast)}/{job['id']}/logs"
    empty = platform_client.get(url, headers=cast.auth("viewer"))
    assert empty.status_code == 200 and empty.text == "" and empty.headers["x-next-offset"] == "0"
    factory = make_session_factory(platform_db)
    with factory() as session:
        repo = JobRepository(session)
        repo.claim("w", 30)
        repo.set_run_dir(job["id"], "w", str(tmp_path / job["id"] / "run"))
        session.commit()
    (tmp_path / job["id"]).mkdir()
    (tmp_path / job["id"] / "job.log").write_text("line one\nline two\n")
    first = platform_client.get(url, params={"limit": 9}, headers=cast.auth("viewer"))
    assert first.text == "line one\n" and first.headers["x-next-offset"] == "9"
    rest = platform_client.get(url, params={"offset": 9}, headers=cast.auth("viewer"))
    assert rest.text == "line two\n"


def test_a_job_loads_models_by_path_only_from_the_allowed_roots(
    platform_client: TestClient,
    cast: Cast,
    dataset: str,
    tiny_model_dir: Path,
    largeforge_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from largeforge.settings import get_settings

    monkeypatch.setenv("LARGEFORGE_JOB_MODEL_ROOTS", str(largeforge_home / "base-models"))
    get_settings.cache_clear()
    outside = submit(
        platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}}
    )
    assert outside.status_code == 422
    assert "outside the directories jobs may load models from" in outside.json()["error"]["message"]
    # a way out through ".." is resolved before the check
    sneaky = largeforge_home / "base-models" / ".." / ".." / tiny_model_dir.name
    escaped = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(sneaky)}})
    assert escaped.status_code == 422
    monkeypatch.setenv("LARGEFORGE_JOB_MODEL_ROOTS", str(tiny_model_dir.parent))
    get_settings.cache_clear()
    inside = submit(platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(tiny_model_dir)}})
    assert inside.status_code == 201, inside.text
    assert inside.json()["spec"]["recipe"]["model"] == str(tiny_model_dir.resolve())
    # a hub id is not a path (workers fetch it where a hub is reachable)
    hub = submit(
        platform_client, cast, {"kind": "train", "spec": {"recipe": tiny_recipe(Path("org/some-model"))}}
    )
    assert hub.status_code == 201, hub.text


def test_the_recipe_schema_is_served_to_signed_in_users(platform_client: TestClient, cast: Cast) -> None:
    from largeforge.training.recipe import recipe_json_schema

    assert platform_client.get("/api/v1/recipe-schema").status_code == 401
    served = platform_client.get("/api/v1/recipe-schema", headers=cast.auth("viewer"))
    assert served.status_code == 200 and served.json() == recipe_json_schema()
