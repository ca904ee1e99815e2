"""Workers: claim jobs from the queue, run each in a runner process, report what it says.

A :class:`Worker` runs ``concurrency`` slots. Each slot claims a job (a lease of ``lease_seconds``),
starts its runner through the executor, stores the runner's events in ``job_events`` and, when the
runner exits, records the outcome. A heartbeat thread per job renews the lease every third of it and
carries cancel requests to the process; a worker that cannot renew its lease (it lost the database, or
another worker took the job after the lease ran out) kills its runner at once.

Stopping is graceful: no new claims, running jobs are stopped and handed back (``release``) so another
worker resumes them from their last checkpoint. A worker killed outright loses its leases instead; the
jobs are claimed again once they expire. Either way nothing is lost.

``largeforge worker`` (cli/worker.py) runs one; ``largeforge server`` embeds one through
:func:`start_embedded_worker` / :func:`stop_embedded_worker`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from largeforge.errors import LargeForgeError, Unavailable
from largeforge.platform.jobs.executors import LOG_FILE, Execution, Executor, make_executor
from largeforge.platform.jobs.repository import JobRepository, LeaseLost
from largeforge.platform.jobs.runner import JOB_FILE, RUN_DIR

log = logging.getLogger("largeforge.platform.worker")

# Metric record fields that differ between a run and its resumption for the same step.
_VOLATILE_METRIC_FIELDS = frozenset({"time", "tokens_per_second", "tokens_seen", "epoch"})
_FLUSH_SECONDS = 0.5


@lru_cache(maxsize=1)
def describe_devices() -> dict[str, Any]:
    """What this worker offers: host, CPUs and CUDA devices (stored on each job it runs)."""
    info: dict[str, Any] = {"hostname": socket.gethostname(), "pid": os.getpid(), "cpus": os.cpu_count()}
    try:
        import torch
    except ImportError:
        info["cuda"] = []
        return info
    cuda = torch.cuda.is_available()
    info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return info


def metric_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """Identifies a metrics record across attempts: a resumed run logs the same step with the same
    fields again, and only the first of them is kept."""
    return (record.get("step"), tuple(sorted(k for k in record if k not in _VOLATILE_METRIC_FIELDS)))


@dataclass(frozen=True)
class ClaimedJob:
    """What a slot needs of a job after the claim transaction closed."""

    id: str
    project_id: str
    kind: str
    spec: dict[str, Any]
    attempts: int
    restart_requested: bool
    created_by: str | None


@dataclass
class _Attempt:
    """Shared by a slot and its heartbeat thread for one running job."""

    job: ClaimedJob
    execution: Execution
    done: threading.Event = field(default_factory=threading.Event)
    lease_lost: bool = False
    cancelled: bool = False
    stopped: bool = False
    result: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True
    seen_metrics: set[tuple[Any, ...]] = field(default_factory=set)
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Worker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        executor: Executor | None = None,
        worker_id: str | None = None,
        concurrency: int | None = None,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        backoff_seconds: float | None = None,
        app: Any = None,
    ) -> None:
        from largeforge.settings import get_settings

        settings = get_settings()
        self.session_factory = session_factory
        self.executor = executor or make_executor("local")
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.concurrency = concurrency or settings.worker_concurrency
        self.lease_seconds = lease_seconds or settings.job_lease_seconds
        self.poll_seconds = poll_seconds or settings.job_poll_seconds
        self.backoff_seconds = settings.job_backoff_seconds if backoff_seconds is None else backoff_seconds
        self.jobs_dir = settings.jobs_dir
        self.app = app
        bind = session_factory.kw["bind"]
        self.env = {
            "LARGEFORGE_HOME": str(settings.home),
            "LARGEFORGE_DATABASE_URL": bind.url.render_as_string(hide_password=False),
        }
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._attempts: dict[str, _Attempt] = {}
        self._lock = threading.Lock()

    @property
    def actor(self) -> str:
        return f"worker:{self.worker_id}"

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._slot, name=f"job-slot-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("worker started", extra={"worker": self.worker_id, "executor": self.executor.name})

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming; stop running jobs and hand them back for another worker to resume."""
        self._stopping.set()
        with self._lock:
            attempts = list(self._attempts.values())
        for attempt in attempts:
            attempt.stopped = True
            attempt.execution.terminate(grace_seconds)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.executor.close()
        log.info("worker stopped", extra={"worker": self.worker_id})

    def wait(self) -> None:
        """Block until :meth:`stop` was called (from a signal handler, say)."""
        while not self._stopping.wait(0.5):
            pass

    def request_stop(self) -> None:
        self._stopping.set()

    # -- one slot -----------------------------------------------------------------------------------

    def _slot(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.claim_one()
            except Exception:  # the worker loop: a database hiccup must not kill the slot
                log.exception("claiming a job failed; trying again")
                job = None
            if job is None:
                self._stopping.wait(self.poll_seconds)
                continue
            try:
                self.run_job(job)
            except Exception:  # the worker loop: the lease runs out and the job is retried
                log.exception("running job %s failed inside the worker", job.id)

    def claim_one(self) -> ClaimedJob | None:
        with self.session_factory() as session:
            job = JobRepository(session).claim(
                self.worker_id, self.lease_seconds, worker_info=describe_devices()
            )
            if job is None:
                session.rollback()
                return None
            claimed = ClaimedJob(
                id=job.id,
                project_id=job.project_id,
                kind=job.kind,
                spec=dict(job.spec),
                attempts=job.attempts,
                restart_requested=job.restart_requested,
                created_by=job.created_by,
            )
            session.commit()
        return claimed

    def run_job(self, job: ClaimedJob) -> None:
        """Run one claimed job to its outcome (the caller holds its lease)."""
        job_dir = self.jobs_dir / job.id
        run_dir = job_dir / RUN_DIR
        if job.restart_requested:
            shutil.rmtree(run_dir, ignore_errors=True)  # retry: a new run, not a resumption
        job_dir.mkdir(parents=True, exist_ok=True)
        with self.session_factory() as session:
            repo = JobRepository(session)
            repo.set_run_dir(job.id, self.worker_id, str(run_dir))
            seen = {metric_key(record) for record in repo.metric_records(job.id)}
            session.commit()
        payload = {"job_id": job.id, "kind": job.kind, "spec": job.spec, "attempt": job.attempts}
        (job_dir / JOB_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
        attempt = _Attempt(job, self.executor.start(job_dir, self.env), seen_metrics=seen)
        attempt.pending.append(
            (
                "log",
                {
                    "message": f"attempt {job.attempts} started on worker {self.worker_id}",
                    "worker": self.worker_id,
                    "pid": getattr(attempt.execution, "pid", None),
                },
            )
        )
        with self._lock:
            self._attempts[job.id] = attempt
            if self._stopping.is_set():  # stop() began while this job was being claimed
                attempt.stopped = True
                threading.Thread(target=attempt.execution.terminate, daemon=True).start()
        heartbeat = threading.Thread(target=self._heartbeat, args=(attempt,), name=f"heartbeat-{job.id}")
        heartbeat.start()
        try:
            code = self._follow(attempt)
        finally:
            attempt.done.set()
            heartbeat.join()
            with self._lock:
                self._attempts.pop(job.id, None)
        self._record_outcome(attempt, code, job_dir)

    def _follow(self, attempt: _Attempt) -> int:
        """Store the runner's events until it exits; returns its exit code."""
        last_flush = time.monotonic()
        while True:
            for line in attempt.execution.read_lines(timeout=0.2):
                self._handle_line(attempt, line)
            code = attempt.execution.returncode()
            if code is not None or time.monotonic() - last_flush >= _FLUSH_SECONDS:
                self._flush(attempt)
                last_flush = time.monotonic()
            if code is not None:
                for line in attempt.execution.read_lines(timeout=0):
                    self._handle_line(attempt, line)
                self._flush(attempt)
                return code

    def _handle_line(self, attempt: _Attempt, line: str) -> None:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            attempt.pending.append(("log", {"message": line}))
            return
        event = record.pop("event", None)
        if event in ("start", "progress", "finish"):
            attempt.pending.append(("progress", {"event": event, **record}))
        elif event == "metric":
            key = metric_key(record)
            if key not in attempt.seen_metrics:  # logged by an earlier attempt already
                attempt.seen_metrics.add(key)
                attempt.pending.append(("metric", record))
        elif event == "registered":
            self._claim_model(attempt.job, str(record.get("ref", "")))
            attempt.pending.append(("log", {"message": f"registered {record.get('ref')}"}))
        elif event == "result":
            attempt.result = record.get("result") if isinstance(record.get("result"), dict) else {}
        elif event == "error":
            attempt.error = str(record.get("message", "the job failed"))
            attempt.retryable = bool(record.get("retryable", True))
            attempt.pending.append(
                ("log", {"message": f"error: {attempt.error}", "code": record.get("code")})
            )
        else:
            attempt.pending.append(("log", record))

    def _flush(self, attempt: _Attempt) -> None:
        if not attempt.pending or attempt.lease_lost:
            attempt.pending.clear()
            return
        with self.session_factory() as session:
            JobRepository(session).add_events(attempt.job.id, attempt.pending)
            session.commit()
        attempt.pending.clear()

    def _heartbeat(self, attempt: _Attempt) -> None:
        interval = self.lease_seconds / 3
        last_renewed = time.monotonic()
        while not attempt.done.wait(interval):
            try:
                with self.session_factory() as session:
                    cancel = JobRepository(session).heartbeat(
                        attempt.job.id, self.worker_id, self.lease_seconds
                    )
                    session.commit()
                last_renewed = time.monotonic()
            except LeaseLost:
                self._abandon(attempt, "the job's lease went to another worker")
                return
            except Exception:  # keep trying until the lease would run out
                log.exception("heartbeat for job %s failed", attempt.job.id)
                if time.monotonic() - last_renewed > self.lease_seconds * 0.8:
                    self._abandon(attempt, "the lease could not be renewed before it ran out")
                    return
                continue
            if cancel and not attempt.cancelled:
                attempt.cancelled = True
                # Off this thread: the grace period must not delay the next heartbeat.
                threading.Thread(target=attempt.execution.terminate, daemon=True).start()

    def _abandon(self, attempt: _Attempt, why: str) -> None:
        log.warning("killing job %s: %s", attempt.job.id, why)
        attempt.lease_lost = True
        attempt.execution.terminate(grace_seconds=0)

    # -- outcomes -----------------------------------------------------------------------------------

    def _record_outcome(self, attempt: _Attempt, code: int, job_dir: Path) -> None:
        job = attempt.job
        if attempt.lease_lost:
            return  # another worker owns the job now; its outcome is theirs to record
        result = attempt.result if code == 0 else None
        error = attempt.error
        if result is not None:
            try:
                result = self._after_success(job, result)
            except LargeForgeError as exc:
                result, error, attempt.retryable = None, exc.message, not isinstance(exc, Unavailable)
        with self.session_factory() as session:
            repo = JobRepository(session)
            try:
                if result is not None:
                    repo.complete(job.id, self.worker_id, result)
                elif attempt.cancelled:
                    repo.cancelled(job.id, self.worker_id)
                elif attempt.stopped:
                    repo.release(job.id, self.worker_id)
                else:
                    message = error or _crash_message(code, job_dir)
                    repo.fail(
                        job.id,
                        self.worker_id,
                        message,
                        backoff_seconds=self.backoff_seconds,
                        retryable=attempt.retryable,
                    )
                session.commit()
            except LeaseLost:
                log.warning("job %s changed hands before its outcome was recorded", job.id)

    def _after_success(self, job: ClaimedJob, result: dict[str, Any]) -> dict[str, Any]:
        """Steps that belong to the control plane, not the runner: a pipeline's deployment."""
        deploy = job.spec.get("deploy") if job.kind == "pipeline" else None
        if not deploy:
            return result
        try:
            from largeforge.platform.deployments.service import DeploymentService
        except ImportError as exc:
            raise Unavailable(
                "the pipeline asked for a deployment but this installation has no deployments service; "
                f"deploy {result.get('registered')} by hand"
            ) from exc
        from largeforge.platform.auth.orm import User
        from largeforge.platform.auth.principal import Principal
        from largeforge.platform.projects.orm import Project

        with self.session_factory() as session:
            project = session.get(Project, job.project_id)
            user = session.get(User, job.created_by) if job.created_by else None
            if project is None or user is None:
                raise Unavailable("the job's project or its submitter no longer exists; nothing was deployed")
            principal = Principal(user_id=user.id, email=user.email, is_admin=user.is_admin, via="job")
            supervisor = getattr(getattr(self.app, "state", None), "deployment_supervisor", None)
            service = DeploymentService(session, supervisor)
            deployment = service.create(
                project,
                principal,
                _public_reference(project, str(result["registered"])),
                None,
                int(deploy.get("replicas", 1)),
                str(deploy.get("engine", "hf")),
            )
            session.commit()
            service.notify()
            return {**result, "deployment": deployment.id}

    def _claim_model(self, job: ClaimedJob, ref: str) -> None:
        """Record that the job's project owns the registry model it just created."""
        from largeforge.platform.models.service import claim_model
        from largeforge.platform.projects.orm import Project

        with self.session_factory() as session:
            project = session.get(Project, job.project_id)
            if project is not None:
                claim_model(session, project, ref.rpartition(":")[0] or ref)
                session.commit()


def _public_reference(project: Any, registry_ref: str) -> str:
    from largeforge.platform.models.service import public_name

    name, _, version = registry_ref.rpartition(":")
    return f"{public_name(project, name)}:{version}"


def _crash_message(code: int, job_dir: Path) -> str:
    tail = ""
    log_file = job_dir / LOG_FILE
    if log_file.exists():
        with log_file.open("rb") as handle:
            handle.seek(max(log_file.stat().st_size - 1500, 0))
            tail = handle.read().decode("utf-8", "replace").strip()
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return f"the job's process {how}; the end of its log:\n{tail}" if tail else f"the job's process {how}"


# -- the embedded worker of `largeforge server` ----------------------------------------------------------


def start_embedded_worker(app: Any) -> None:
    """Startup hook: an in-process worker over the app's database (``app.state.job_worker``)."""
    worker = Worker(app.state.session_factory, app=app)
    worker.start()
    app.state.job_worker = worker


def stop_embedded_worker(app: Any) -> None:
    """Shutdown hook: stop claiming; running jobs are handed back, claimable by the next worker."""
    worker: Worker | None = getattr(app.state, "job_worker", None)
    if worker is not None:
        worker.stop()
        app.state.job_worker = None


def run_worker(
    *,
    concurrency: int | None = None,
    lease_seconds: float | None = None,
    poll_seconds: float | None = None,
    executor: str = "local",
    database_url: str | None = None,
) -> None:
    """``largeforge worker``: run a worker until SIGTERM/SIGINT, then stop gracefully (running jobs are
    handed back, claimable at once) and return."""
    import signal

    from largeforge.platform.deps import make_session_factory
    from largeforge.platform.logging_setup import configure_logging
    from largeforge.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    worker = Worker(
        make_session_factory(database_url or settings.resolved_database_url()),
        executor=make_executor(executor),
        concurrency=concurrency,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.request_stop())
    worker.start()
    worker.wait()
    worker.stop()


__all__ = [
    "ClaimedJob",
    "Worker",
    "describe_devices",
    "metric_key",
    "run_worker",
    "start_embedded_worker",
    "stop_embedded_worker",
]
