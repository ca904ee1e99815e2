"""``largeforge worker``: claim and run control-plane jobs on this machine."""

from __future__ import annotations

import typer


def worker(
    concurrency: int | None = typer.Option(
        None, min=1, help="Jobs run at once (default LARGEFORGE_WORKER_CONCURRENCY, 1)."
    ),
    lease_seconds: float | None = typer.Option(
        None, min=1.0, help="Lease per job, renewed every third of it (default LARGEFORGE_JOB_LEASE_SECONDS)."
    ),
    poll_interval: float | None = typer.Option(
        None, min=0.05, help="Seconds between looks at an empty queue (default LARGEFORGE_JOB_POLL_SECONDS)."
    ),
    executor: str = typer.Option(
        "local", help="local (a child process) or ray (a Ray cluster; pip extra 'ray')."
    ),
) -> None:
    """Run jobs from the queue until SIGTERM/SIGINT; running jobs are then handed back to the queue.

    Point LARGEFORGE_DATABASE_URL at the control plane's database (and LARGEFORGE_HOME at the shared
    artifact home); advertise this machine's devices on each job it runs."""
    from largeforge.platform.jobs.worker import run_worker

    run_worker(
        concurrency=concurrency, lease_seconds=lease_seconds, poll_seconds=poll_interval, executor=executor
    )
