"""Request and response shapes of the auth API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from largeforge.platform.projects.roles import Role


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    user_id: str
    email: str
    csrf_token: str = Field(description="send it back as X-CSRF-Token on every state-changing request")
    expires_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=8, max_length=1024)
    is_admin: bool = False


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    is_active: bool | None = Field(
        default=None, description="false: every key and session of the user stops working"
    )
    is_admin: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    project_id: str | None = Field(default=None, description="scope the key to this project (id or name)")
    role: Role | None = Field(default=None, description="the most this key may do in its project")
    expires_at: datetime | None = Field(default=None, description="ISO 8601 with a timezone; default: never")
    requests_per_minute: int | None = Field(
        default=None, ge=0, le=1_000_000, description="default: the server's; 0 = unlimited"
    )
    tokens_per_minute: int | None = Field(
        default=None, ge=0, le=1_000_000_000, description="default: the server's; 0 = unlimited"
    )


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    prefix: str
    user_id: str
    project_id: str | None
    role: Role | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class KeyCreated(KeyOut):
    key: str = Field(description="the secret; shown only this once")
