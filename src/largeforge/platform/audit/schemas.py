"""Response shapes of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    time: datetime
    actor_id: str | None
    actor: str | None
    api_key_id: str | None
    action: str
    resource: str | None
    project_id: str | None
    source_ip: str | None
    result: str
    request_id: str | None
    details: dict[str, Any]
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None
    problem: str | None
