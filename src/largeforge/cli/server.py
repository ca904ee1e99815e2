"""``largeforge server``: run the control plane (REST API, web UI, embedded job worker)."""

from __future__ import annotations

import typer

from largeforge.cli.output import fail
from largeforge.errors import LargeForgeError


def server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 in a container)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    no_worker: bool = typer.Option(
        False,
        "--no-worker",
        help="API only: run no job worker here (scale-out replicas; see `largeforge worker`).",
    ),
    no_supervisor: bool = typer.Option(
        False,
        "--no-supervisor",
        help="Run no deployment supervisor here (another process manages deployments).",
    ),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Mark session cookies Secure (serve behind HTTPS)."
    ),
    graceful_timeout: int = typer.Option(
        30, min=0, help="Seconds in-flight requests get to finish after SIGTERM before they are cancelled."
    ),
) -> None:
    """Serve the control plane until SIGTERM/SIGINT, then drain in-flight requests and exit 0.

    Embedded default: a SQLite file and local artifacts under LARGEFORGE_HOME, jobs run by a worker in this process.

    Logs are JSON lines on stderr (LARGEFORGE_LOG_FORMAT=text for people)."""
    from largeforge.platform.server import run_server

    try:
        run_server(
            host,
            port,
            worker=not no_worker,
            supervisor=not no_supervisor,
            secure_cookies=secure_cookies,
            graceful_timeout=graceful_timeout,
        )
    except LargeForgeError as error:
        raise fail(error, False) from None
