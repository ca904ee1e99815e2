"""Control-plane fixtures: the app over a fresh database (SQLite, and PostgreSQL where it can start),
and a ready-made cast of users with their roles in two projects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from largeforge.platform.app import create_platform_app
from largeforge.platform.auth.service import AuthService
from largeforge.platform.deps import make_session_factory
from largeforge.platform.projects.roles import Role
from largeforge.platform.projects.service import ProjectService

PASSWORD = "correct horse battery"


@dataclass
class Cast:
    """Users and keys: ``keys[name]`` is a bearer key; ``projects`` maps "alpha"/"beta" to ids."""

    projects: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def make_cast(session: Session) -> Cast:
    """admin (global), owner/admin/developer/viewer of project alpha, outsider (owner of beta)."""
    cast = Cast()
    auth, projects = AuthService(session), ProjectService(session)
    users = {
        name: auth.create_user(f"{name}@example.com", PASSWORD, is_admin=name == "root")
        for name in ("root", "owner", "admin", "developer", "viewer", "outsider")
    }
    alpha = projects.create("alpha", users["owner"])
    beta = projects.create("beta", users["outsider"])
    for role in (Role.admin, Role.developer, Role.viewer):
        projects.set_member(alpha, users[role.value], role, acting_role=Role.owner)
    cast.projects = {"alpha": alpha.id, "beta": beta.id}
    for name, user in users.items():
        cast.user_ids[name] = user.id
        cast.keys[name] = auth.create_key(user, f"{name}-key").secret
    session.commit()
    return cast


@pytest.fixture
def platform_db(database_url: str) -> str:
    return database_url


@pytest.fixture
def platform_client(platform_db: str) -> Iterator[TestClient]:
    app = create_platform_app(database_url=platform_db)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def cast(platform_db: str, platform_client: TestClient) -> Cast:
    with make_session_factory(platform_db)() as session:
        return make_cast(session)
