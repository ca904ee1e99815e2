"""Control-plane throughput on SQLite and on PostgreSQL: reads under load, and the job queue's claims.

    python bench/platform.py [--seconds 10] [--clients 32] [--jobs 500] [--workers 4]
                             [--backends sqlite,postgresql] [--json]

For each backend it seeds a database (a user and key, a project with 120 jobs), starts
``largeforge server --no-worker`` as a real process on a free loopback port and runs ``--clients``
concurrent HTTP clients (httpx, asyncio) for ``--seconds`` against four reads — GET project, GET
jobs (a page of 20), GET models, GET one job — reporting requests/s and p50/p99 latency. It then
stops the server and measures the queue: ``--workers`` threads each loop ``JobRepository.claim`` +
``complete`` (one commit each, audit entries included) until ``--jobs`` no-op jobs are done.

PostgreSQL is a throwaway cluster (initdb on a free port, fsync off, like the test fixtures); it is
skipped with a message where the server binaries are missing. The load generator shares the machine
with the server, so on a small machine the figures are a floor. The default run takes about a minute.
"""

from __future__ import annotations

import sys

# Run as `python bench/platform.py`, this file's directory comes first on sys.path and its name would
# shadow the standard library's `platform` module (which uuid, httpx and SQLAlchemy import).
if sys.path and sys.path[0] == __import__("os").path.dirname(__file__):
    sys.path.pop(0)

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

READ_ROUTES = ("project", "jobs list", "models list", "job")


@dataclass
class BackendResult:
    backend: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    requests_per_second: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    per_route_p50_ms: dict[str, float] = field(default_factory=dict)
    claims: int = 0
    claim_seconds: float = 0.0
    claims_per_second: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- databases ------------------------------------------------------------------------------------


@contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / 'bench.db'}"


