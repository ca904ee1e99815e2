"""PlatformClient against a real control plane under uvicorn (and the SSE reconnect logic against a
scripted transport, where a dropped connection can be staged exactly)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from largeforge.clients import (
    AuthenticationFailed,
    BadRequest,
    ConnectionFailed,
    PermissionDenied,
    PlatformClient,
    ResourceNotFound,
    StateConflict,
    WaitTimedOut,
)
from largeforge.clients._sse import parse_events
from largeforge.errors import Forbidden, NotFound
from tests.clients.conftest import LivePlatform
from tests.conftest import _free_port
from tests.platform.conftest import PASSWORD


def test_projects_keys_and_typed_errors_over_http(live_platform: LivePlatform) -> None:
    cast = live_platform.cast
    with PlatformClient(live_platform.url, api_key=cast.keys["owner"]) as owner:
        assert owner.me()["email"] == "owner@example.com"
        assert {p["name"]: p["role"] for p in owner.projects.list()} == {"alpha": "owner"}
        created = owner.projects.create("gamma", description="made by the client")
        assert created["role"] == "owner" and owner.projects.get("gamma")["id"] == created["id"]
        owner.projects.set_member("alpha", "outsider@example.com", "viewer")
        assert {m["email"] for m in owner.projects.members("alpha")} >= {"outsider@example.com"}
        with pytest.raises(StateConflict) as clash:
            owner.projects.create("gamma")
        assert clash.value.status == 409 and clash.value.request_id
        with pytest.raises(BadRequest, match="name"):
            owner.projects.create("")

        key = owner.keys.create("ci", project="alpha", role="viewer")
        assert key["key"].startswith(key["prefix"]) and key["role"] == "viewer"
        assert "ci" in {k["name"] for k in owner.keys.list()}
    with PlatformClient(live_platform.url, api_key=key["key"]) as scoped:
        assert [p["name"] for p in scoped.projects.list()] == ["alpha"]
        with pytest.raises(PermissionDenied) as denied:
            scoped.projects.set_member("alpha", "viewer@example.com", "admin")
        assert isinstance(denied.value, Forbidden) and "admin role" in denied.value.message
        with pytest.raises(ResourceNotFound) as hidden:
            scoped.projects.get("beta")
        assert isinstance(hidden.value, NotFound) and hidden.value.server_code == "not_found"
    with PlatformClient(live_platform.url, api_key=cast.keys["owner"]) as owner:
        assert owner.keys.revoke(key["id"])["revoked_at"] is not None
    with (
        PlatformClient(live_platform.url, api_key=key["key"]) as revoked,
        pytest.raises(AuthenticationFailed),
    ):
        revoked.me()


def test_login_session_sends_csrf_on_writes(live_platform: LivePlatform) -> None:
    with PlatformClient(live_platform.url) as browser:
        with pytest.raises(AuthenticationFailed, match="authentication required"):
            browser.projects.list()
        with pytest.raises(AuthenticationFailed):
            browser.login("developer@example.com", "wrong password")
        session = browser.login("developer@example.com", PASSWORD)
        assert session["email"] == "developer@example.com"
        assert [p["name"] for p in browser.projects.list()] == ["alpha"]
        # A write only passes with the CSRF token the client took from the login answer.
        assert browser.projects.create("from-session")["role"] == "owner"
        browser._csrf_token = "forged"
        with pytest.raises(PermissionDenied, match="CSRF"):
            browser.projects.create("forged")
        browser._csrf_token = session["csrf_token"]
        browser.logout()
        with pytest.raises(AuthenticationFailed):
            browser.me()


def test_a_dead_address_is_connection_failed() -> None:
    dead = PlatformClient(f"http://127.0.0.1:{_free_port()}", api_key="lf_x", timeout=2)
    with dead, pytest.raises(ConnectionFailed, match="could not reach"):
        dead.projects.list()


def test_openai_client_points_at_the_gateway_and_needs_a_key() -> None:
    with PlatformClient("http://127.0.0.1:9/api/v1", api_key="lf_abc") as client:
        gateway = client.openai_client("alpha", "dep 1")
        assert str(gateway.base_url).rstrip("/") == (
            "http://127.0.0.1:9/api/v1/projects/alpha/deployments/dep%201/v1"
        )
        assert gateway.api_key == "lf_abc"
        gateway.close()
    with PlatformClient("http://127.0.0.1:9") as keyless, pytest.raises(BadRequest, match="API key"):
        keyless.openai_client("alpha", "d")


def test_parse_events_follows_the_sse_rules() -> None:
    lines = [
        ": keep-alive",
        "id: 1",
        "event: progress",
        'data: {"step": 1}',
        "",
        "data: plain",
        "",
        "id: 3",
        'data: {"a":',
        "data: 2}",
        "",
        "id: 4",
        "data: cut",
    ]
    events = list(parse_events(lines))
    assert [(e.id, e.event, e.data) for e in events] == [
        ("1", "progress", {"step": 1}),
        (None, "message", "plain"),  # an event without an id line has none of its own
        ("3", "message", {"a": 2}),  # data lines join with newlines before decoding
    ]
    assert events[0].seq == 1


class _ScriptedJobServer:
    """The jobs API as a transport: the first event stream breaks after two events, the next one
    must ask for ``after=2`` and gets the rest; the job is running until the last event is sent."""

    def __init__(self) -> None:
        self.stream_requests: list[dict[str, Any]] = []
        self.state = "running"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            after = request.url.params.get("after")
            self.stream_requests.append(
                {"after": after, "last_event_id": request.headers.get("last-event-id")}
            )
            if after is None:
                return httpx.Response(
                    200,
                    stream=_Breaking([_sse(1, "a"), _sse(2, "b")]),
                    headers={"content-type": "text/event-stream"},
                )
            self.state = "succeeded"
            return httpx.Response(
                200, content=_sse(3, "c") + _sse(4, "done"), headers={"content-type": "text/event-stream"}
            )
        if request.url.path.endswith("/jobs/j1"):
            return httpx.Response(200, json={"id": "j1", "state": self.state})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such path"}})


def _sse(seq: int, step: str) -> bytes:
    return f'id: {seq}\nevent: progress\ndata: {{"step": "{step}"}}\n\n'.encode()


class _Breaking(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        raise httpx.ReadError("connection reset by peer")


def test_events_reconnect_from_the_last_id_and_stop_at_the_end() -> None:
    server = _ScriptedJobServer()
    with PlatformClient("http://lf.test", api_key="lf_x", transport=httpx.MockTransport(server)) as client:
        steps = [e.data["step"] for e in client.jobs.events("p", "j1", reconnect_delay=0)]
        assert steps == ["a", "b", "c", "done"]
        assert server.stream_requests == [
            {"after": None, "last_event_id": None},
            {"after": "2", "last_event_id": "2"},
        ]
        assert client.jobs.wait("p", "j1", timeout=5)["state"] == "succeeded"


def test_wait_gives_up_at_its_timeout() -> None:
    def never_ends(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, content=b": idle\n\n", headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"id": "j1", "state": "queued"})

    with (
        PlatformClient("http://lf.test", api_key="lf_x", transport=httpx.MockTransport(never_ends)) as client,
        pytest.raises(WaitTimedOut, match="keeps running"),
    ):
        client.jobs.wait("p", "j1", timeout=0.3)


def test_dataset_upload_versions_and_preview(live_platform: LivePlatform, tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": f"hello {i}"}]}
        for i in range(6)
    ]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with PlatformClient(live_platform.url, api_key=live_platform.cast.keys["developer"]) as client:
        first = client.datasets.upload("alpha", data, name="chat")
        assert (first["number"], first["row_count"], first["created"]) == (1, 6, True)
        again = client.datasets.upload("alpha", data, name="chat")
        assert again["created"] is False and again["version_id"] == first["version_id"]
        fewer = "".join(json.dumps(row) + "\n" for row in rows[:3]).encode()
        second = client.datasets.upload("alpha", _named(io.BytesIO(fewer), "fewer.jsonl"), name="chat")
        assert (second["number"], second["row_count"]) == (2, 3)
        listed = client.datasets.list("alpha")
        assert [(d["name"], d["versions"]) for d in listed] == [("chat", 2)]
        assert sorted(v["number"] for v in client.datasets.versions("alpha", "chat")) == [1, 2]
        preview = client.datasets.preview("alpha", "chat", 1, rows=2)
        assert len(preview["rows"]) == 2 and "hello 0" in json.dumps(preview["rows"][0])
        assert client.datasets.report("alpha", "chat", 1)["report"]["rows_valid"] == 6
        with pytest.raises(BadRequest, match="no file"):
            client.datasets.upload("alpha", tmp_path / "missing.jsonl", name="x")
    viewer = PlatformClient(live_platform.url, api_key=live_platform.cast.keys["viewer"])
    with viewer, pytest.raises(PermissionDenied):
        viewer.datasets.upload("alpha", data, name="chat")


def _named(handle: io.BytesIO, name: str) -> io.BytesIO:
    handle.name = name  # what an open file has: the upload's file name (and so its format) comes from it
    return handle


SFT_DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "extraction-sft.jsonl"


def tiny_recipe(model: Path, steps: int = 4) -> dict[str, Any]:
    """A few LoRA SFT steps on the nano model over the project's dataset ``extraction``."""
    return {
        "method": "sft",
        "model": str(model),
        "data": {"train": "extraction"},
        "training": {"max_steps": steps, "batch_size": 4, "learning_rate": 1e-2, "max_length": 96},
        "lora": {"r": 4},
        "checkpoints": {"save_steps": 2, "keep_last": 1},
    }


