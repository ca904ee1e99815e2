"""Deployments: validation and ownership (SQLite and PostgreSQL, no processes), then one real
``largeforge serve`` replica of the tiny model shared by the module: health, the metered gateway with
the official openai client (streamed and not), the router config, crash restarts, server restarts
(reconciliation), stop/unpin/delete."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from largeforge.errors import Conflict
from largeforge.platform.app import create_platform_app
from largeforge.platform.deployments.orm import Deployment
from largeforge.platform.deployments.repository import DeploymentRepository
from largeforge.platform.deployments.supervisor import Supervisor, start_supervisor, stop_supervisor
from largeforge.platform.deps import make_session_factory
from largeforge.platform.models.service import claim_model, registry_name
from largeforge.platform.projects.orm import Project
from largeforge.platform.usage.orm import UsageRecord
from largeforge.registry.service import RegistryService
from largeforge.registry.storage import ArtifactStore, open_artifact_store
from largeforge.settings import get_settings
from tests.platform.conftest import Cast, make_cast

API = "/api/v1/projects"


def register_model(
    url: str, project_id: str, name: str, path: Path, store: ArtifactStore | None = None
) -> str:
    """Register ``path`` as the project's model ``name``; returns the registry ref of the new version."""
    with make_session_factory(url)() as session:
        project = session.get(Project, project_id)
        assert project is not None
        registry = RegistryService(session, store or open_artifact_store())
        full_name = registry_name(project, name)
        version = registry.register(path, name=full_name)
        claim_model(session, project, full_name)
        session.commit()
        return version.ref


def registry_of(url: str) -> tuple[Any, RegistryService]:
    session = make_session_factory(url)()
    return session, RegistryService(session, open_artifact_store())


