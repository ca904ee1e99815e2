"""The deployment supervisor: makes serving processes match the deployments table.

One thread per API process. Each pass it claims the deployments that should run and that no live
supervisor holds (a hold is renewed every few seconds; a dead server's holds go stale and are taken
over), starts every missing replica as a ``largeforge serve <registry ref>`` child on a free loopback
port with the deployment's internal key, waits for ``/health``, probes running replicas now and then,
restarts crashed ones with exponential backoff, and stops the processes of deployments that were
stopped or deleted. On shutdown it stops its replicas and releases its holds, so the next server start
(the start-up reconciliation is simply the first pass) brings them back.

It owns processes and their rows in ``deployment_replicas``; it never decides what should run (that is
:mod:`.service`, through ``desired_state``) and never proxies a request (that is :mod:`.gateway`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from largeforge.db import utcnow
from largeforge.platform.deployments.orm import Deployment
from largeforge.platform.deployments.repository import DeploymentRepository

log = logging.getLogger("largeforge.platform.deployments")

HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 60.0
HEALTH_INTERVAL_SECONDS = 5.0
STOP_GRACE_SECONDS = 10.0
STABLE_AFTER_SECONDS = 60.0  # a replica healthy this long has its crash count (and backoff) reset
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class _Plan:
    """What one deployment's replicas run (a snapshot, so no session is held while processes start)."""

    deployment_id: str
    command: list[str]
    key: str
    replica_ids: dict[int, str]


@dataclass
class _Process:
    replica_id: str
    popen: subprocess.Popen[bytes]
    endpoint: str
    log_path: Path
    log_offset: int  # where this run's output starts in the (appended) log
    launched: float
    ready: bool = False
    ready_since: float = 0.0
    last_probe: float = 0.0
    healthy: bool = False


@dataclass
class _Backoff:
    crashes: int = 0
    not_before: float = 0.0


@dataclass
class _Pass:
    """Row changes found by one pass: ``{replica_id: {column: value}}`` (``restarts_inc`` adds one)."""

    replicas: dict[str, dict[str, Any]] = field(default_factory=dict)


