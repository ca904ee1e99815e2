"""All SQL of the job queue: claiming with leases, heartbeats, outcomes, events, and the read queries.

Claiming is the one place where two processes race for the same rows:

- PostgreSQL: candidate rows are selected ``FOR UPDATE SKIP LOCKED`` inside the claim transaction, so
  concurrent workers pass over each other's candidates instead of waiting on them; the project row is
  then locked to recount its running jobs, so a per-project limit holds under concurrency too.
- SQLite: the claim transaction starts with ``BEGIN IMMEDIATE``, i.e. it takes the database's single
  write lock *before* it reads, so claims run one after another and never see a stale queue.

Worker-side writes (claim, heartbeat, outcome) record a state event and an audit entry in the same
transaction as the change. Nothing here commits: the worker or route that owns the transaction does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from largeforge.db import utcnow
from largeforge.errors import Conflict, NotFound
from largeforge.platform.audit.service import append_entry
from largeforge.platform.jobs.orm import Job, JobEvent
from largeforge.platform.projects.orm import Project

MAX_BACKOFF_SECONDS = 3600.0


class LeaseLost(Conflict):
    """The worker no longer holds the job (its lease expired and another worker claimed it, or the job
    left the running state): whatever it was about to record must be dropped."""


def backoff_delay(attempts: int, base_seconds: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``base * 2**(attempts - 1)``, capped at an hour."""
    return float(min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


class JobRepository:
    """Queries and state changes of jobs. Never commits: the caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- transactions -------------------------------------------------------------------------------

    def begin_write(self) -> None:
        """Take the write lock up front on SQLite (``BEGIN IMMEDIATE``); a no-op on PostgreSQL.

        A deferred SQLite transaction that reads and then writes fails with "database is locked" when
        another writer committed in between; one that starts as a writer waits its turn instead.
        """
        connection = self.session.connection()
        if connection.dialect.name != "sqlite":
            return
        raw = connection.connection.dbapi_connection
        if raw is not None and not getattr(raw, "in_transaction", False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    @property
    def _postgres(self) -> bool:
        return self.session.connection().dialect.name == "postgresql"

    # -- reads --------------------------------------------------------------------------------------

    def add(self, job: Job) -> Job:
        self.session.add(job)
        self.session.flush()
        return job

    def get_or_raise(self, project_id: str, job_id: str) -> Job:
        """The job ``job_id`` of ``project_id``; another project's job is as unknown as a missing one."""
        job = self.session.scalar(select(Job).where(Job.id == job_id, Job.project_id == project_id))
        if job is None:
            raise NotFound(f"no job {job_id!r} in this project; list them with GET .../jobs")
        return job

    def lock_or_raise(self, project_id: str, job_id: str) -> Job:
        """Like :meth:`get_or_raise`, with the row locked for a state change."""
        self.begin_write()
        query = select(Job).where(Job.id == job_id, Job.project_id == project_id).with_for_update()
        job = self.session.scalar(query.execution_options(populate_existing=True))
        if job is None:
            raise NotFound(f"no job {job_id!r} in this project; list them with GET .../jobs")
        return job

    def list_for_project(
        self,
        project_id: str,
        *,
        states: Sequence[str] = (),
        kinds: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        """Newest first, with the total count of the filtered list."""
        where: list[Any] = [Job.project_id == project_id]
        if states:
            where.append(Job.state.in_(states))
        if kinds:
            where.append(Job.kind.in_(kinds))
        total = self.session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
        rows = self.session.scalars(
            select(Job).where(*where).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
        )
        return list(rows), int(total)

    def state_of(self, job_id: str) -> str | None:
        return self.session.scalar(select(Job.state).where(Job.id == job_id))

    def events_after(self, job_id: str, after: int, limit: int = 500) -> list[JobEvent]:
        query = (
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.seq > after)
            .order_by(JobEvent.seq)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def metric_records(self, job_id: str) -> list[dict[str, Any]]:
        """The data of every metric event of a job (the worker skips records it already stored)."""
        query = select(JobEvent.data).where(JobEvent.job_id == job_id, JobEvent.type == "metric")
        return list(self.session.scalars(query))

    # -- events -------------------------------------------------------------------------------------

    def add_events(self, job_id: str, events: Iterable[tuple[str, dict[str, Any]]]) -> list[JobEvent]:
        """Append events numbered after the job's last one (bumping the counter row-locks the job)."""
        items = list(events)
        if not items:
            return []
        self.begin_write()
        self.session.execute(update(Job).where(Job.id == job_id).values(event_seq=Job.event_seq + len(items)))
        last = self.session.scalar(select(Job.event_seq).where(Job.id == job_id))
        if last is None:
            raise NotFound(f"job {job_id} does not exist")
        now = utcnow()
        rows = [
            JobEvent(job_id=job_id, seq=last - len(items) + 1 + i, time=now, type=kind, data=data)
            for i, (kind, data) in enumerate(items)
        ]
        self.session.add_all(rows)
        self.session.flush()
        return rows

    def record_state(
        self, job: Job, *, actor: str | None = None, audit: bool, details: dict[str, Any] | None = None
    ) -> None:
        """A ``state`` event for the job's current state; an audit entry too when no HTTP request (whose
        middleware audits it) caused the change."""
        data = {"state": job.state, "attempts": job.attempts, **(details or {})}
        self.add_events(job.id, [("state", data)])
        if audit:
            append_entry(
                self.session,
                action=f"job.{job.state}",
                result="ok",
                actor=actor,
                resource=f"job:{job.id}",
                project_id=job.project_id,
                details=data,
            )

    # -- the queue ----------------------------------------------------------------------------------

    def claim(
        self, worker_id: str, lease_seconds: float, *, worker_info: dict[str, Any] | None = None
    ) -> Job | None:
        """Claim the next job for ``worker_id`` and lease it for ``lease_seconds``.

        First a running job whose lease expired (its worker died; attempts + 1, it resumes from its
        last checkpoint), else the highest-priority, oldest queued job whose backoff has passed and
        whose project runs fewer than ``max_running_jobs`` jobs. Call on a session with no open
        transaction; commit afterwards.
        """
        self.begin_write()
        now = utcnow()
        self._settle_expired(now)
        actor = f"worker:{worker_id}"
        job = self._next_expired(now)
        details: dict[str, Any] = {"worker": worker_id}
        if job is not None:
            details["reclaimed_from"] = job.lease_owner
        else:
            job = self._next_queued(now)
            if job is None:
                return None
        job.state = "running"
        job.attempts += 1
        job.lease_owner = worker_id
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        job.heartbeat_at = now
        job.not_before = None
        job.started_at = job.started_at or now
        job.worker_info = worker_info
        self.session.flush()
        self.record_state(job, actor=actor, audit=True, details=details)
        return job

    def _settle_expired(self, now: datetime) -> None:
        """Expired leases that must not run again: cancelled while their worker was gone, or out of
        attempts (a job that keeps killing its workers)."""
        query = (
            select(Job)
            .where(
                Job.state == "running",
                Job.lease_expires_at < now,
                or_(Job.cancel_requested.is_(True), Job.attempts >= Job.max_attempts),
            )
            .limit(20)
            .with_for_update(skip_locked=True)
        )
        for job in self.session.scalars(query):
            lost = job.lease_owner
            if job.cancel_requested:
                job.state = "cancelled"
            else:
                job.state = "failed"
                job.error = (
                    f"the worker running it ({lost}) stopped answering {job.attempts} time(s), "
                    f"which is max_attempts; retry the job once the cause is fixed"
                )
            self._clear_lease(job, now)
            self.session.flush()
            self.record_state(job, actor="queue", audit=True, details={"lost_worker": lost})

    def _next_expired(self, now: datetime) -> Job | None:
        query = (
            select(Job)
            .where(Job.state == "running", Job.lease_expires_at < now)
            .order_by(Job.lease_expires_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalar(query)

    def _next_queued(self, now: datetime) -> Job | None:
        running = aliased(Job)
        running_count = (
            select(func.count())
            .select_from(running)
            .where(running.project_id == Job.project_id, running.state == "running")
            .correlate(Job)
            .scalar_subquery()
        )
        skipped: list[str] = []
        for _ in range(16):
            query = (
                select(Job)
                .join(Project, Project.id == Job.project_id)
                .where(
                    Job.state == "queued",
                    or_(Job.not_before.is_(None), Job.not_before <= now),
                    running_count < Project.max_running_jobs,
                    Job.project_id.not_in(skipped) if skipped else true(),
                )
                .order_by(Job.priority.desc(), Job.created_at, Job.id)
                .limit(1)
                .with_for_update(of=Job, skip_locked=True)
            )
            job = self.session.scalar(query)
            if job is None or not self._postgres or self._project_has_room(job.project_id):
                return job
            skipped.append(job.project_id)  # another worker filled the project since our snapshot
        return None

    def _project_has_room(self, project_id: str) -> bool:
        """Recount the project's running jobs under its row lock (PostgreSQL's READ COMMITTED reads
        each statement afresh, so claims of the same project serialize here and the limit holds)."""
        limit = self.session.scalar(
            select(Project.max_running_jobs).where(Project.id == project_id).with_for_update()
        )
        count = self.session.scalar(
            select(func.count()).select_from(Job).where(Job.project_id == project_id, Job.state == "running")
        )
        return limit is not None and int(count or 0) < limit

    def _owned(self, job_id: str, worker_id: str) -> Job:
        self.begin_write()
        query = select(Job).where(Job.id == job_id).with_for_update()
        job = self.session.scalar(query.execution_options(populate_existing=True))
        if job is None or job.state != "running" or job.lease_owner != worker_id:
            raise LeaseLost(f"worker {worker_id} no longer holds job {job_id}")
        return job

    def heartbeat(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Renew the lease; returns whether a cancel was requested.

        Raises:
            LeaseLost: the job is no longer this worker's (kill what runs it).
        """
        job = self._owned(job_id, worker_id)
        now = utcnow()
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        job.heartbeat_at = now
        self.session.flush()
        return bool(job.cancel_requested)

    def set_run_dir(self, job_id: str, worker_id: str, run_dir: str) -> None:
        """Record where the job's files live, and that a requested restart has been done."""
        job = self._owned(job_id, worker_id)
        job.run_dir = run_dir
        job.restart_requested = False
        self.session.flush()

    def complete(self, job_id: str, worker_id: str, result: dict[str, Any]) -> Job:
        job = self._owned(job_id, worker_id)
        job.state, job.result, job.error = "succeeded", result, None
        self._finish(job, worker_id)
        return job

    def cancelled(self, job_id: str, worker_id: str) -> Job:
        """The worker stopped the job's process after a cancel request."""
        job = self._owned(job_id, worker_id)
        job.state = "cancelled"
        self._finish(job, worker_id)
        return job

    def fail(
        self, job_id: str, worker_id: str, error: str, *, backoff_seconds: float, retryable: bool = True
    ) -> Job:
        """Back to the queue after a backoff while attempts remain (and the error may pass), else failed."""
        job = self._owned(job_id, worker_id)
        job.error = error
        now = utcnow()
        if retryable and job.attempts < job.max_attempts and not job.cancel_requested:
            delay = backoff_delay(job.attempts, backoff_seconds)
            job.state = "queued"
            job.not_before = now + timedelta(seconds=delay)
            self._clear_lease(job, None)
            self.session.flush()
            self.record_state(
                job,
                actor=f"worker:{worker_id}",
                audit=True,
                details={"error": error[-2000:], "retry_in_seconds": delay},
            )
            return job
        job.state = "failed"
        self._finish(job, worker_id, details={"error": error[-2000:]})
        return job

    def release(self, job_id: str, worker_id: str) -> Job:
        """A stopping worker hands the job back untouched: queued again at once, the attempt not
        counted; the next worker resumes it from its last checkpoint."""
        job = self._owned(job_id, worker_id)
        job.state = "queued"
        job.attempts = max(job.attempts - 1, 0)
        self._clear_lease(job, None)
        self.session.flush()
        self.record_state(job, actor=f"worker:{worker_id}", audit=True, details={"released_by": worker_id})
        return job

    def _finish(self, job: Job, worker_id: str, details: dict[str, Any] | None = None) -> None:
        self._clear_lease(job, utcnow())
        self.session.flush()
        self.record_state(job, actor=f"worker:{worker_id}", audit=True, details=details)

    @staticmethod
    def _clear_lease(job: Job, finished_at: datetime | None) -> None:
        job.lease_owner = None
        job.lease_expires_at = None
        if finished_at is not None:
            job.finished_at = finished_at


__all__ = ["MAX_BACKOFF_SECONDS", "JobRepository", "LeaseLost", "backoff_delay"]