def wait_for(check: Callable[[], Any], what: str, seconds: float = 120.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- without processes (both databases)


def test_only_the_projects_models_deploy_and_bad_input_says_why(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path
) -> None:
    alpha, beta = cast.projects["alpha"], cast.projects["beta"]
    register_model(platform_db, alpha, "tiny", tiny_model_dir)
    register_model(platform_db, beta, "secret", tiny_model_dir)
    url, dev = f"{API}/{alpha}/deployments", cast.auth("developer")

    assert platform_client.post(url, json={"model": "tiny"}, headers=cast.auth("viewer")).status_code == 403
    for body, status, words in [
        ({"model": "secret"}, 404, "has no model 'secret'"),  # beta's model: same answer as a missing one
        ({"model": "tiny:9"}, 404, "tiny:9 does not exist"),
        ({"model": "tiny", "replicas": 9}, 422, "replicas"),
        ({"model": "tiny", "engine": "llamacpp"}, 422, "GGUF"),
        ({"model": "tiny", "adapters": {"chat": "tiny:1"}}, 422, "not a LoRA adapter"),
        ({"model": "tiny", "adapters": {"bad name!": "tiny:1"}}, 422, "bad name!"),
        ({"model": "tiny", "surprise": 1}, 422, "surprise"),
    ]:
        response = platform_client.post(url, json=body, headers=dev)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"]["message"], (body, response.text)
    assert platform_client.get(url, headers=dev).json()["count"] == 0


def test_deployment_pins_its_version_until_stopped_or_deleted(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path
) -> None:
    alpha = cast.projects["alpha"]
    ref = register_model(platform_db, alpha, "tiny", tiny_model_dir)
    dev = cast.auth("developer")
    created = platform_client.post(
        f"{API}/{alpha}/deployments", json={"model": "tiny", "replicas": 2}, headers=dev
    )
    assert created.status_code == 201, created.text
    deployment = created.json()
    # No supervisor runs in this app: the deployment waits for one.
    assert (deployment["status"], deployment["version"], deployment["replicas"]) == ("pending", "tiny:1", 2)
    assert deployment["models"] == ["tiny"]
    assert deployment["endpoint"] == f"{API}/{alpha}/deployments/{deployment['id']}/v1"
    one = f"{API}/{alpha}/deployments/{deployment['id']}"
    session, registry = registry_of(platform_db)
    with session:
        assert registry.pins(ref) == [f"deployment:{deployment['id']}"]
        with pytest.raises(Conflict, match=f"deployed by deployment:{deployment['id']}; stop the deployment"):
            registry.delete(ref)

    chat = platform_client.post(f"{one}/v1/chat/completions", json={"messages": []}, headers=dev)
    assert chat.status_code == 503 and "no running replica" in chat.json()["error"]["message"]
    config = platform_client.get(f"{API}/{alpha}/router-config", headers=dev)
    assert config.status_code == 409 and "no running deployment" in config.json()["error"]["message"]

    stopped = platform_client.post(f"{one}/stop", headers=dev).json()
    assert (stopped["desired_state"], stopped["status"]) == ("stopped", "stopped")
    with session:
        assert registry.pins(ref) == []
    assert platform_client.post(f"{one}/start", headers=dev).json()["desired_state"] == "running"
    with session:
        assert registry.pins(ref) == [f"deployment:{deployment['id']}"]
    assert platform_client.delete(one, headers=cast.auth("viewer")).status_code == 403
    assert platform_client.delete(one, headers=dev).status_code == 204
    assert platform_client.get(one, headers=dev).status_code == 404
    with session:
        assert registry.pins(ref) == []
        registry.delete(ref)
        session.commit()


def test_other_projects_deployments_are_not_found(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path
) -> None:
    alpha, beta = cast.projects["alpha"], cast.projects["beta"]
    register_model(platform_db, alpha, "tiny", tiny_model_dir)
    created = platform_client.post(
        f"{API}/{alpha}/deployments", json={"model": "tiny"}, headers=cast.auth("developer")
    ).json()
    outsider = cast.auth("outsider")
    # Through the outsider's own project: the id does not exist there.
    for method, tail in [("GET", ""), ("POST", "/stop"), ("DELETE", ""), ("POST", "/v1/chat/completions")]:
        response = platform_client.request(
            method, f"{API}/{beta}/deployments/{created['id']}{tail}", headers=outsider
        )
        assert response.status_code == 404, (method, tail, response.text)
    assert platform_client.get(f"{API}/{beta}/deployments", headers=outsider).json()["count"] == 0
    # Through alpha: the outsider is not a member.
    assert (
        platform_client.get(f"{API}/{alpha}/deployments/{created['id']}", headers=outsider).status_code == 404
    )


def test_a_stop_that_a_dead_server_never_finished_is_settled(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    alpha = cast.projects["alpha"]
    register_model(platform_db, alpha, "tiny", tiny_model_dir)
    created = platform_client.post(
        f"{API}/{alpha}/deployments", json={"model": "tiny"}, headers=cast.auth("developer")
    ).json()
    factory = make_session_factory(platform_db)
    with factory() as session:  # as a server left it when it died mid-stop
        row = session.get(Deployment, created["id"])
        assert row is not None
        row.desired_state, row.status = "stopped", "stopping"
        row.supervisor_id, row.supervisor_seen_at = "gone:1:x", datetime.now(UTC) - timedelta(hours=1)
        replica = DeploymentRepository(session).add_replica(row.id, 0)
        replica.status, replica.pid, replica.endpoint = "running", 999999, "http://127.0.0.1:9"
        session.commit()
    supervisor = Supervisor(factory, database_url=platform_db, home=tmp_path)
    try:
        supervisor.reconcile()  # starts nothing: the only deployment should not run
    finally:
        supervisor.stop()
    after = platform_client.get(
        f"{API}/{alpha}/deployments/{created['id']}", headers=cast.auth("viewer")
    ).json()
    assert after["status"] == "stopped"
    assert [(r["status"], r["pid"], r["endpoint"]) for r in after["instances"]] == [("stopped", None, None)]


# ---------------------------------------------------------------- one real replica (SQLite)


@dataclass
class Live:
    """A server with the supervisor running, over one SQLite database, and one deployment of ``tiny``."""

    url: str
    home: Path
    cast: Cast = field(default_factory=Cast)
    deployment_id: str = ""
    version_ref: str = ""
    stack: ExitStack = field(default_factory=ExitStack)
    client: TestClient | None = None

    @property
    def alpha(self) -> str:
        return self.cast.projects["alpha"]

    @property
    def path(self) -> str:
        return f"{API}/{self.alpha}/deployments/{self.deployment_id}"

    def open(self) -> TestClient:
        # Each test has its own LARGEFORGE_HOME (tests/conftest.py); this server keeps the module's.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LARGEFORGE_HOME", str(self.home))
            get_settings.cache_clear()
            return self._open()

    def _open(self) -> TestClient:
        app = create_platform_app(
            database_url=self.url, startup=[start_supervisor], shutdown=[stop_supervisor]
        )
        self.client = self.stack.enter_context(TestClient(app, base_url="http://127.0.0.1"))
        return self.client

    def restart(self) -> TestClient:
        """Shut the server down (its replicas stop) and start a new one on the same database."""
        self.stack.close()
        self.stack = ExitStack()
        return self.open()

    def get(self, who: str = "viewer") -> dict[str, Any]:
        assert self.client is not None
        response = self.client.get(self.path, headers=self.cast.auth(who))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_running(self) -> dict[str, Any]:
        def running() -> dict[str, Any] | None:
            deployment = self.get()
            return deployment if deployment["status"] == "running" else None

        try:
            return dict(wait_for(running, "the deployment to run"))
        except AssertionError:
            raise AssertionError(f"not running: {self.get()}") from None

    def internal_key(self) -> str:
        with make_session_factory(self.url)() as session:
            return session.scalars(
                select(Deployment.internal_key).where(Deployment.id == self.deployment_id)
            ).one()

    def openai(self, who: str = "developer") -> Any:
        import openai

        assert self.client is not None
        return openai.OpenAI(
            base_url=f"http://127.0.0.1{self.path}/v1",
            api_key=self.cast.keys[who],
            http_client=self.client,
            max_retries=0,
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("deployments-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("LARGEFORGE_HOME", str(home))
    get_settings.cache_clear()
    live = Live(url=f"sqlite:///{home / 'largeforge.db'}", home=home)
    try:
        client = live.open()
        with make_session_factory(live.url)() as session:
            live.cast = make_cast(session)
        live.version_ref = register_model(
            live.url, live.alpha, "tiny", tiny_model_dir, ArtifactStore(str(home / "artifacts"))
        )
        created = client.post(
            f"{API}/{live.alpha}/deployments",
            json={"model": "tiny", "max_num_seqs": 4, "max_model_len": 128},
            headers=live.cast.auth("developer"),
        )
        assert created.status_code == 201, created.text
        live.deployment_id = created.json()["id"]
        live.wait_running()
        yield live
    finally:
        live.stack.close()
        patch.undo()
        get_settings.cache_clear()
        from largeforge.db import dispose_engines

        dispose_engines()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_replica_is_a_healthy_process_that_needs_the_internal_key(live: Live) -> None:
    deployment = live.get()
    (replica,) = deployment["instances"]
    assert (replica["status"], replica["healthy"], replica["restarts"]) == ("running", True, 0)
    assert replica["endpoint"].startswith("http://127.0.0.1:") and _alive(replica["pid"])
    assert httpx.get(f"{replica['endpoint']}/v1/models").status_code == 401
    answer = httpx.get(
        f"{replica['endpoint']}/v1/models", headers={"Authorization": f"Bearer {live.internal_key()}"}
    )
    assert answer.status_code == 200 and [m["id"] for m in answer.json()["data"]] == ["tiny"]


@pytest.mark.slow
def test_openai_client_through_the_gateway_is_metered_streamed_or_not(live: Live) -> None:
    client = live.openai()
    assert [model.id for model in client.models.list()] == ["tiny"]
    request: dict[str, Any] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hello world"}],
        "max_tokens": 6,
        "temperature": 0,
    }
    plain = client.chat.completions.create(**request)
    assert plain.usage is not None and plain.usage.completion_tokens > 0
    expected = (plain.usage.prompt_tokens, plain.usage.completion_tokens)

    # Streamed without asking for usage: the gateway still meters it, and the client sees no usage chunk.
    chunks = list(client.chat.completions.create(**request, stream=True))
    assert chunks and all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain.choices[0].message.content
    # Streamed asking for usage: the client gets it, as OpenAI sends it (a last chunk without choices).
    asked = list(
        client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    )
    assert asked[-1].choices == [] and asked[-1].usage is not None
    assert (asked[-1].usage.prompt_tokens, asked[-1].usage.completion_tokens) == expected

    with make_session_factory(live.url)() as session:
        rows = session.scalars(
            select(UsageRecord).where(UsageRecord.endpoint == "chat/completions").order_by(UsageRecord.id)
        ).all()
        recorded = [(r.prompt_tokens, r.completion_tokens, r.streamed, r.status_code) for r in rows[-3:]]
        assert recorded == [(*expected, False, 200), (*expected, True, 200), (*expected, True, 200)]
        assert {(r.api_key_id, r.deployment_id, r.model, r.user_id) for r in rows[-3:]} == {
            (rows[-1].api_key_id, live.deployment_id, "tiny", live.cast.user_ids["developer"])
        }
    summary = live.client.get(  # type: ignore[union-attr]
        f"{API}/{live.alpha}/usage", params={"group_by": "deployment"}, headers=live.cast.auth("viewer")
    ).json()
    mine = next(group for group in summary["data"] if group["group"] == live.deployment_id)
    assert mine["requests"] >= 3 and mine["total_tokens"] >= 3 * sum(expected)


@pytest.mark.slow
def test_callers_need_the_developer_role_and_membership(live: Live) -> None:
    import openai

    with pytest.raises(openai.PermissionDeniedError):
        live.openai("viewer").chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.NotFoundError):
        live.openai("outsider").chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}]
        )
    assert [model.id for model in live.openai("viewer").models.list()] == ["tiny"]