def test_jobs_submit_list_cancel_retry_without_a_worker(
    live_platform: LivePlatform, tiny_model_dir: Path
) -> None:
    with PlatformClient(live_platform.url, api_key=live_platform.cast.keys["developer"]) as client:
        client.datasets.upload("alpha", SFT_DATA, name="extraction")
        job = client.jobs.submit(
            "alpha", "train", {"recipe": tiny_recipe(tiny_model_dir)}, priority=3, name="t"
        )
        assert (job["state"], job["priority"], job["name"]) == ("queued", 3, "t")
        assert [j["id"] for j in client.jobs.list("alpha", state="queued")] == [job["id"]]
        assert client.jobs.list("alpha", state="running") == []
        assert client.jobs.logs("alpha", job["id"]) == ""
        with pytest.raises(BadRequest, match="max_steps"):
            bad = tiny_recipe(tiny_model_dir, steps=0)
            client.jobs.submit("alpha", "train", {"recipe": bad})
        with pytest.raises(ResourceNotFound):
            client.jobs.get("beta", job["id"])
        cancelled = client.jobs.cancel("alpha", job["id"])
        assert cancelled["state"] == "cancelled"
        # The stream of a finished job replays its history and ends by itself.
        events = list(client.jobs.events("alpha", job["id"]))
        assert [e.event for e in events][-1] == "end"
        assert [e.data["state"] for e in events if e.event == "state"][-1] == "cancelled"
        assert [e.seq for e in events if e.seq is not None] == sorted(
            {e.seq for e in events if e.seq is not None}
        )
        later = [
            e.seq for e in client.jobs.events("alpha", job["id"], after=events[0].seq) if e.event != "end"
        ]
        assert later == [e.seq for e in events[1:] if e.event != "end"]
        assert client.jobs.wait("alpha", job["id"], timeout=10)["state"] == "cancelled"
        with pytest.raises(StateConflict):
            client.jobs.cancel("alpha", job["id"])
        assert client.jobs.retry("alpha", job["id"])["state"] == "queued"
    with PlatformClient(live_platform.url, api_key=live_platform.cast.keys["viewer"]) as viewer:
        assert viewer.jobs.get("alpha", job["id"])["state"] == "queued"
        with pytest.raises(PermissionDenied):
            viewer.jobs.cancel("alpha", job["id"])


@pytest.mark.slow
def test_a_training_job_runs_and_is_followed_live(
    working_platform: LivePlatform, tiny_model_dir: Path
) -> None:
    with PlatformClient(working_platform.url, api_key=working_platform.cast.keys["developer"]) as client:
        client.datasets.upload("alpha", SFT_DATA, name="extraction")
        job = client.jobs.submit("alpha", "train", {"recipe": tiny_recipe(tiny_model_dir)})
        events = list(client.jobs.events("alpha", job["id"], deadline=time.monotonic() + 300))
        states = [e.data["state"] for e in events if e.event == "state"]
        assert states == ["queued", "running", "succeeded"], [e.data for e in events if e.event == "state"]
        steps = [e.data for e in events if e.event == "progress" and e.data.get("total") == 4]
        assert steps and steps[-1]["completed"] == 4
        final = client.jobs.wait("alpha", job["id"], timeout=30)
        assert final["state"] == "succeeded" and final["result"]
        assert client.jobs.logs("alpha", job["id"]) is not None
