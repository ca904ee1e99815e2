"""The audit log: one entry per state-changing request on every mutating route, a chain that holds
under concurrent writers, and tampering that verification finds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import text

from largeforge.platform.audit.middleware import is_audited
from largeforge.platform.audit.service import verify_chain
from largeforge.platform.deps import make_session_factory
from tests.platform.conftest import Cast
from tests.platform.test_access_matrix import FAKE_ID, all_routes

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _url(path: str, project: str) -> str:
    url = path.replace("{project_id}", project)
    while "{" in url:
        url = url[: url.index("{")] + FAKE_ID + url[url.index("}") + 1 :]
    return url


def test_every_mutating_route_writes_one_entry(platform_client: TestClient, cast: Cast) -> None:
    alpha = cast.projects["alpha"]
    routes = [(m, p) for m, p, _ in all_routes(platform_client.app)]  # type: ignore[arg-type]
    mutating = [(m, p) for m, p in routes if m in MUTATING and is_audited(m, p)]
    inference = [(m, p) for m, p in routes if m in MUTATING and not is_audited(m, p)]
    assert len(mutating) >= 20
    # only the gateway's completions are exempt (their usage records log them)
    assert all(p.endswith("completions") and "/deployments/" in p for _, p in inference), inference
    seen: dict[str, tuple[str, str]] = {}
    for method, path in mutating:
        response = platform_client.request(method, _url(path, alpha), headers=cast.auth("root"))
        seen[response.headers["x-request-id"]] = (f"{method} {path}", str(response.status_code))
    entries = platform_client.get("/api/v1/audit", params={"limit": 1000}, headers=cast.auth("root")).json()
    by_request = {entry["request_id"]: entry for entry in entries}
    for request_id, (action, status) in seen.items():
        entry = by_request.get(request_id)
        assert entry is not None, f"no audit entry for {action}"
        assert (entry["action"], entry["result"]) == (action, status)
        if action != "POST /api/v1/auth/login":  # logins carry no key; the bad-login test covers them
            assert entry["actor"] == "root@example.com" and entry["api_key_id"] is not None, action
    # reads are not audited
    before = len(entries)
    platform_client.get(f"/api/v1/projects/{alpha}", headers=cast.auth("viewer"))
    after = platform_client.get("/api/v1/audit", params={"limit": 1000}, headers=cast.auth("root")).json()
    assert len(after) == before


def test_entry_records_who_what_where_and_result(platform_client: TestClient, cast: Cast) -> None:
    alpha = cast.projects["alpha"]
    denied = platform_client.put(
        f"/api/v1/projects/{alpha}/members",
        json={"email": "outsider@example.com", "role": "viewer"},
        headers={**cast.auth("viewer"), "X-Request-ID": "req-denied-1"},
    )
    assert denied.status_code == 403
    platform_client.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": "wrong"})
    entries = platform_client.get(
        f"/api/v1/projects/{alpha}/audit", params={"action": "members"}, headers=cast.auth("admin")
    ).json()
    entry = next(e for e in entries if e["request_id"] == "req-denied-1")
    assert entry["result"] == "403" and entry["actor_id"] == cast.user_ids["viewer"]
    assert entry["resource"] == f"/api/v1/projects/{alpha}/members" and entry["project_id"] == alpha
    assert entry["source_ip"]
    login = platform_client.get("/api/v1/audit", params={"action": "login"}, headers=cast.auth("root")).json()
    assert login[0]["result"] == "401" and login[0]["actor"] == "owner@example.com"
    # project admins see only their project's entries
    assert all(e["project_id"] == alpha for e in entries)


def test_chain_holds_under_concurrent_writers(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    def create(index: int) -> int:
        return platform_client.post(
            "/api/v1/keys", json={"name": f"k{index}"}, headers=cast.auth("developer")
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(create, range(24))) == {201}
    with make_session_factory(platform_db)() as session:
        report = verify_chain(session)
    assert report.ok, report.problem
    assert report.entries >= 24


def test_tampering_is_detected(platform_client: TestClient, cast: Cast, platform_db: str) -> None:
    for index in range(5):
        platform_client.post("/api/v1/keys", json={"name": f"k{index}"}, headers=cast.auth("developer"))
    assert platform_client.get("/api/v1/audit/verify", headers=cast.auth("root")).json()["ok"] is True
    factory = make_session_factory(platform_db)
    with factory() as session:
        session.execute(text("UPDATE audit_entries SET result = '200' WHERE seq = 3"))
        session.commit()
    report = platform_client.get("/api/v1/audit/verify", headers=cast.auth("root")).json()
    assert report == {**report, "ok": False, "first_bad_seq": 3}
    assert "modified" in report["problem"]
    with factory() as session:  # restore, then cut the tail off instead
        session.execute(text("UPDATE audit_entries SET result = '201' WHERE seq = 3"))
        assert verify_chain(session).ok
        session.execute(text("DELETE FROM audit_entries WHERE seq = (SELECT MAX(seq) FROM audit_entries)"))
        session.commit()
        report_obj = verify_chain(session)
    assert not report_obj.ok and "deleted" in (report_obj.problem or "")
