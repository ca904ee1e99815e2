"""Request and response shapes of the projects API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from largeforge.platform.projects.roles import Role


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=63, description="lowercase letters, digits, dashes")
    description: str | None = Field(default=None, max_length=2000)
    max_running_jobs: int = Field(
        default=2, ge=1, le=1000, description="jobs of this project running at once"
    )


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str | None
    max_running_jobs: int
    created_at: datetime


class ProjectWithRole(ProjectOut):
    role: Role


class MemberSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    role: Role


class MemberOut(BaseModel):
    user_id: str
    email: str
    role: Role