class Supervisor:
    """Runs the deployments held by this process. Thread-safe entry points: start, wake, stop."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        database_url: str,
        home: Path,
        poll_seconds: float = 0.5,
        start_timeout_seconds: float = 180.0,
        max_backoff_seconds: float = 60.0,
    ) -> None:
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._session_factory = session_factory
        self._database_url = database_url
        self._home = home
        self._poll = poll_seconds
        self._start_timeout = start_timeout_seconds
        self._max_backoff = max_backoff_seconds
        self._processes: dict[tuple[str, int], _Process] = {}
        self._backoff: dict[tuple[str, int], _Backoff] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_claim = float("-inf")
        self._probe = httpx.Client(timeout=httpx.Timeout(1.0))
        # Resolved here, not in the child: a forked child of a threaded process must not dlopen.
        self._prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="deployment-supervisor", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now (after a deployment was created, stopped, started or deleted)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop every replica this supervisor runs and release its deployments (blocks until done)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._probe.close()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                woken = self._wake.is_set()
                self._wake.clear()
                try:
                    self.reconcile(claim=woken or time.monotonic() - self._last_claim >= HEARTBEAT_SECONDS)
                except Exception:
                    log.exception("deployment supervisor pass failed; retrying")
                self._wake.wait(self._poll)
        finally:
            self._shutdown()

    # one pass
    def reconcile(self, *, claim: bool = True) -> None:
        """One pass: claim, start/probe/restart/stop processes, write back what was seen."""
        plans, held = self._plan(claim)
        found = _Pass()
        for key in [
            key for key in self._processes if key[0] not in plans or key[1] not in plans[key[0]].replica_ids
        ]:
            process = self._processes.pop(key)
            self._backoff.pop(key, None)
            _terminate([process.popen])
            found.replicas[process.replica_id] = {"status": "stopped", "pid": None, "endpoint": None}
        for plan in plans.values():
            for number, replica_id in plan.replica_ids.items():
                change = self._tend(plan, number, replica_id)
                if change:
                    found.replicas[replica_id] = change
        self._write(found, held)

    def _plan(self, claim: bool) -> tuple[dict[str, _Plan], list[str]]:
        now = utcnow()
        with self._session_factory() as session:
            repo = DeploymentRepository(session)
            if claim:
                deployments = repo.claim(self.id, now, now - timedelta(seconds=STALE_AFTER_SECONDS))
                self._last_claim = time.monotonic()
            else:
                deployments = repo.held_by(self.id)
            plans = {}
            for deployment in deployments:
                if deployment.desired_state != "running":
                    continue
                rows = {row.number: row for row in repo.replicas_of(deployment.id)}
                for number in [number for number in rows if number >= deployment.replicas]:
                    repo.delete_replica(rows.pop(number))
                for number in range(deployment.replicas):
                    if number not in rows:
                        rows[number] = repo.add_replica(deployment.id, number)
                plans[deployment.id] = _Plan(
                    deployment.id,
                    serve_command(deployment),
                    deployment.internal_key,
                    {number: row.id for number, row in rows.items()},
                )
            held = [deployment.id for deployment in deployments]
            session.commit()
        return plans, held

    def _tend(self, plan: _Plan, number: int, replica_id: str) -> dict[str, Any] | None:
        """Start, probe or restart one replica; the row changes to record, if any."""
        key, now = (plan.deployment_id, number), time.monotonic()
        backoff = self._backoff.setdefault(key, _Backoff())
        process = self._processes.get(key)
        if process is None:
            if now < backoff.not_before:
                return None  # crashed; waiting out its backoff
            process = self._processes[key] = self._launch(plan, number, replica_id)
            change: dict[str, Any] = {
                "status": "starting",
                "pid": process.popen.pid,
                "endpoint": process.endpoint,
                "started_at": utcnow(),
            }
            return change | ({"restarts_inc": 1} if backoff.crashes else {})
        failure = self._failure(process, now)
        if failure is not None:
            del self._processes[key]
            backoff.crashes += 1
            delay = min(self._max_backoff, 2.0 ** (backoff.crashes - 1))
            backoff.not_before = now + delay
            log.warning("replica %s of %s %s; restart in %.0f s", number, plan.deployment_id, failure, delay)
            tail = _tail(process.log_path, process.log_offset)
            return {"status": "crashed", "pid": None, "last_error": f"{failure}: {tail}"}
        if process.ready and backoff.crashes and now - process.ready_since > STABLE_AFTER_SECONDS:
            backoff.crashes = 0
        return self._probe_change(process, now)

    def _failure(self, process: _Process, now: float) -> str | None:
        """Why the process is done for (it exited, or never came up in time), or None."""
        code = process.popen.poll()
        if code is not None:
            return f"exited with code {code}"
        if not process.ready and now - process.launched > self._start_timeout:
            _terminate([process.popen])
            return f"did not answer /health within {self._start_timeout:g} s"
        return None

    def _probe_change(self, process: _Process, now: float) -> dict[str, Any] | None:
        """Probe /health (often while starting, every few seconds once up); a status change or None."""
        if process.ready and now - process.last_probe < HEALTH_INTERVAL_SECONDS:
            return None
        process.last_probe = now
        healthy = self._healthy(process.endpoint)
        if not process.ready:
            if not healthy:
                return None
            process.ready, process.ready_since = True, now
        if healthy == process.healthy:
            return None
        process.healthy = healthy
        return {"status": "running" if healthy else "unhealthy"}

    def _launch(self, plan: _Plan, number: int, replica_id: str) -> _Process:
        from largeforge.settings import child_environment

        port = _free_port()
        log_path = self._home / "deployments" / plan.deployment_id / f"replica-{number}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = child_environment(
            {
                "LARGEFORGE_HOME": str(self._home),
                "LARGEFORGE_DATABASE_URL": self._database_url,
                "LARGEFORGE_SERVE_API_KEY": plan.key,
            }
        )
        prctl = self._prctl
        with log_path.open("ab") as sink:
            offset = sink.tell()
            popen = subprocess.Popen(
                [*plan.command, "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,  # a Ctrl-C of the server reaches the supervisor, which stops replicas
                # The replica dies with this thread even when the server is SIGKILLed (no orphans).
                preexec_fn=(lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)) if prctl else None,
            )
        log.info(
            "started replica %s of deployment %s (pid %s, port %s)",
            number,
            plan.deployment_id,
            popen.pid,
            port,
        )
        return _Process(replica_id, popen, f"http://127.0.0.1:{port}", log_path, offset, time.monotonic())

    def _healthy(self, endpoint: str) -> bool:
        try:
            return self._probe.get(f"{endpoint}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _write(self, found: _Pass, held: list[str]) -> None:
        with self._session_factory() as session:
            repo = DeploymentRepository(session)
            for replica_id, change in found.replicas.items():
                row = repo.get_replica(replica_id)
                if row is None:
                    continue  # its deployment was deleted meanwhile
                if change.pop("restarts_inc", 0):
                    row.restarts += 1
                for column, value in change.items():
                    setattr(row, column, value)
                row.updated_at = utcnow()
            for deployment_id in held:
                deployment = session.get(Deployment, deployment_id)
                if deployment is None or deployment.supervisor_id != self.id:
                    continue
                _settle(repo, deployment)
            session.commit()

    def _shutdown(self) -> None:
        processes = list(self._processes.values())
        _terminate([process.popen for process in processes])
        self._processes.clear()
        try:
            with self._session_factory() as session:
                repo = DeploymentRepository(session)
                for process in processes:
                    row = repo.get_replica(process.replica_id)
                    if row is not None:
                        row.status, row.pid, row.endpoint, row.updated_at = "stopped", None, None, utcnow()
                for deployment in repo.held_by(self.id):
                    if deployment.desired_state == "running":
                        deployment.status = "pending"
                    else:
                        _settle(repo, deployment)
                repo.release(self.id)
                session.commit()
        except Exception:
            log.exception("could not release deployments at shutdown")


def _settle(repo: DeploymentRepository, deployment: Deployment) -> None:
    """The deployment's status from its replicas; a stopped one is let go once its replicas are down."""
    replicas = repo.replicas_of(deployment.id)
    statuses = [replica.status for replica in replicas]
    if deployment.desired_state != "running":
        if all(status in ("stopped", "pending", "crashed") for status in statuses):
            for replica in replicas:
                replica.status, replica.pid, replica.endpoint = "stopped", None, None
            deployment.status, deployment.supervisor_id, deployment.supervisor_seen_at = "stopped", None, None
        return
    running = statuses.count("running")
    if statuses and running == len(statuses):
        status = "running"
    elif running:
        status = "degraded"
    elif any(replica.restarts for replica in replicas) and "starting" not in statuses:
        status = "failed"
    else:
        status = "starting"
    if deployment.status != status:
        deployment.status = status
        deployment.updated_at = utcnow()


