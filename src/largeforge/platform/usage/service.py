"""Usage: record what the gateway metered, and sum it per API key, deployment, model or day.

Recording happens after the answer (or the stream) is complete, in its own short transaction, so a
failure to write usage never breaks an answer already sent — it is logged instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from largeforge.errors import InvalidInput
from largeforge.platform.projects.orm import Project
from largeforge.platform.usage.orm import UsageRecord
from largeforge.platform.usage.repository import UsageRepository
from largeforge.platform.usage.schemas import GroupBy, UsageGroup, UsageSummary

log = logging.getLogger("largeforge.platform.usage")


@dataclass(frozen=True)
class UsageEntry:
    project_id: str
    deployment_id: str | None
    api_key_id: str | None
    user_id: str | None
    model: str
    endpoint: str
    prompt_tokens: int
    completion_tokens: int
    status_code: int
    streamed: bool
    duration_ms: int


def record_usage(session_factory: sessionmaker[Session], entry: UsageEntry) -> None:
    """Write one usage row in its own transaction (called by the gateway once a request is over)."""
    try:
        with session_factory() as session:
            UsageRepository(session).add(
                UsageRecord(
                    project_id=entry.project_id,
                    deployment_id=entry.deployment_id,
                    api_key_id=entry.api_key_id,
                    user_id=entry.user_id,
                    model=entry.model[:200],
                    endpoint=entry.endpoint,
                    prompt_tokens=entry.prompt_tokens,
                    completion_tokens=entry.completion_tokens,
                    total_tokens=entry.prompt_tokens + entry.completion_tokens,
                    status_code=entry.status_code,
                    streamed=entry.streamed,
                    duration_ms=entry.duration_ms,
                )
            )
            session.commit()
    except SQLAlchemyError:  # the answer was already sent; a lost usage row must not break the stream
        log.exception("could not record usage", extra={"project_id": entry.project_id})


class UsageService:
    def __init__(self, session: Session) -> None:
        self.repo = UsageRepository(session)

    def summary(
        self, project: Project, group_by: GroupBy, since: datetime | None, until: datetime | None
    ) -> UsageSummary:
        """Requests and tokens per group in ``[since, until)`` (naive times are taken as UTC).

        Raises:
            InvalidInput: ``until`` is not after ``since``.
        """
        since, until = _utc(since), _utc(until)
        if since is not None and until is not None and until <= since:
            raise InvalidInput(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
        groups = [
            UsageGroup(
                group=None if group is None else str(group),
                label=label,
                requests=int(requests),
                prompt_tokens=int(prompt),
                completion_tokens=int(completion),
                total_tokens=int(total),
            )
            for group, label, requests, prompt, completion, total in self.repo.totals(
                project.id, group_by, since, until
            )
        ]
        totals = UsageGroup(
            group=None,
            label=None,
            requests=sum(g.requests for g in groups),
            prompt_tokens=sum(g.prompt_tokens for g in groups),
            completion_tokens=sum(g.completion_tokens for g in groups),
            total_tokens=sum(g.total_tokens for g in groups),
        )
        return UsageSummary(
            group_by=group_by, since=since, until=until, data=groups, count=len(groups), totals=totals
        )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{value.isoformat()} is out of range; give a time in years 1-9999 UTC") from None


__all__ = ["UsageEntry", "UsageService", "record_usage"]
