"""Users, API keys and browser sessions: creation, verification, revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from largeforge.db import utcnow
from largeforge.errors import Conflict, InvalidInput, NotFound, Unauthorized
from largeforge.platform.auth.orm import ApiKey, User, WebSession
from largeforge.platform.auth.principal import Principal
from largeforge.platform.auth.repository import AuthRepository
from largeforge.platform.auth.secrets import (
    hash_password,
    new_api_key,
    new_token,
    sha256_hex,
    split_api_key,
    verify_password,
)
from largeforge.platform.projects.roles import Role

SESSION_LIFETIME = timedelta(hours=12)
# last_used_at is written at most this often per key, so a busy key does not turn every read into a write.
_LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str


def _check_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an email address (expected name@example.com)")
    return email


class AuthService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = AuthRepository(session)

    # users -------------------------------------------------------------------------------------------
    def create_user(self, email: str, password: str, *, is_admin: bool = False) -> User:
        email = _check_email(email)
        if self.repo.user_by_email(email) is not None:
            raise Conflict(f"a user with email {email} already exists")
        user = User(email=email, password_hash=hash_password(password), is_admin=is_admin, is_active=True)
        self.session.add(user)
        self.session.flush()
        return user

    def user_or_raise(self, user_id: str) -> User:
        user = self.repo.user(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    def update_user(
        self, user_id: str, *, acting_user_id: str, is_active: bool | None, is_admin: bool | None
    ) -> User:
        """Deactivate/reactivate a user or change global admin rights. Nobody takes these from themselves,
        so the last admin cannot lock everyone out by accident."""
        user = self.user_or_raise(user_id)
        if user.id == acting_user_id and (is_active is False or is_admin is False):
            raise Conflict("you cannot deactivate yourself or drop your own admin rights; ask another admin")
        if is_active is not None:
            user.is_active = is_active
        if is_admin is not None:
            user.is_admin = is_admin
        self.session.flush()
        return user

    def authenticate_password(self, email: str, password: str) -> User:
        user = self.repo.user_by_email(email.strip().lower())
        if user is None or not user.is_active or not verify_password(user.password_hash, password):
            raise Unauthorized("wrong email or password")
        return user

    # API keys ----------------------------------------------------------------------------------------
    def create_key(
        self,
        user: User,
        name: str,
        *,
        project_id: str | None = None,
        role: Role | None = None,
        expires_at: datetime | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
    ) -> NewKey:
        if (project_id is None) != (role is None):
            raise InvalidInput("a key's scope needs both project_id and role, or neither")
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidInput("expires_at is in the past; give a future time")
        secret, prefix = new_api_key()
        key = ApiKey(
            user_id=user.id,
            name=name,
            prefix=prefix,
            key_hash=sha256_hex(secret),
            project_id=project_id,
            role=role.value if role else None,
            expires_at=expires_at,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
        )
        self.session.add(key)
        self.session.flush()
        return NewKey(key=key, secret=secret)

    def revoke_key(self, key: ApiKey) -> ApiKey:
        if key.revoked_at is None:
            key.revoked_at = utcnow()
        return key

    def principal_for_key(self, token: str) -> Principal:
        prefix = split_api_key(token)
        key = self.repo.key_by_prefix(prefix) if prefix else None
        if key is None or key.key_hash != sha256_hex(token):
            raise Unauthorized(
                "invalid API key: send `Authorization: Bearer lf_…` with a key from /api/v1/keys"
            )
        now = utcnow()
        if key.revoked_at is not None:
            raise Unauthorized(f"API key {key.prefix} was revoked; create a new one")
        if key.expires_at is not None and key.expires_at <= now:
            raise Unauthorized(
                f"API key {key.prefix} expired at {key.expires_at.isoformat()}; create a new one"
            )
        user = self.user_or_raise(key.user_id)
        if not user.is_active:
            raise Unauthorized("this key's user is deactivated")
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            key.last_used_at = now
        return Principal(
            user_id=user.id,
            email=user.email,
            is_admin=user.is_admin and key.project_id is None,
            via="key",
            api_key_id=key.id,
            api_key_prefix=key.prefix,
            key_project_id=key.project_id,
            key_role=Role(key.role) if key.role else None,
            requests_per_minute=key.requests_per_minute,
            tokens_per_minute=key.tokens_per_minute,
        )

    # browser sessions --------------------------------------------------------------------------------
    def start_session(self, user: User) -> tuple[WebSession, str]:
        token = new_token()
        web_session = WebSession(
            user_id=user.id,
            token_hash=sha256_hex(token),
            csrf_token=new_token(),
            expires_at=utcnow() + SESSION_LIFETIME,
        )
        self.session.add(web_session)
        self.session.flush()
        return web_session, token

    def session_for_token(self, token: str) -> WebSession:
        web_session = self.repo.session_by_hash(sha256_hex(token))
        if web_session is None or web_session.expires_at <= utcnow():
            raise Unauthorized("session expired or unknown; log in again")
        return web_session

    def principal_for_session(self, web_session: WebSession) -> Principal:
        user = self.user_or_raise(web_session.user_id)
        if not user.is_active:
            raise Unauthorized("this user is deactivated")
        return Principal(user_id=user.id, email=user.email, is_admin=user.is_admin, via="session")

    def end_session(self, web_session: WebSession) -> None:
        self.session.delete(web_session)


__all__ = ["SESSION_LIFETIME", "AuthService", "NewKey"]