@contextmanager
def postgres_database(workdir: Path) -> Iterator[str | None]:
    """A throwaway cluster; yields None (and says why) where PostgreSQL is not installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        print(
            "postgresql: skipped (no server binaries under /usr/lib/postgresql; apt-get install postgresql)"
        )
        yield None
        return
    bindir = found[-1].parent
    base = workdir / "pg"
    base.mkdir()
    base.chmod(0o777)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data, port = base / "data", free_port()
    subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-l", str(base / "log"), "-o", options, "-w", "start"], check=True, capture_output=True
    )
    try:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True)


# -- seeding --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    key: str
    project_id: str
    job_ids: list[str]
    queue_project_id: str


def seed(url: str, jobs_to_claim: int) -> Seed:
    """A user with an unlimited key, a project with 120 finished jobs to read, and a second project
    holding the jobs the claim phase will run (room for every worker)."""
    from largeforge.db import session_scope
    from largeforge.platform.auth.service import AuthService
    from largeforge.platform.jobs.orm import Job
    from largeforge.platform.projects.service import ProjectService

    with session_scope(url) as session:
        auth, projects = AuthService(session), ProjectService(session)
        user = auth.create_user("bench@example.com", "bench-password")
        key = auth.create_key(user, "bench", requests_per_minute=0).secret  # 0: no rate limit
        reads = projects.create("reads", user)
        queue = projects.create("queue", user, max_running_jobs=1000)
        spec = {"recipe": {"method": "sft", "base_model": "tiny", "dataset": "chat@1", "max_steps": 100}}
        read_jobs = [
            Job(
                project_id=reads.id,
                kind="train",
                spec=spec,
                state="succeeded",
                created_by=user.id,
                result={"loss": 1.0},
            )
            for _ in range(120)
        ]
        session.add_all(read_jobs)
        session.add_all(
            Job(project_id=queue.id, kind="train", spec={}, state="queued", created_by=user.id)
            for _ in range(jobs_to_claim)
        )
        session.flush()
        return Seed(key, reads.id, [job.id for job in read_jobs], queue.id)


# -- the HTTP phase -------------------------------------------------------------------------------


@contextmanager
def platform_server(url: str, home: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "LARGEFORGE_DATABASE_URL": url, "LARGEFORGE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("LARGEFORGE_REDIS_URL", None)
    log = (home / "server.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "largeforge",
        "server",
        "--port",
        str(port),
        "--no-worker",
        "--no-supervisor",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def load(
    base: str, data: Seed, clients: int, seconds: float, warmup: float
) -> tuple[list[tuple[str, float]], int]:
    """``clients`` loops over the four reads; returns (route, seconds) of each answer after the warm-up,
    and the number of non-200 answers."""
    project = f"{base}/api/v1/projects/{data.project_id}"
    paths = {
        "project": project,
        "jobs list": f"{project}/jobs?limit=20",
        "models list": f"{project}/models",
        "job": None,
    }
    timings: list[tuple[str, float]] = []
    errors = 0
    started = time.perf_counter()
    measure_from, stop_at = started + warmup, started + warmup + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {data.key}"}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:

        async def one_client(index: int) -> None:
            nonlocal errors
            i = index
            while (now := time.perf_counter()) < stop_at:
                route = READ_ROUTES[i % len(READ_ROUTES)]
                url = paths[route] or f"{project}/jobs/{data.job_ids[i % len(data.job_ids)]}"
                i += 1
                response = await client.get(url)
                done = time.perf_counter()
                if now >= measure_from:
                    timings.append((route, done - now))
                    errors += response.status_code != 200

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return timings, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the claim phase ------------------------------------------------------------------------------


def claim_all(url: str, workers: int, expected: int) -> tuple[int, float]:
    """``workers`` threads claim and complete jobs until the queue is empty; (jobs done, seconds)."""
    from sqlalchemy.orm import sessionmaker

    from largeforge.db import get_engine
    from largeforge.platform.jobs.repository import JobRepository

    factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    done = [0] * workers
    failures: list[BaseException] = []

    def work(index: int) -> None:
        worker_id = f"bench-{index}"
        try:
            while True:
                with factory() as session:
                    repo = JobRepository(session)
                    job = repo.claim(worker_id, lease_seconds=60)
                    session.commit()
                    if job is None:
                        return
                    repo.complete(job.id, worker_id, {"ok": True})
                    session.commit()
                    done[index] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"a claim worker failed: {failures[0]!r}") from failures[0]
    if sum(done) != expected:
        raise RuntimeError(f"claimed {sum(done)} jobs, expected {expected}")
    return sum(done), elapsed


# -- driver ---------------------------------------------------------------------------------------


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> BackendResult | None:
    from largeforge.db import dispose_engines

    opener = sqlite_database if name == "sqlite" else postgres_database
    home = workdir / name
    home.mkdir()
    with opener(home) as url:
        if url is None:
            return None
        data = seed(url, args.jobs)
        dispose_engines()
        result = BackendResult(backend=name)
        with platform_server(url, home) as base:
            timings, errors = asyncio.run(load(base, data, args.clients, args.seconds, args.warmup))
        latencies = [seconds for _, seconds in timings]
        result.requests, result.errors, result.seconds = len(timings), errors, args.seconds
        result.requests_per_second = len(timings) / args.seconds
        result.p50_ms = percentile(latencies, 0.50) * 1000
        result.p99_ms = percentile(latencies, 0.99) * 1000
        result.per_route_p50_ms = {
            route: statistics.median(s for r, s in timings if r == route) * 1000 for route in READ_ROUTES
        }
        result.claims, result.claim_seconds = claim_all(url, args.workers, args.jobs)
        result.claims_per_second = result.claims / result.claim_seconds
        dispose_engines()
        return result


def print_table(results: list[BackendResult], args: argparse.Namespace) -> None:
    print(
        f"\ncontrol plane: {args.clients} clients × {args.seconds:g} s of reads; "
        f"{args.workers} workers claiming {args.jobs} jobs; {os.cpu_count()} CPUs"
    )
    header = f"{'backend':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'claims/s':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:<12}{r.requests_per_second:>9.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}"
            f"{r.errors:>8}{r.claims_per_second:>10.0f}"
        )
    by_name = {r.backend: r for r in results}
    if {"sqlite", "postgresql"} <= set(by_name):
        pg, lite = by_name["postgresql"], by_name["sqlite"]
        print(
            f"{'PG/SQLite':<12}{pg.requests_per_second / lite.requests_per_second:>9.2f}"
            f"{pg.p50_ms / lite.p50_ms:>9.2f}{pg.p99_ms / lite.p99_ms:>9.2f}{'':>8}"
            f"{pg.claims_per_second / lite.claims_per_second:>10.2f}"
        )
    for r in results:
        routes = ", ".join(f"{route} {ms:.1f}" for route, ms in r.per_route_p50_ms.items())
        print(f"{r.backend} p50 ms by route: {routes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="Measured seconds of reads per backend.")
    parser.add_argument("--warmup", type=float, default=2, help="Seconds of reads before measuring.")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent HTTP clients.")
    parser.add_argument("--jobs", type=int, default=500, help="No-op jobs for the claim phase.")
    parser.add_argument("--workers", type=int, default=4, help="Claiming worker threads.")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="Comma-separated: sqlite, postgresql."
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON document instead of the table.")
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s) {sorted(unknown)}; use sqlite and/or postgresql")
    workdir = Path(tempfile.mkdtemp(prefix="lf-bench-platform-"))
    workdir.chmod(0o755)  # the postgres user must reach its cluster directory inside
    try:
        results = [r for name in backends if (r := run_backend(name, args, workdir)) is not None]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print_table(results, args)


if __name__ == "__main__":
    main()