@pytest.mark.slow
def test_a_keys_token_limit_is_charged_with_what_the_gateway_metered(live: Live) -> None:
    import openai

    assert live.client is not None
    created = live.client.post(
        "/api/v1/keys", json={"name": "tight", "tokens_per_minute": 3}, headers=live.cast.auth("developer")
    )
    assert created.status_code == 201, created.text
    client = live.openai()
    client.api_key = created.json()["key"]
    first = client.completions.create(model="tiny", prompt="hello world", max_tokens=4)
    assert first.usage is not None and first.usage.total_tokens > 3  # served, then charged
    with pytest.raises(openai.RateLimitError, match="token limit of 3 tokens/min"):
        client.completions.create(model="tiny", prompt="hello", max_tokens=4)
    summary = live.client.get(
        f"{API}/{live.alpha}/usage", params={"group_by": "key"}, headers=live.cast.auth("viewer")
    ).json()
    tight = next(group for group in summary["data"] if group["group"] == created.json()["id"])
    assert (tight["requests"], tight["total_tokens"]) == (1, first.usage.total_tokens)
    assert tight["label"].endswith(" tight")


@pytest.mark.slow
def test_router_config_is_valid_for_the_router(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from largeforge.routing.config import load_router_config

    assert live.client is not None
    generated = live.client.get(
        f"{API}/{live.alpha}/router-config", headers=live.cast.auth("developer")
    ).json()
    for variable, value in generated["environment"].items():
        monkeypatch.setenv(variable, value)
    path = tmp_path / "experts.yaml"
    path.write_text(yaml.safe_dump(generated["config"]))
    config = load_router_config(path)
    (replica,) = live.get()["instances"]
    assert [expert.name for expert in config.experts] == ["tiny"] and config.default == "tiny"
    (upstream,) = config.experts[0].upstreams
    assert (upstream.url, upstream.model) == (f"{replica['endpoint']}/v1", "tiny")
    assert generated["environment"] == {upstream.api_key_env: live.internal_key()}
    # Viewers read the config but not the replicas' keys.
    seen = live.client.get(f"{API}/{live.alpha}/router-config", headers=live.cast.auth("viewer")).json()
    assert seen["environment"] is None and seen["config"] == generated["config"]


@pytest.mark.slow
def test_a_killed_replica_is_restarted(live: Live) -> None:
    (before,) = live.get()["instances"]
    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        (replica,) = live.get()["instances"]
        return replica if replica["restarts"] == 1 and replica["status"] == "running" else None

    after = wait_for(restarted, "the killed replica to be restarted")
    assert after["pid"] != before["pid"] and "exited with code -9" in (after["last_error"] or "")
    answer = live.openai().completions.create(model="tiny", prompt="hello", max_tokens=2)
    assert answer.usage is not None and answer.usage.completion_tokens > 0


@pytest.mark.slow
def test_a_restarted_server_starts_the_deployments_again(live: Live) -> None:
    (before,) = live.wait_running()["instances"]
    live.restart()  # the old server stopped its replica on the way down
    assert not _alive(before["pid"])
    (after,) = live.wait_running()["instances"]
    assert after["pid"] != before["pid"] and _alive(after["pid"])


@pytest.mark.slow
def test_stop_ends_the_process_and_unpins_then_delete(live: Live) -> None:
    assert live.client is not None
    (replica,) = live.get()["instances"]
    dev = live.cast.auth("developer")
    assert live.client.post(f"{live.path}/stop", headers=dev).json()["desired_state"] == "stopped"
    wait_for(lambda: live.get()["status"] == "stopped", "the deployment to stop", 30)
    assert not _alive(replica["pid"])
    assert live.get()["instances"][0]["status"] == "stopped"
    with make_session_factory(live.url)() as session:
        registry = RegistryService(session, ArtifactStore(str(live.home / "artifacts")))
        assert registry.pins(live.version_ref) == []
        registry.delete(live.version_ref)
        session.commit()
    # Its version is gone: it cannot start again, and says so.
    refused = live.client.post(f"{live.path}/start", headers=dev)
    assert refused.status_code == 409 and "create a new deployment" in refused.json()["error"]["message"]
    assert live.client.delete(live.path, headers=dev).status_code == 204
