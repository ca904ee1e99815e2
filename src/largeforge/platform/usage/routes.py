"""/api/v1/projects/{project_id}/usage: what the metered gateway counted, summed per group."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from largeforge.platform.deps import ProjectAccess, db_session, project_role
from largeforge.platform.projects.roles import Role
from largeforge.platform.usage.schemas import GroupBy, UsageSummary
from largeforge.platform.usage.service import UsageService

router = APIRouter(prefix="/api/v1", tags=["usage"])


@router.get("/projects/{project_id}/usage", response_model=UsageSummary)
def read_usage(
    group_by: GroupBy = Query("key", description="key, deployment, model or day (UTC)."),
    since: datetime | None = Query(None, description="Only requests at or after this time (ISO 8601)."),
    until: datetime | None = Query(None, description="Only requests before this time (ISO 8601)."),
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> UsageSummary:
    """Requests and prompt/completion tokens through the gateway, per API key, deployment, model or day."""
    return UsageService(db).summary(access.project, group_by, since, until)
