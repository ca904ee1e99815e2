"""Wire shapes of the usage API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

GroupBy = Literal["key", "deployment", "day", "model"]


class UsageGroup(BaseModel):
    group: str | None = Field(
        description="The API key id, deployment id, model or UTC day (YYYY-MM-DD); null = browser sessions "
        "(group_by=key)."
    )
    label: str | None = Field(description="Something people recognise: the key's prefix and name.")
    requests: int = Field(description="Requests through the gateway.")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageSummary(BaseModel):
    group_by: GroupBy
    since: datetime | None
    until: datetime | None
    data: list[UsageGroup]
    count: int
    totals: UsageGroup = Field(description="All groups together (group and label are null).")


__all__ = ["GroupBy", "UsageGroup", "UsageSummary"]
