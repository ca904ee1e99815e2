"""Who is calling: the result of authenticating one request."""

from __future__ import annotations

from dataclasses import dataclass

from largeforge.platform.projects.roles import Role


@dataclass(frozen=True)
class Principal:
    """A user acting through an API key or a browser session.

    ``key_project_id``/``key_role`` narrow an API key to one project and at most one role. ``via`` is
    ``"key"`` or ``"session"`` (sessions must present the CSRF token on state-changing requests).
    """

    user_id: str
    email: str
    is_admin: bool
    via: str
    api_key_id: str | None = None
    api_key_prefix: str | None = None
    key_project_id: str | None = None
    key_role: Role | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def label(self) -> str:
        return self.api_key_prefix or self.email


__all__ = ["Principal"]
