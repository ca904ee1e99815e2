"""Authentication and authorization: the one path every route takes.

Routes declare what they need with a dependency and never check rights themselves:

    @router.get("/projects/{project_id}/jobs")
    def list_jobs(access: ProjectAccess = Depends(project_role(Role.viewer)), db: Session = Depends(db_session)):

``project_role`` answers 404 (not 403) to anyone who is not a member of the project, so project ids
do not leak; members below the needed role get 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from largeforge.db import get_engine
from largeforge.errors import Forbidden, NotFound, Unauthorized
from largeforge.platform.auth.principal import Principal
from largeforge.platform.auth.service import AuthService
from largeforge.platform.projects.orm import Membership, Project
from largeforge.platform.projects.roles import Role, weaker

SESSION_COOKIE = "lf_session"
CSRF_COOKIE = "lf_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The largest number a query parameter may carry: every database stores 64-bit integers, and an
# offset or sequence number beyond this is a mistake, not a request (422 rather than a driver error).
MAX_QUERY_INT = 2**53


def db_session(request: Request) -> Iterator[Session]:
    """A database session for one request. Services commit what they change; anything else rolls back."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def make_session_factory(database_url: str | None) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(database_url), expire_on_commit=False)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_principal(request: Request, db: Session = Depends(db_session)) -> Principal:
    """The caller, from ``Authorization: Bearer lf_…`` or the session cookie (+ CSRF header on writes)."""
    auth = AuthService(db)
    token = _bearer(request)
    if token is not None:
        principal = auth.principal_for_key(token)
        db.commit()  # last_used_at
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized(
                "authentication required: send `Authorization: Bearer <API key>` or log in at /api/v1/auth/login"
            )
        web_session = auth.session_for_token(cookie)
        if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != web_session.csrf_token:
            raise Forbidden("missing or wrong X-CSRF-Token header (take it from the login response)")
        principal = auth.principal_for_session(web_session)
    request.state.principal = principal
    request.app.state.rate_limiter.check_request(principal)  # 429 once the key's requests/min are used
    return principal


def require_global_admin(principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.is_admin:
        raise Forbidden("only a global admin may do this")
    return principal


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    role: Role
    principal: Principal


def find_project(db: Session, ref: str) -> Project | None:
    """A project by id, or by name (people type names)."""
    return db.get(Project, ref) or db.scalar(select(Project).where(Project.name == ref))


def effective_role(db: Session, principal: Principal, project: Project) -> Role | None:
    """The caller's role in ``project``: membership (or global admin = owner), capped by the key's scope."""
    if principal.key_project_id is not None and principal.key_project_id != project.id:
        return None
    membership = db.get(Membership, (project.id, principal.user_id))
    role = Role.owner if principal.is_admin else (Role(membership.role) if membership else None)
    if role is not None and principal.key_role is not None:
        role = weaker(role, principal.key_role)
    return role


def project_role(needed: Role) -> Callable[..., ProjectAccess]:
    """A dependency: the caller must have at least ``needed`` in the path's ``project_id``."""

    def dependency(
        project_id: str,
        request: Request,
        principal: Principal = Depends(current_principal),
        db: Session = Depends(db_session),
    ) -> ProjectAccess:
        project = find_project(db, project_id)
        role = effective_role(db, principal, project) if project is not None else None
        if project is None or role is None:
            raise NotFound(f"no project {project_id!r} (or you are not a member of it)")
        request.state.project_id = project.id
        # End the read transaction: the connection goes back to the pool (a streamed answer would
        # otherwise hold it to the end) and the route's own writes start a fresh transaction.
        db.commit()
        if not role.allows(needed):
            raise Forbidden(
                f"this needs the {needed.value} role in project {project.name}; you have {role.value}"
            )
        return ProjectAccess(project=project, role=role, principal=principal)

    dependency.__name__ = f"project_role_{needed.value}"
    return dependency


__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "MAX_QUERY_INT",
    "SESSION_COOKIE",
    "ProjectAccess",
    "current_principal",
    "db_session",
    "effective_role",
    "find_project",
    "make_session_factory",
    "project_role",
    "require_global_admin",
]
