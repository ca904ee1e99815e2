"""Every route of the control plane × every role × another project's member.

The routes come from the app's own route table, so a route added tomorrow is checked tomorrow: it must
declare exactly the permission the policy below gives it, and each caller must get exactly that.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from largeforge.platform.app import PUBLIC_PATHS
from largeforge.platform.projects.roles import Role
from tests.platform.conftest import Cast

PROJECT = "/api/v1/projects/{project_id}"
FAKE_ID = "0" * 32

# The policy. Inside a project: viewers read, developers change things, admins manage people, keys and
# the audit log. Outside: users manage their own keys and create projects; global admins manage users
# and read the whole audit log.
ADMIN_ONLY_IN_PROJECT = ("/members", "/keys", "/audit")
# Destructive beyond a developer's day-to-day: deleting a registered model version.
ADMIN_ONLY_ROUTES = {("DELETE", f"{PROJECT}/models/{{name}}/versions/{{version}}")}
GLOBAL_ADMIN_PREFIXES = ("/api/v1/users", "/api/v1/audit")


def expected_permission(method: str, path: str) -> str:
    if path in PUBLIC_PATHS or path.startswith("/ui"):
        return "public"
    if (method, path) in ADMIN_ONLY_ROUTES:
        return Role.admin.value
    if path.startswith(PROJECT):
        rest = path[len(PROJECT) :]
        if rest.startswith(ADMIN_ONLY_IN_PROJECT) and not (rest == "/members" and method == "GET"):
            return Role.admin.value
        return Role.viewer.value if method == "GET" else Role.developer.value
    if path.startswith(GLOBAL_ADMIN_PREFIXES):
        return "global_admin"
    return "user"


def _dependency_names(dependant: Any) -> set[str]:
    names = set()
    for sub in dependant.dependencies:
        names.add(getattr(sub.call, "__name__", ""))
        names |= _dependency_names(sub)
    return names


def declared_permission(route: Any) -> str:
    names = _dependency_names(route.dependant) if hasattr(route, "dependant") else set()
    project_roles = {name.removeprefix("project_role_") for name in names if name.startswith("project_role_")}
    if len(project_roles) > 1:
        return f"several: {sorted(project_roles)}"
    if project_roles:
        return project_roles.pop()
    if "require_global_admin" in names:
        return "global_admin"
    if "current_principal" in names:
        return "user"
    return "public"


def all_routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    routes = []
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or {"GET"}):
            if method != "HEAD":
                routes.append((method, context.path, context.route))
    return routes


def test_every_route_declares_the_policy_permission(platform_client: TestClient) -> None:
    routes = all_routes(platform_client.app)  # type: ignore[arg-type]
    assert len(routes) > 20
    wrong = {
        f"{method} {path}": (declared_permission(route), expected_permission(method, path))
        for method, path, route in routes
        if declared_permission(route) != expected_permission(method, path)
    }
    assert wrong == {}, "declared vs policy"


def _call(client: TestClient, method: str, path: str, headers: dict[str, str], project: str) -> Any:
    url = path.replace("{project_id}", project)
    while "{" in url:
        start, end = url.index("{"), url.index("}")
        url = url[:start] + FAKE_ID + url[end + 1 :]
    response = client.request(method, url, headers=headers)
    assert response.status_code < 500, f"{method} {url}: {response.status_code} {response.text}"
    return response


def _allowed(response: Any) -> bool:
    if response.status_code in (401, 403):
        return False
    return not (response.status_code == 404 and "no project" in response.json()["error"]["message"])


ACTORS = ("root", "owner", "admin", "developer", "viewer", "outsider", "scoped_viewer", "anonymous")
RANK = {"owner": Role.owner, "admin": Role.admin, "developer": Role.developer, "viewer": Role.viewer}


@pytest.mark.slow
def test_each_caller_gets_exactly_its_rights(platform_client: TestClient, cast: Cast) -> None:
    scoped = platform_client.post(
        "/api/v1/keys",
        json={"name": "scoped", "project_id": "alpha", "role": "viewer"},
        headers=cast.auth("owner"),
    )
    headers = {
        name: cast.auth(name) for name in ("root", "owner", "admin", "developer", "viewer", "outsider")
    }
    headers["scoped_viewer"] = {"Authorization": f"Bearer {scoped.json()['key']}"}
    headers["anonymous"] = {}
    alpha = cast.projects["alpha"]
    problems = []
    for method, path, _route in all_routes(platform_client.app):  # type: ignore[arg-type]
        if path == "/api/v1/auth/logout":
            continue  # bearer callers only; it ends sessions, which the login test covers
        need = expected_permission(method, path)
        for actor in ACTORS:
            response = _call(platform_client, method, path, headers[actor], alpha)
            if need == "public":
                ok = response.status_code != 401
            elif actor == "anonymous":
                ok = response.status_code == 401
            elif need == "user":
                ok = _allowed(response)
            elif need == "global_admin":
                ok = _allowed(response) if actor == "root" else response.status_code == 403
            elif actor == "outsider":
                # not a member: the project does not exist for them
                ok = response.status_code == 404 and "no project" in response.json()["error"]["message"]
            else:
                role = Role.owner if actor == "root" else RANK.get(actor, Role.viewer)
                ok = _allowed(response) if role.allows(Role(need)) else response.status_code == 403
            if not ok:
                problems.append(f"{actor} {method} {path} (needs {need}) → {response.status_code}")
    assert problems == []


def test_another_projects_id_is_a_404_not_a_403(platform_client: TestClient, cast: Cast) -> None:
    beta = cast.projects["beta"]
    for path in ("", "/members", "/keys", "/audit"):
        response = platform_client.get(f"/api/v1/projects/{beta}{path}", headers=cast.auth("owner"))
        assert response.status_code == 404, path
    # the same answer as for an id that does not exist at all
    missing = platform_client.get(f"/api/v1/projects/{FAKE_ID}", headers=cast.auth("owner"))
    mine = platform_client.get(f"/api/v1/projects/{beta}", headers=cast.auth("owner"))
    assert missing.json()["error"]["message"].replace(FAKE_ID, "X") == mine.json()["error"][
        "message"
    ].replace(beta, "X")
