"""/api/v1/projects/{project_id}/jobs: submit, list, read, follow (SSE), logs, cancel, retry, resume.

Viewers read; developers submit and change jobs. Every query is scoped to the path's project, so
another project's job id answers 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy.orm import Session

from largeforge.platform.auth.principal import Principal
from largeforge.platform.deps import MAX_QUERY_INT, ProjectAccess, current_principal, db_session, project_role
from largeforge.platform.jobs.executors import LOG_FILE
from largeforge.platform.jobs.orm import Job
from largeforge.platform.jobs.repository import JobRepository
from largeforge.platform.jobs.schemas import JobCreate, JobKind, JobList, JobOut, JobState
from largeforge.platform.jobs.service import JobService
from largeforge.platform.jobs.sse import follow_job_events
from largeforge.platform.projects.roles import Role

router = APIRouter(prefix="/api/v1", tags=["jobs"])

MAX_LOG_BYTES = 1 << 20


@router.get("/recipe-schema")
def recipe_schema(_principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The training recipe's JSON schema: what ``spec.recipe`` of a train or pipeline job must satisfy
    (the same schema ``largeforge train schema`` prints; editors and the UI build recipes from it)."""
    from largeforge.training.recipe import recipe_json_schema

    return recipe_json_schema()


@router.post("/projects/{project_id}/jobs", status_code=status.HTTP_201_CREATED, response_model=JobOut)
def submit_job(
    body: JobCreate,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> Job:
    """Queue a train, evaluate, export or pipeline job; follow it with GET .../jobs/{id}/events."""
    job = JobService(db).submit(
        access.project,
        access.principal,
        body.kind,
        body.spec,
        priority=body.priority,
        max_attempts=body.max_attempts,
        name=body.name,
    )
    db.commit()
    return job


@router.get("/projects/{project_id}/jobs", response_model=JobList)
def list_jobs(
    state: list[JobState] = Query([], description="Only jobs in these states."),
    kind: list[JobKind] = Query([], description="Only jobs of these kinds."),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_QUERY_INT),
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> JobList:
    """The project's jobs, newest first."""
    rows, count = JobRepository(db).list_for_project(
        access.project.id, states=state, kinds=kind, limit=limit, offset=offset
    )
    return JobList(data=[JobOut.model_validate(row) for row in rows], count=count)


@router.get("/projects/{project_id}/jobs/{job_id}", response_model=JobOut)
def get_job(
    job_id: str,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> Job:
    return JobRepository(db).get_or_raise(access.project.id, job_id)


@router.get(
    "/projects/{project_id}/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
def follow_job(
    job_id: str,
    request: Request,
    after: int = Query(0, ge=0, le=MAX_QUERY_INT, description="Send events with a larger seq only."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> StreamingResponse:
    """Progress, state, log and metric events as server-sent events, live until the job ends."""
    job = JobRepository(db).get_or_raise(access.project.id, job_id)
    db.commit()  # the stream reads with its own sessions; do not hold this connection while it lasts
    if last_event_id is not None and last_event_id.strip().isdigit():
        after = max(after, min(int(last_event_id.strip()), MAX_QUERY_INT))
    return StreamingResponse(
        follow_job_events(request.app.state.session_factory, job.id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/projects/{project_id}/jobs/{job_id}/logs", response_class=PlainTextResponse)
def job_logs(
    job_id: str,
    offset: int = Query(
        0, ge=0, le=MAX_QUERY_INT, description="Start at this byte of the log (follow with X-Next-Offset)."
    ),
    limit: int = Query(MAX_LOG_BYTES, ge=1, le=MAX_LOG_BYTES, description="At most this many bytes."),
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> PlainTextResponse:
    """The job's process output (stderr of every attempt); empty until a worker started it."""
    job = JobRepository(db).get_or_raise(access.project.id, job_id)
    chunk, next_offset = b"", offset
    if job.run_dir:
        path = Path(job.run_dir).parent / LOG_FILE
        if path.exists():
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read(limit)
            next_offset = offset + len(chunk)
    return PlainTextResponse(chunk.decode("utf-8", "replace"), headers={"X-Next-Offset": str(next_offset)})


@router.post("/projects/{project_id}/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(
    job_id: str,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> Job:
    """A queued job is cancelled at once; a running job's process is stopped by its worker."""
    job = JobService(db).cancel(access.project, job_id)
    db.commit()
    return job


@router.post("/projects/{project_id}/jobs/{job_id}/retry", response_model=JobOut)
def retry_job(
    job_id: str,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> Job:
    """Queue a failed or cancelled job again, from the start."""
    job = JobService(db).retry(access.project, job_id)
    db.commit()
    return job


@router.post("/projects/{project_id}/jobs/{job_id}/resume", response_model=JobOut)
def resume_job(
    job_id: str,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> Job:
    """Queue a failed or cancelled train/pipeline job again, continuing from its last checkpoint."""
    job = JobService(db).resume(access.project, job_id)
    db.commit()
    return job
