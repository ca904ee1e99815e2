"""Queries over users, API keys and sessions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from largeforge.platform.auth.orm import ApiKey, User, WebSession


class AuthRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email.lower()))

    def user(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def users(self, *, limit: int, offset: int) -> list[User]:
        return list(self.session.scalars(select(User).order_by(User.created_at).limit(limit).offset(offset)))

    def key_by_prefix(self, prefix: str) -> ApiKey | None:
        return self.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))

    def key(self, key_id: str) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    def keys_of_user(self, user_id: str) -> list[ApiKey]:
        return list(
            self.session.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at))
        )

    def keys_of_project(self, project_id: str) -> list[ApiKey]:
        return list(
            self.session.scalars(
                select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at)
            )
        )

    def session_by_hash(self, token_hash: str) -> WebSession | None:
        return self.session.scalar(select(WebSession).where(WebSession.token_hash == token_hash))


__all__ = ["AuthRepository"]
