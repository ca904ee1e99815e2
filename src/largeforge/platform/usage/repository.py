"""All SQL of usage records. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, null, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from largeforge.platform.auth.orm import ApiKey
from largeforge.platform.usage.orm import UsageRecord


class UsageRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: UsageRecord) -> None:
        self._session.add(record)

    def totals(
        self, project_id: str, group_by: str, since: datetime | None, until: datetime | None
    ) -> list[tuple[Any, ...]]:
        """Rows of (group, label, requests, prompt, completion, total), biggest total first."""
        group = self._group_column(group_by)
        label: ColumnElement[Any] = (
            func.max(ApiKey.prefix + " " + ApiKey.name) if group_by == "key" else cast(null(), String)
        )
        stmt = select(
            group.label("group"),
            label.label("label"),
            func.count(UsageRecord.id),
            func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
            func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
            func.coalesce(func.sum(UsageRecord.total_tokens), 0),
        ).where(UsageRecord.project_id == project_id)
        if group_by == "key":
            stmt = stmt.outerjoin(ApiKey, ApiKey.id == UsageRecord.api_key_id)
        if since is not None:
            stmt = stmt.where(UsageRecord.time >= since)
        if until is not None:
            stmt = stmt.where(UsageRecord.time < until)
        stmt = stmt.group_by(group)
        order = group if group_by == "day" else func.sum(UsageRecord.total_tokens).desc()
        return [tuple(row) for row in self._session.execute(stmt.order_by(order))]

    def _group_column(self, group_by: str) -> ColumnElement[Any] | InstrumentedAttribute[Any]:
        if group_by == "key":
            return UsageRecord.api_key_id
        if group_by == "deployment":
            return UsageRecord.deployment_id
        if group_by == "model":
            return UsageRecord.model
        # The UTC calendar day, the same on both backends (times are stored in UTC).
        if self._session.get_bind().dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", UsageRecord.time), "YYYY-MM-DD")
        return func.strftime("%Y-%m-%d", UsageRecord.time)


__all__ = ["UsageRepository"]
