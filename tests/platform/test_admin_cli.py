"""`largeforge admin`: users, keys and the audit check, straight on the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from largeforge.cli.main import app
from largeforge.platform.auth.repository import AuthRepository
from largeforge.platform.auth.secrets import verify_password
from largeforge.platform.deps import make_session_factory
from tests.platform.conftest import Cast

runner = CliRunner()


def test_create_user_from_stdin_and_from_the_prompt(platform_db: str) -> None:
    made = runner.invoke(
        app,
        ["admin", "create-user", "Root@Example.com", "--admin", "--password-stdin"],
        input="s3cret-pass\n",
    )
    assert made.exit_code == 0, made.output
    assert "created global admin root@example.com" in made.stdout
    prompted = runner.invoke(
        app, ["admin", "create-user", "dev@example.com"], input="other-pass1\nother-pass1\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert "other-pass1" not in prompted.output  # hidden input
    with make_session_factory(platform_db)() as session:
        repo = AuthRepository(session)
        root, dev = repo.user_by_email("root@example.com"), repo.user_by_email("dev@example.com")
        assert root is not None and root.is_admin and verify_password(root.password_hash, "s3cret-pass")
        assert dev is not None and not dev.is_admin and verify_password(dev.password_hash, "other-pass1")


def test_create_user_errors_are_one_line_and_exit_1(platform_db: str) -> None:
    first = runner.invoke(
        app, ["admin", "create-user", "a@example.com", "--password-stdin"], input="long-enough\n"
    )
    assert first.exit_code == 0
    cases = {
        "already exists": (["a@example.com", "--password-stdin"], "long-enough\n"),
        "password too short": (["b@example.com", "--password-stdin"], "short\n"),
        "stdin was empty": (["b@example.com", "--password-stdin"], ""),
        "is not an email address": (["not-an-email", "--password-stdin"], "long-enough\n"),
    }
    for message, (args, stdin) in cases.items():
        result = runner.invoke(app, ["admin", "create-user", *args], input=stdin)
        assert result.exit_code == 1, (message, result.output)
        assert message in result.stderr and "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)
    usage = runner.invoke(app, ["admin", "create-user"])
    assert usage.exit_code == 2


def test_create_key_prints_it_once_and_it_works(platform_client: TestClient, cast: Cast) -> None:
    result = runner.invoke(
        app, ["admin", "create-key", "developer@example.com", "--name", "ops", "--rpm", "5"]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("lf_") and "shown once" in result.stderr
    headers = {"Authorization": f"Bearer {secret}"}
    assert platform_client.get("/api/v1/auth/me", headers=headers).json()["email"] == "developer@example.com"
    listed = platform_client.get("/api/v1/keys", headers=headers).json()
    ops = next(k for k in listed if k["name"] == "ops")
    assert secret.startswith(ops["prefix"])

    scoped = runner.invoke(
        app,
        ["admin", "create-key", "developer@example.com", "--project", "alpha", "--role", "viewer", "--json"],
    )
    assert scoped.exit_code == 0, scoped.output
    document = json.loads(scoped.stdout)
    assert document["project_id"] == cast.projects["alpha"] and document["role"] == "viewer"
    scoped_headers = {"Authorization": f"Bearer {document['key']}"}
    alpha = platform_client.get(f"/api/v1/projects/{cast.projects['alpha']}", headers=scoped_headers)
    assert alpha.json()["role"] == "viewer"
    assert (
        platform_client.get(f"/api/v1/projects/{cast.projects['beta']}", headers=scoped_headers).status_code
        == 404
    )


def test_create_key_errors(platform_client: TestClient, cast: Cast) -> None:
    cases = {
        "no user nobody@example.com": ["nobody@example.com"],
        "go together": ["developer@example.com", "--project", "alpha"],
        "no project 'gamma'": ["developer@example.com", "--project", "gamma", "--role", "viewer"],
        "not a member of project beta": ["developer@example.com", "--project", "beta", "--role", "viewer"],
        "unknown role 'boss'": ["developer@example.com", "--project", "alpha", "--role", "boss"],
    }
    for message, args in cases.items():
        result = runner.invoke(app, ["admin", "create-key", *args])
        assert result.exit_code == 1, (message, result.output)
        assert message in result.stderr, (message, result.stderr)


def test_verify_audit_detects_a_tampered_entry(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    for name in ("one", "two", "three"):
        created = platform_client.post("/api/v1/keys", json={"name": name}, headers=cast.auth("developer"))
        assert created.status_code == 201
    intact = runner.invoke(app, ["admin", "verify-audit"])
    assert intact.exit_code == 0, intact.output
    assert "audit log intact: 3 entries" in intact.stdout

    with make_session_factory(platform_db)() as session:
        session.execute(text("UPDATE audit_entries SET result = '500' WHERE seq = 2"))
        session.commit()
    broken = runner.invoke(app, ["admin", "verify-audit"])
    assert broken.exit_code == 1
    assert "audit log broken at entry 2: entry 2 was modified after it was written" in broken.stderr
    as_json = runner.invoke(app, ["admin", "verify-audit", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["first_bad_seq"] == 2


def test_verify_audit_detects_a_deleted_last_entry(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    for name in ("one", "two"):
        platform_client.post("/api/v1/keys", json={"name": name}, headers=cast.auth("developer"))
    with make_session_factory(platform_db)() as session:
        session.execute(text("DELETE FROM audit_entries WHERE seq = 2"))
        session.commit()
    result = runner.invoke(app, ["admin", "verify-audit"])
    assert result.exit_code == 1 and "entries were deleted" in result.stderr
