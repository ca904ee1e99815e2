"""`largeforge server`: the real process, its readiness, JSON logs and graceful shutdown; the hooks it
runs."""

from __future__ import annotations

import http.client
import json
import signal
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from largeforge.platform import server as server_module
from largeforge.platform.auth.service import AuthService
from largeforge.platform.deps import make_session_factory
from largeforge.settings import Settings
from tests.platform.conftest import PASSWORD
from tests.platform.server_process import start_server


@pytest.mark.slow
def test_sigterm_lets_the_in_flight_request_finish_and_exits_0(tmp_path: Path, largeforge_home: Path) -> None:
    with make_session_factory(None)() as session:  # the embedded default: SQLite under LARGEFORGE_HOME
        AuthService(session).create_user("ops@example.com", PASSWORD)
        session.commit()
    server = start_server(tmp_path)
    try:
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
        assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}
        assert (largeforge_home / "largeforge.db").exists()

        # A slow request: the client sends its body in two parts, with SIGTERM in between.
        body = json.dumps({"email": "ops@example.com", "password": PASSWORD}).encode()
        connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=60)
        connection.putrequest("POST", "/api/v1/auth/login")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("X-Request-ID", "slow-login")
        connection.endheaders()
        connection.send(body[:10])
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert server.process.poll() is None, "the server quit with a request in flight"
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(f"{server.url}/health", timeout=5)
        connection.send(body[10:])
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["email"] == "ops@example.com"
        connection.close()
        assert server.process.wait(timeout=60) == 0
    finally:
        server.stop(signal.SIGKILL)

    records = server.log_records()  # every line is one JSON object
    login = next(r for r in records if r["message"] == "request" and r["request_id"] == "slow-login")
    assert login["status"] == 200 and login["path"] == "/api/v1/auth/login"
    messages = [r["message"] for r in records]
    assert messages.index("stopping: draining in-flight requests") < messages.index("stopped")
    assert "shutdown signal handled" in messages  # uvicorn's re-raised SIGTERM did not kill the process
    serving = next(r for r in records if r["message"] == "serving")
    assert serving["worker"] is True and serving["rate_limits"] == "in-process"


def test_hooks_run_at_start_and_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lf_fake_worker.py").write_text(
        "calls = []\n"
        "def start(app):\n    calls.append(('start', app.title))\n"
        "async def stop(app):\n    calls.append(('stop', app.title))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        server_module, "WORKER", server_module._HookSpec("lf_fake_worker", "start", "stop", "w")
    )
    missing = server_module._HookSpec("largeforge.platform.no_such_service", "a", "b", "not built yet")
    monkeypatch.setattr(server_module, "SUPERVISOR", missing)
    import lf_fake_worker  # type: ignore[import-not-found]

    app = server_module.build_server_app(Settings())
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        assert lf_fake_worker.calls == [("start", "LargeForge control plane")]
    assert lf_fake_worker.calls[-1] == ("stop", "LargeForge control plane")

    lf_fake_worker.calls.clear()
    with TestClient(server_module.build_server_app(Settings(), worker=False)):
        pass
    assert lf_fake_worker.calls == []  # --no-worker


def test_a_service_whose_own_imports_fail_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lf_broken_service.py").write_text("import lf_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = server_module._HookSpec("lf_broken_service", "start", "stop", "broken")
    monkeypatch.setattr(server_module, "SUPERVISOR", broken)
    with pytest.raises(ModuleNotFoundError, match="lf_dependency_that_is_not_installed"):
        server_module.build_server_app(Settings(), worker=False)


def test_an_unreachable_database_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from largeforge.cli.main import app
    from largeforge.settings import get_settings
    from tests.conftest import _free_port

    monkeypatch.setenv(
        "LARGEFORGE_DATABASE_URL", f"postgresql+psycopg://lf:secret@127.0.0.1:{_free_port()}/lf"
    )
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["server", "--port", str(_free_port())])
    assert result.exit_code == 1, result.output
    assert "cannot open the database postgresql+psycopg://lf:***@127.0.0.1" in result.stderr
    assert "secret" not in result.output and "Traceback" not in result.output
