"""The remote commands (``largeforge --server URL …``) through CliRunner against a real control plane
under uvicorn: exit codes, --json documents, the server's messages instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from largeforge.cli.main import app
from largeforge.settings import get_settings
from tests.clients.conftest import LivePlatform, live_platform, working_platform
from tests.clients.test_platform_client import SFT_DATA, tiny_recipe
from tests.platform.conftest import PASSWORD

__all__ = ["live_platform", "working_platform"]

runner = CliRunner()


def remote(
    platform: LivePlatform, *args: str, key_env: str = "LF_TEST_KEY", stdin: str | None = None
) -> Result:
    return runner.invoke(app, ["--server", platform.url, "--api-key-env", key_env, *args], input=stdin)


def test_projects_create_and_list_as_json_and_tables(
    live_platform: LivePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LF_TEST_KEY", live_platform.cast.keys["developer"])
    created = remote(live_platform, "projects", "create", "delta", "--description", "via the CLI", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["role"] == "owner"
    listed = remote(live_platform, "projects", "list", "--json")
    assert {p["name"]: p["role"] for p in json.loads(listed.stdout)} == {
        "alpha": "developer",
        "delta": "owner",
    }
    table = remote(live_platform, "projects", "list")
    assert table.exit_code == 0 and "delta" in table.stdout and "developer" in table.stdout
    members = remote(live_platform, "projects", "members", "alpha", "--json")
    assert {m["email"] for m in json.loads(members.stdout)} >= {"owner@example.com", "developer@example.com"}


def test_server_errors_are_messages_and_exit_codes(
    live_platform: LivePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LF_TEST_KEY", live_platform.cast.keys["viewer"])
    denied = remote(
        live_platform, "projects", "add-member", "alpha", "outsider@example.com", "--role", "viewer"
    )
    assert denied.exit_code == 1
    assert "needs the admin role in project alpha; you have viewer" in denied.output
    assert "Traceback" not in denied.output
    hidden = remote(live_platform, "projects", "members", "beta", "--json")
    assert hidden.exit_code == 1 and json.loads(hidden.stdout)["error"]["code"] == "not_found"
    usage = remote(live_platform, "jobs", "list")  # --project missing: a usage error
    assert usage.exit_code == 2


def test_missing_server_key_or_file_say_what_to_do(
    live_platform: LivePlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LARGEFORGE_SERVER_URL", raising=False)
    monkeypatch.delenv("LARGEFORGE_API_KEY", raising=False)
    get_settings.cache_clear()
    no_server = runner.invoke(app, ["projects", "list"])
    assert no_server.exit_code == 1 and "--server URL" in no_server.output
    no_key = runner.invoke(app, ["--server", live_platform.url, "projects", "list"])
    assert no_key.exit_code == 1 and "export LARGEFORGE_API_KEY=" in no_key.output.replace("\n", " ")
    # LARGEFORGE_SERVER_URL and LARGEFORGE_API_KEY come through the settings.
    monkeypatch.setenv("LARGEFORGE_SERVER_URL", live_platform.url)
    monkeypatch.setenv("LARGEFORGE_API_KEY", live_platform.cast.keys["owner"])
    get_settings.cache_clear()
    from_settings = runner.invoke(app, ["projects", "list", "--json"])
    assert from_settings.exit_code == 0, from_settings.output
    assert [p["name"] for p in json.loads(from_settings.stdout)] == ["alpha"]
    missing = runner.invoke(app, ["jobs", "submit", str(tmp_path / "nope.yaml"), "-p", "alpha"])
    assert missing.exit_code == 1 and "no file" in missing.output
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    not_a_mapping = runner.invoke(app, ["jobs", "submit", str(tmp_path / "list.yaml"), "-p", "alpha"])
    assert not_a_mapping.exit_code == 1 and "mapping" in not_a_mapping.output
    dead = runner.invoke(app, ["--server", "http://127.0.0.1:9", "projects", "list"])
    assert dead.exit_code == 1 and "could not reach" in dead.output
    get_settings.cache_clear()


def test_login_prints_a_working_key(live_platform: LivePlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    logged = remote(
        live_platform,
        "login",
        "admin@example.com",
        "--project",
        "alpha",
        "--role",
        "developer",
        stdin=PASSWORD + "\n",
    )
    assert logged.exit_code == 0, logged.output
    line = next(line for line in logged.stdout.splitlines() if line.startswith("export LF_TEST_KEY="))
    monkeypatch.setenv("LF_TEST_KEY", line.split("=", 1)[1])
    listed = remote(live_platform, "projects", "list", "--json")
    assert [(p["name"], p["role"]) for p in json.loads(listed.stdout)] == [("alpha", "developer")]
    wrong = remote(live_platform, "login", "admin@example.com", stdin="not the password\n")
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output


def test_jobs_and_datasets_commands(
    live_platform: LivePlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    monkeypatch.setenv("LF_TEST_KEY", live_platform.cast.keys["developer"])
    uploaded = remote(live_platform, "datasets", "upload", str(SFT_DATA), "-p", "alpha", "-n", "extraction")
    assert uploaded.exit_code == 0, uploaded.output
    assert "extraction@1" in uploaded.stdout and "data.train" in uploaded.stdout
    listed = json.loads(remote(live_platform, "datasets", "list", "-p", "alpha", "--json").stdout)
    assert [(d["name"], d["versions"]) for d in listed] == [("extraction", 1)]

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(tiny_model_dir)), encoding="utf-8")
    submitted = remote(live_platform, "jobs", "submit", str(recipe), "-p", "alpha", "--name", "cli", "--json")
    assert submitted.exit_code == 0, submitted.output
    job = json.loads(submitted.stdout)
    assert (job["kind"], job["state"], job["name"]) == ("train", "queued", "cli")
    assert job["spec"]["recipe"]["training"]["max_steps"] == 4
    table = remote(live_platform, "jobs", "list", "-p", "alpha")
    assert table.exit_code == 0 and job["id"][:8] in table.stdout and "queued" in table.stdout
    status = json.loads(remote(live_platform, "jobs", "status", job["id"], "-p", "alpha", "--json").stdout)
    assert status["id"] == job["id"]
    cancelled = remote(live_platform, "jobs", "cancel", job["id"], "-p", "alpha")
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
    # Following a cancelled job ends at once with exit code 1 and the job's state.
    followed = remote(live_platform, "jobs", "follow", job["id"], "-p", "alpha")
    assert followed.exit_code == 1 and "cancelled" in followed.output
    again = remote(live_platform, "jobs", "cancel", job["id"], "-p", "alpha", "--json")
    assert again.exit_code == 1 and json.loads(again.stdout)["error"]["code"] == "conflict"
    retried = json.loads(remote(live_platform, "jobs", "retry", job["id"], "-p", "alpha", "--json").stdout)
    assert retried["state"] == "queued"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({**tiny_recipe(tiny_model_dir), "data": {"train": "nope"}}), encoding="utf-8"
    )
    refused = remote(live_platform, "jobs", "submit", str(bad), "-p", "alpha")
    assert refused.exit_code == 1 and "nope" in refused.output and "Traceback" not in refused.output


def test_deployments_commands_report_the_servers_answer(
    live_platform: LivePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LF_TEST_KEY", live_platform.cast.keys["developer"])
    empty = remote(live_platform, "deployments", "list", "-p", "alpha")
    assert empty.exit_code == 0 and "no deployments" in empty.stdout
    missing = remote(live_platform, "deployments", "create", "no-such-model", "-p", "alpha")
    assert missing.exit_code == 1 and "no-such-model" in missing.output
    malformed = remote(live_platform, "deployments", "create", "m", "-p", "alpha", "--adapter", "oops")
    assert malformed.exit_code == 1 and "NAME=REF" in malformed.output
    unknown = remote(live_platform, "deployments", "stop", "0" * 32, "-p", "alpha")
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output


@pytest.mark.slow
def test_submit_follow_shows_live_progress_until_success(
    working_platform: LivePlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    monkeypatch.setenv("LF_TEST_KEY", working_platform.cast.keys["developer"])
    remote(working_platform, "datasets", "upload", str(SFT_DATA), "-p", "alpha", "-n", "extraction")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(tiny_model_dir)), encoding="utf-8")
    followed = remote(working_platform, "jobs", "submit", str(recipe), "-p", "alpha", "--follow", "--json")
    assert followed.exit_code == 0, followed.output
    job = json.loads(followed.stdout)
    assert job["state"] == "succeeded"
    events = [json.loads(line) for line in followed.stderr.splitlines() if line.startswith("{")]
    assert [e["data"]["state"] for e in events if e["type"] == "state"] == ["queued", "running", "succeeded"]
    assert any(e["type"] == "progress" and e["data"].get("completed") == 4 for e in events)
