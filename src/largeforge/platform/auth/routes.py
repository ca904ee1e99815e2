"""/api/v1/auth (login/logout/me), /api/v1/users (global admins) and /api/v1/keys (API keys)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from largeforge.errors import Forbidden, InvalidInput, NotFound
from largeforge.platform.auth.orm import ApiKey
from largeforge.platform.auth.principal import Principal
from largeforge.platform.auth.repository import AuthRepository
from largeforge.platform.auth.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    Login,
    LoginOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from largeforge.platform.auth.service import SESSION_LIFETIME, AuthService
from largeforge.platform.deps import (
    CSRF_COOKIE,
    MAX_QUERY_INT,
    SESSION_COOKIE,
    ProjectAccess,
    current_principal,
    db_session,
    effective_role,
    find_project,
    project_role,
    require_global_admin,
)
from largeforge.platform.projects.roles import Role

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/login", response_model=LoginOut)
def login(body: Login, request: Request, response: Response, db: Session = Depends(db_session)) -> LoginOut:
    """Start a browser session: an HttpOnly, SameSite=Strict cookie plus a CSRF token for writes."""
    request.state.audit_actor = body.email.strip().lower()
    auth = AuthService(db)
    user = auth.authenticate_password(body.email, body.password)
    web_session, token = auth.start_session(user)
    db.commit()
    secure = request.app.state.secure_cookies
    max_age = int(SESSION_LIFETIME.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, secure=secure, samesite="strict", path="/"
    )
    response.set_cookie(
        CSRF_COOKIE,
        web_session.csrf_token,
        max_age=max_age,
        httponly=False,
        secure=secure,
        samesite="strict",
        path="/",
    )
    request.state.principal = auth.principal_for_session(web_session)
    return LoginOut(
        user_id=user.id,
        email=user.email,
        csrf_token=web_session.csrf_token,
        expires_at=web_session.expires_at,
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    request: Request,
    response: Response,
    principal: Principal = Depends(current_principal),
    db: Session = Depends(db_session),
) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and cookie:
        auth = AuthService(db)
        auth.end_session(auth.session_for_token(cookie))
        db.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/auth/me", response_model=UserOut)
def me(principal: Principal = Depends(current_principal), db: Session = Depends(db_session)) -> UserOut:
    return UserOut.model_validate(AuthService(db).user_or_raise(principal.user_id))


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(
    body: UserCreate, _admin: Principal = Depends(require_global_admin), db: Session = Depends(db_session)
) -> UserOut:
    user = AuthService(db).create_user(body.email, body.password, is_admin=body.is_admin)
    db.commit()
    return UserOut.model_validate(user)


@router.get("/users", response_model=list[UserOut])
def list_users(
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_QUERY_INT),
    _admin: Principal = Depends(require_global_admin),
    db: Session = Depends(db_session),
) -> list[UserOut]:
    return [UserOut.model_validate(user) for user in AuthRepository(db).users(limit=limit, offset=offset)]


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: str,
    body: UserUpdate,
    admin: Principal = Depends(require_global_admin),
    db: Session = Depends(db_session),
) -> UserOut:
    """Deactivate or reactivate a user (their keys and sessions stop working at once), or change their
    global admin rights."""
    user = AuthService(db).update_user(
        user_id, acting_user_id=admin.user_id, is_active=body.is_active, is_admin=body.is_admin
    )
    db.commit()
    return UserOut.model_validate(user)


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create_key(
    body: KeyCreate, principal: Principal = Depends(current_principal), db: Session = Depends(db_session)
) -> KeyCreated:
    """A new key for the caller. Scoped keys need a role the caller has in that project; a scoped key may
    only mint keys for its own project and never above its own role."""
    auth = AuthService(db)
    project_id, role = None, body.role
    if body.project_id is not None:
        project = find_project(db, body.project_id)
        have = effective_role(db, principal, project) if project is not None else None
        if project is None or have is None:
            raise NotFound(f"no project {body.project_id!r} (or you are not a member of it)")
        role = role or have
        if not have.allows(role):
            raise Forbidden(f"you have {have.value} in {project.name}; a key cannot have {role.value}")
        project_id = project.id
    elif body.role is not None:
        raise InvalidInput("role needs project_id: a key's role is its role in one project")
    elif principal.key_project_id is not None:
        raise Forbidden("a project-scoped key can only create keys for its own project; pass project_id")
    user = auth.user_or_raise(principal.user_id)
    created = auth.create_key(
        user,
        body.name,
        project_id=project_id,
        role=role,
        expires_at=body.expires_at,
        requests_per_minute=body.requests_per_minute,
        tokens_per_minute=body.tokens_per_minute,
    )
    db.commit()
    return KeyCreated.model_validate(
        {**KeyOut.model_validate(created.key).model_dump(), "key": created.secret}
    )


@router.get("/keys", response_model=list[KeyOut])
def list_my_keys(
    principal: Principal = Depends(current_principal), db: Session = Depends(db_session)
) -> list[KeyOut]:
    return [KeyOut.model_validate(key) for key in AuthRepository(db).keys_of_user(principal.user_id)]


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_my_key(
    key_id: str, principal: Principal = Depends(current_principal), db: Session = Depends(db_session)
) -> KeyOut:
    key = AuthRepository(db).key(key_id)
    if key is None or (key.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"no API key {key_id}")
    AuthService(db).revoke_key(key)
    db.commit()
    return KeyOut.model_validate(key)


@router.get("/projects/{project_id}/keys", response_model=list[KeyOut])
def list_project_keys(
    access: ProjectAccess = Depends(project_role(Role.admin)), db: Session = Depends(db_session)
) -> list[KeyOut]:
    return [KeyOut.model_validate(key) for key in AuthRepository(db).keys_of_project(access.project.id)]


@router.delete("/projects/{project_id}/keys/{key_id}", response_model=KeyOut)
def revoke_project_key(
    key_id: str, access: ProjectAccess = Depends(project_role(Role.admin)), db: Session = Depends(db_session)
) -> KeyOut:
    key: ApiKey | None = AuthRepository(db).key(key_id)
    if key is None or key.project_id != access.project.id:
        raise NotFound(f"no API key {key_id} in project {access.project.name}")
    AuthService(db).revoke_key(key)
    db.commit()
    return KeyOut.model_validate(key)


__all__ = ["router"]
