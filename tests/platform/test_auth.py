"""Users, login sessions with CSRF, API keys (hashed, prefixed, scoped, expiring, revocable)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from largeforge.platform.auth.orm import ApiKey, User
from largeforge.platform.deps import make_session_factory
from tests.platform.conftest import PASSWORD, Cast


def test_key_is_shown_once_and_stored_hashed(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    created = platform_client.post("/api/v1/keys", json={"name": "ci"}, headers=cast.auth("developer"))
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert secret.startswith(created.json()["prefix"] + "_")
    with make_session_factory(platform_db)() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == created.json()["prefix"]))
        assert row is not None and secret not in (row.key_hash, row.prefix)
        user = session.scalar(select(User).where(User.email == "developer@example.com"))
        assert user is not None and PASSWORD not in user.password_hash
    listed = platform_client.get("/api/v1/keys", headers={"Authorization": f"Bearer {secret}"})
    assert listed.status_code == 200
    assert all("key" not in key for key in listed.json())
    assert {key["name"] for key in listed.json()} == {"developer-key", "ci"}
    assert next(k for k in listed.json() if k["name"] == "ci")["last_used_at"] is not None


def test_revoked_and_expired_keys_are_refused(platform_client: TestClient, cast: Cast) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    created = platform_client.post(
        "/api/v1/keys", json={"name": "short", "expires_at": soon}, headers=cast.auth("viewer")
    ).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert platform_client.get("/api/v1/auth/me", headers=headers).status_code == 200
    import time

    time.sleep(2.1)
    expired = platform_client.get("/api/v1/auth/me", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]

    other = platform_client.post("/api/v1/keys", json={"name": "x"}, headers=cast.auth("viewer")).json()
    assert (
        platform_client.delete(f"/api/v1/keys/{other['id']}", headers=cast.auth("viewer")).status_code == 200
    )
    revoked = platform_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other['key']}"})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    assert (
        platform_client.get("/api/v1/auth/me", headers={"Authorization": "Bearer lf_nonsense"}).status_code
        == 401
    )


def test_scoped_key_is_capped_by_its_role_and_project(platform_client: TestClient, cast: Cast) -> None:
    alpha = cast.projects["alpha"]
    created = platform_client.post(
        "/api/v1/keys",
        json={"name": "ro", "project_id": "alpha", "role": "viewer"},
        headers=cast.auth("owner"),
    )
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    assert platform_client.get(f"/api/v1/projects/{alpha}", headers=headers).json()["role"] == "viewer"
    denied = platform_client.put(
        f"/api/v1/projects/{alpha}/members",
        json={"email": "outsider@example.com", "role": "viewer"},
        headers=headers,
    )
    assert denied.status_code == 403
    assert [p["name"] for p in platform_client.get("/api/v1/projects", headers=headers).json()] == ["alpha"]
    # a viewer cannot mint a developer key
    too_strong = platform_client.post(
        "/api/v1/keys",
        json={"name": "up", "project_id": "alpha", "role": "developer"},
        headers=cast.auth("viewer"),
    )
    assert too_strong.status_code == 403


def test_login_session_needs_csrf_header_for_writes(platform_client: TestClient, cast: Cast) -> None:
    bad = platform_client.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": "nope"})
    assert bad.status_code == 401
    ok = platform_client.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert platform_client.get("/api/v1/auth/me").json()["email"] == "owner@example.com"
    body = {"name": "gamma"}
    no_csrf = platform_client.post("/api/v1/projects", json=body)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]["message"]
    with_csrf = platform_client.post(
        "/api/v1/projects", json=body, headers={"X-CSRF-Token": ok.json()["csrf_token"]}
    )
    assert with_csrf.status_code == 201
    platform_client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": ok.json()["csrf_token"]})
    assert platform_client.get("/api/v1/auth/me").status_code == 401


def test_a_project_keeps_an_owner(platform_client: TestClient, cast: Cast) -> None:
    alpha = cast.projects["alpha"]
    demote = platform_client.put(
        f"/api/v1/projects/{alpha}/members",
        json={"email": "owner@example.com", "role": "admin"},
        headers=cast.auth("owner"),
    )
    assert demote.status_code == 409 and "no owner" in demote.json()["error"]["message"]
    by_admin = platform_client.put(
        f"/api/v1/projects/{alpha}/members",
        json={"email": "viewer@example.com", "role": "owner"},
        headers=cast.auth("admin"),
    )
    assert by_admin.status_code == 422


def test_authorization_hands_its_connection_back(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    """A streamed answer (job events, the gateway) must not hold a pooled connection for its whole life."""
    from starlette.requests import Request

    from largeforge.platform.auth.service import AuthService
    from largeforge.platform.deps import project_role
    from largeforge.platform.projects.roles import Role

    dependency = project_role(Role.viewer)
    with make_session_factory(platform_db)() as session:
        principal = AuthService(session).principal_for_key(cast.keys["viewer"])
        request = Request({"type": "http", "method": "GET", "headers": [], "app": platform_client.app})
        access = dependency(project_id="alpha", request=request, principal=principal, db=session)
        assert access.project.name == "alpha" and access.role is Role.viewer
        assert not session.in_transaction()


def test_a_deactivated_user_is_locked_out_at_once(platform_client: TestClient, cast: Cast) -> None:
    viewer = cast.user_ids["viewer"]
    assert platform_client.get("/api/v1/auth/me", headers=cast.auth("viewer")).status_code == 200
    denied = platform_client.patch(
        f"/api/v1/users/{viewer}", json={"is_active": False}, headers=cast.auth("owner")
    )
    assert denied.status_code == 403  # only global admins
    off = platform_client.patch(
        f"/api/v1/users/{viewer}", json={"is_active": False}, headers=cast.auth("root")
    )
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert platform_client.get("/api/v1/auth/me", headers=cast.auth("viewer")).status_code == 401
    login = platform_client.post(
        "/api/v1/auth/login", json={"email": "viewer@example.com", "password": PASSWORD}
    )
    assert login.status_code == 401
    myself = platform_client.patch(
        f"/api/v1/users/{cast.user_ids['root']}", json={"is_admin": False}, headers=cast.auth("root")
    )
    assert myself.status_code == 409
    platform_client.patch(f"/api/v1/users/{viewer}", json={"is_active": True}, headers=cast.auth("root"))
    assert platform_client.get("/api/v1/auth/me", headers=cast.auth("viewer")).status_code == 200


def test_a_key_with_zero_limits_is_unlimited(platform_client: TestClient, cast: Cast) -> None:
    created = platform_client.post(
        "/api/v1/keys", json={"name": "bulk", "requests_per_minute": 0}, headers=cast.auth("developer")
    )
    assert created.status_code == 201 and created.json()["requests_per_minute"] == 0
    limiter = platform_client.app.state.rate_limiter  # type: ignore[attr-defined]
    limiter.default_rpm = 1  # the server's default would stop the second call
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    assert all(platform_client.get("/api/v1/auth/me", headers=headers).status_code == 200 for _ in range(5))
    assert platform_client.get("/api/v1/auth/me", headers=cast.auth("viewer")).status_code == 200
    assert platform_client.get("/api/v1/auth/me", headers=cast.auth("viewer")).status_code == 429


def test_numbers_too_large_to_store_are_a_422(platform_client: TestClient, cast: Cast) -> None:
    huge = str(2**63)  # found by the fuzz test: SQLite cannot bind it
    users = platform_client.get("/api/v1/users", params={"offset": huge}, headers=cast.auth("root"))
    assert users.status_code == 422 and "offset" in users.json()["error"]["message"]
    jobs = platform_client.get(
        f"/api/v1/projects/{cast.projects['alpha']}/jobs",
        params={"offset": huge},
        headers=cast.auth("viewer"),
    )
    assert jobs.status_code == 422
    audit = platform_client.get("/api/v1/audit", params={"before_seq": huge}, headers=cast.auth("root"))
    assert audit.status_code == 422
