"""The job queue on SQLite and PostgreSQL: exclusive claims under concurrency, priorities, per-project
limits, backoff, lease expiry and re-claim, and the audit/state trail of every worker transition."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from largeforge.platform.audit.orm import AuditEntry
from largeforge.platform.deps import make_session_factory
from largeforge.platform.jobs.orm import Job, JobEvent
from largeforge.platform.jobs.repository import JobRepository, LeaseLost, backoff_delay
from largeforge.platform.projects.orm import Project
from tests.platform.conftest import Cast

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def factory(platform_db: str, cast: Cast) -> sessionmaker[Session]:
    return make_session_factory(platform_db)


def add_jobs(factory: sessionmaker[Session], project_id: str, priorities: list[int]) -> list[str]:
    """Queued jobs, created one second apart in list order (so age breaks priority ties)."""
    with factory() as session:
        repo = JobRepository(session)
        ids = [
            repo.add(
                Job(
                    project_id=project_id,
                    kind="train",
                    spec={},
                    priority=priority,
                    created_at=T0 + timedelta(seconds=i),
                )
            ).id
            for i, priority in enumerate(priorities)
        ]
        session.commit()
    return ids


def set_limit(factory: sessionmaker[Session], project_id: str, limit: int) -> None:
    with factory() as session:
        session.execute(update(Project).where(Project.id == project_id).values(max_running_jobs=limit))
        session.commit()


def claim(factory: sessionmaker[Session], worker: str, lease: float = 30.0) -> Job | None:
    with factory() as session:
        job = JobRepository(session).claim(worker, lease, worker_info={"cpus": 1})
        session.commit()
        return job


def test_concurrent_workers_claim_each_job_exactly_once(factory: sessionmaker[Session], cast: Cast) -> None:
    alpha = cast.projects["alpha"]
    set_limit(factory, alpha, 100)
    expected = set(add_jobs(factory, alpha, [0] * 20))
    claimed: list[str] = []
    lock, start = threading.Lock(), threading.Barrier(4)

    def worker(name: str) -> None:
        start.wait()
        while (job := claim(factory, name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert Counter(claimed) == Counter(expected), "a job was claimed twice or not at all"
    with factory() as session:
        owners = session.execute(select(Job.lease_owner, Job.attempts)).all()
    assert all(owner is not None and attempts == 1 for owner, attempts in owners)


def test_higher_priority_first_then_oldest(factory: sessionmaker[Session], cast: Cast) -> None:
    alpha = cast.projects["alpha"]
    set_limit(factory, alpha, 10)
    low, high_old, normal, high_new = add_jobs(factory, alpha, [-1, 5, 0, 5])
    order = [claim(factory, "w") for _ in range(5)]
    assert [job.id if job else None for job in order] == [high_old, high_new, normal, low, None]


def test_project_running_limit_holds_and_frees(factory: sessionmaker[Session], cast: Cast) -> None:
    alpha, beta = cast.projects["alpha"], cast.projects["beta"]
    set_limit(factory, alpha, 1)
    first, second = add_jobs(factory, alpha, [0, 9])
    (other,) = add_jobs(factory, beta, [0])
    got = [claim(factory, "w"), claim(factory, "w"), claim(factory, "w")]
    assert [job.id if job else None for job in got] == [second, other, None]  # alpha's `first` waits
    with factory() as session:
        JobRepository(session).complete(second, "w", {"ok": True})
        session.commit()
    again = claim(factory, "w")
    assert again is not None and again.id == first


def test_failure_backs_off_then_fails_for_good(factory: sessionmaker[Session], cast: Cast) -> None:
    (job_id,) = add_jobs(factory, cast.projects["alpha"], [0])
    with factory() as session:
        session.execute(update(Job).where(Job.id == job_id).values(max_attempts=2))
        session.commit()
    assert claim(factory, "w") is not None
    before = datetime.now(UTC)
    with factory() as session:
        job = JobRepository(session).fail(job_id, "w", "boom", backoff_seconds=100)
        session.commit()
        assert job.state == "queued" and job.error == "boom"
        assert job.not_before is not None
        assert 99 <= (job.not_before - before).total_seconds() <= 102
    assert claim(factory, "w") is None, "claimed during its backoff"
    with factory() as session:  # the backoff passes
        session.execute(update(Job).where(Job.id == job_id).values(not_before=datetime.now(UTC)))
        session.commit()
    retried = claim(factory, "w")
    assert retried is not None and retried.attempts == 2
    with factory() as session:
        final = JobRepository(session).fail(job_id, "w", "boom again", backoff_seconds=100)
        session.commit()
        assert final.state == "failed" and final.finished_at is not None and final.lease_owner is None
    assert backoff_delay(1, 10) == 10 and backoff_delay(3, 10) == 40 and backoff_delay(30, 10) == 3600


def test_permanent_errors_are_not_retried(factory: sessionmaker[Session], cast: Cast) -> None:
    (job_id,) = add_jobs(factory, cast.projects["alpha"], [0])
    claim(factory, "w")
    with factory() as session:
        job = JobRepository(session).fail(job_id, "w", "bad recipe", backoff_seconds=0, retryable=False)
        session.commit()
        assert job.state == "failed" and job.attempts == 1


def test_expired_lease_is_reclaimed_and_the_old_worker_is_locked_out(
    factory: sessionmaker[Session], cast: Cast
) -> None:
    (job_id,) = add_jobs(factory, cast.projects["alpha"], [0])
    first = claim(factory, "dead", lease=0.3)
    assert first is not None and first.attempts == 1
    assert claim(factory, "other") is None  # still leased
    time.sleep(0.5)
    again = claim(factory, "alive")
    assert again is not None and again.id == job_id and again.attempts == 2
    assert again.lease_owner == "alive" and again.state == "running"
    with factory() as session, pytest.raises(LeaseLost):
        JobRepository(session).heartbeat(job_id, "dead", 30)
    with factory() as session, pytest.raises(LeaseLost):
        JobRepository(session).complete(job_id, "dead", {})
    with factory() as session:
        assert JobRepository(session).heartbeat(job_id, "alive", 30) is False
        session.commit()
        events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
        states = [(e.seq, e.data["state"], e.data.get("reclaimed_from")) for e in events]
    assert states == [(1, "running", None), (2, "running", "dead")]


def test_expired_jobs_out_of_attempts_or_cancelled_are_settled(
    factory: sessionmaker[Session], cast: Cast
) -> None:
    exhausted, cancelled = add_jobs(factory, cast.projects["alpha"], [1, 0])
    with factory() as session:
        session.execute(update(Job).where(Job.id == exhausted).values(max_attempts=1))
        session.commit()
    claim(factory, "dead", lease=0.2)
    claim(factory, "dead", lease=0.2)
    with factory() as session:
        session.execute(update(Job).where(Job.id == cancelled).values(cancel_requested=True))
        session.commit()
    time.sleep(0.4)
    assert claim(factory, "alive") is None  # neither runs again
    with factory() as session:
        states = {row[0]: row[1] for row in session.execute(select(Job.id, Job.state))}
        error = session.scalar(select(Job.error).where(Job.id == exhausted))
    assert states == {exhausted: "failed", cancelled: "cancelled"}
    assert error is not None and "stopped answering" in error


def test_worker_transitions_are_audited_with_the_worker_as_actor(
    factory: sessionmaker[Session], cast: Cast
) -> None:
    (job_id,) = add_jobs(factory, cast.projects["alpha"], [0])
    claim(factory, "w7")
    with factory() as session:
        JobRepository(session).complete(job_id, "w7", {"steps": 3})
        session.commit()
        entries = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.resource == f"job:{job_id}").order_by(AuditEntry.seq)
            )
        )
    assert [(e.action, e.actor, e.project_id) for e in entries] == [
        ("job.running", "worker:w7", cast.projects["alpha"]),
        ("job.succeeded", "worker:w7", cast.projects["alpha"]),
    ]


def test_release_requeues_without_counting_the_attempt(factory: sessionmaker[Session], cast: Cast) -> None:
    (job_id,) = add_jobs(factory, cast.projects["alpha"], [0])
    claim(factory, "stopping")
    with factory() as session:
        job = JobRepository(session).release(job_id, "stopping")
        session.commit()
        assert (job.state, job.attempts, job.lease_owner) == ("queued", 0, None)
    again = claim(factory, "next")
    assert again is not None and again.attempts == 1
