"""/api/v1/audit (global admins, every project) and /api/v1/projects/{id}/audit (project admins)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from largeforge.platform.audit.schemas import AuditEntryOut, VerifyOut
from largeforge.platform.audit.service import query_entries, verify_chain
from largeforge.platform.auth.principal import Principal
from largeforge.platform.deps import (
    MAX_QUERY_INT,
    ProjectAccess,
    db_session,
    project_role,
    require_global_admin,
)
from largeforge.platform.projects.roles import Role

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=list[AuditEntryOut])
def list_audit(
    project_id: str | None = Query(None, max_length=32),
    actor_id: str | None = Query(None, max_length=32),
    action: str | None = Query(None, max_length=200, description="substring of 'METHOD /path/template'"),
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: int | None = Query(None, ge=1, le=MAX_QUERY_INT),
    limit: int = Query(100, ge=1, le=1000),
    _admin: Principal = Depends(require_global_admin),
    db: Session = Depends(db_session),
) -> list[AuditEntryOut]:
    entries = query_entries(
        db,
        project_id=project_id,
        actor_id=actor_id,
        action=action,
        since=since,
        until=until,
        before_seq=before_seq,
        limit=limit,
    )
    return [AuditEntryOut.model_validate(entry) for entry in entries]


@router.get("/audit/verify", response_model=VerifyOut)
def verify_audit(
    _admin: Principal = Depends(require_global_admin), db: Session = Depends(db_session)
) -> VerifyOut:
    report = verify_chain(db)
    return VerifyOut(
        ok=report.ok, entries=report.entries, first_bad_seq=report.first_bad_seq, problem=report.problem
    )


@router.get("/projects/{project_id}/audit", response_model=list[AuditEntryOut])
def list_project_audit(
    actor_id: str | None = Query(None, max_length=32),
    action: str | None = Query(None, max_length=200),
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: int | None = Query(None, ge=1, le=MAX_QUERY_INT),
    limit: int = Query(100, ge=1, le=1000),
    access: ProjectAccess = Depends(project_role(Role.admin)),
    db: Session = Depends(db_session),
) -> list[AuditEntryOut]:
    entries = query_entries(
        db,
        project_id=access.project.id,
        actor_id=actor_id,
        action=action,
        since=since,
        until=until,
        before_seq=before_seq,
        limit=limit,
    )
    return [AuditEntryOut.model_validate(entry) for entry in entries]