def serve_command(deployment: Deployment) -> list[str]:
    """The ``largeforge serve`` command line of a replica (without ``--port``; the key goes by env)."""
    command = [
        sys.executable,
        "-m",
        "largeforge",
        "serve",
        deployment.version_ref,
        "--engine",
        deployment.engine,
        "--served-model-name",
        deployment.served_model_name,
    ]
    for name, adapter in deployment.adapters.items():
        command += ["--adapter", f"{name}={adapter['version']}"]
    for option, value in sorted(deployment.options.items()):
        command += [f"--{option.replace('_', '-')}", str(value)]
    return command


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM all (uvicorn finishes in-flight requests), then SIGKILL whatever is still up after the grace."""
    for popen in processes:
        if popen.poll() is None:
            popen.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for popen in processes:
        try:
            popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, start: int, limit: int = 1500) -> str:
    """The end of one run's output (the log holds every run of the replica)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(start, path.stat().st_size - limit))
            return handle.read().decode(errors="replace").strip() or "(no output)"
    except OSError:
        return "(no log)"


def start_supervisor(app: Any) -> None:
    """Start-up hook for :func:`largeforge.platform.app.create_platform_app`: start this process's
    supervisor (its first pass reconciles: deployments that should run get their replicas started)."""
    from largeforge.settings import get_settings

    settings = get_settings()
    factory: sessionmaker[Session] = app.state.session_factory
    supervisor = Supervisor(
        factory,
        database_url=factory.kw["bind"].url.render_as_string(hide_password=False),
        home=settings.home,
        start_timeout_seconds=settings.deployment_start_timeout_seconds,
        max_backoff_seconds=settings.deployment_max_backoff_seconds,
    )
    app.state.deployment_supervisor = supervisor
    supervisor.start()


async def stop_supervisor(app: Any) -> None:
    """Shutdown hook: stop the replicas, release the deployments, close the gateway's connections."""
    import anyio

    supervisor: Supervisor | None = getattr(app.state, "deployment_supervisor", None)
    if supervisor is not None:
        await anyio.to_thread.run_sync(supervisor.stop)
        app.state.deployment_supervisor = None
    gateway = getattr(app.state, "deployment_gateway", None)
    if gateway is not None:
        await gateway.aclose()


__all__ = ["Supervisor", "serve_command", "start_supervisor", "stop_supervisor"]
