"""``largeforge --server URL jobs …``: submit a recipe or pipeline, list, status, follow, logs,
cancel, retry, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from largeforge.cli.output import JSON_OPTION, run_command, stdout_console
from largeforge.cli.remote.connection import PROJECT_OPTION, connect
from largeforge.cli.remote.tables import print_fields, print_rows
from largeforge.errors import InvalidInput, JobFailed

app = typer.Typer(help="Jobs on a control plane (put --server URL before the group).", no_args_is_help=True)

JOB_COLUMNS = ("id", "name", "kind", "state", "priority", "attempts", "created_at", "finished_at")
KINDS = ("train", "evaluate", "export", "pipeline")


def read_spec(path: Path, kind: str) -> dict[str, Any]:
    """The job spec of ``kind`` from a YAML/JSON file: a training recipe becomes ``{"recipe": …}``;
    the other kinds' files are the spec itself (e.g. a pipeline's recipe, suite, gate, register, deploy).

    Raises:
        InvalidInput: the file is missing, not YAML, or not a mapping; the kind is unknown.
    """
    from largeforge.yaml_files import read_yaml_file

    if kind not in KINDS:
        raise InvalidInput(f"--kind {kind!r} is not a job kind; use one of {', '.join(KINDS)}")
    document, source = read_yaml_file(
        path, InvalidInput(f"no file {path}: pass a recipe or job spec YAML (see examples/recipes/)")
    )
    if not isinstance(document, dict):
        raise InvalidInput(
            f"{source} must hold a YAML mapping (a recipe or a job spec), not {type(document).__name__}"
        )
    if kind == "train" and "recipe" not in document:
        return {"recipe": document}
    return document


def _finished(job: dict[str, Any]) -> dict[str, Any]:
    """A followed job's end: failure is exit code 1 with the job's error."""
    if job.get("state") in ("failed", "cancelled"):
        raise JobFailed(f"job {job['id']} {job['state']}: {job.get('error') or 'no error recorded'}")
    return job


@app.command("submit")
def submit(
    ctx: typer.Context,
    spec_file: Path = typer.Argument(..., help="Recipe YAML (--kind train) or job spec YAML (other kinds)."),
    project: str = PROJECT_OPTION,
    kind: str = typer.Option("train", "--kind", "-k", help="train, evaluate, export or pipeline."),
    priority: int = typer.Option(0, help="Higher runs first among the project's queued jobs."),
    name: str | None = typer.Option(None, "--name", "-n", help="A label for the job."),
    max_attempts: int | None = typer.Option(
        None, min=1, help="Attempts before the job fails (server default 3)."
    ),
    follow: bool = typer.Option(False, "--follow", "-f", help="Show live progress until the job ends."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Queue a job; with --follow, show its progress live (server-sent events) until it ends."""
    from largeforge.cli.remote.follow import follow_job

    def action() -> dict[str, Any]:
        spec = read_spec(spec_file, kind)
        with connect(ctx) as client:
            job = client.jobs.submit(
                project, kind, spec, priority=priority, max_attempts=max_attempts, name=name
            )
            if not follow:
                return job
            if not json_output:
                stdout_console().print(f"submitted job [bold]{job['id']}[/] ({kind}) to {project}")
            return _finished(follow_job(client, project, job["id"], json_output=json_output))

    def render(job: dict[str, Any]) -> None:
        if follow:
            stdout_console().print(f"job [bold]{job['id']}[/] {job.get('state')}")
            _print_result(job)
        else:
            stdout_console().print(
                f"submitted job [bold]{job['id']}[/] ({job.get('kind')}, {job.get('state')}); "
                f"follow it with: largeforge jobs follow {job['id']} -p {project}"
            )

    run_command(json_output, action, render=render, to_json=lambda job: job)


@app.command("list")
def list_(
    ctx: typer.Context,
    project: str = PROJECT_OPTION,
    state: str | None = typer.Option(None, help="Only jobs in this state (queued, running, succeeded …)."),
    limit: int = typer.Option(50, min=1, max=1000, help="How many jobs, newest first."),
    json_output: bool = JSON_OPTION,
) -> None:
    """The project's jobs, newest first."""

    def action() -> list[dict[str, Any]]:
        with connect(ctx) as client:
            return client.jobs.list(project, state=state, limit=limit)

    run_command(
        json_output,
        action,
        render=lambda rows: print_rows(rows, JOB_COLUMNS, title=f"jobs of {project}", empty="no jobs"),
        to_json=lambda rows: rows,
    )


@app.command("status")
def status(
    ctx: typer.Context,
    job: str = typer.Argument(..., help="Job id."),
    project: str = PROJECT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """One job: state, attempts, timing, result or error."""

    def action() -> dict[str, Any]:
        with connect(ctx) as client:
            return client.jobs.get(project, job)

    def render(doc: dict[str, Any]) -> None:
        print_fields({k: v for k, v in doc.items() if k not in ("spec", "result")}, title=f"job {doc['id']}")
        _print_result(doc)

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("follow")
def follow(
    ctx: typer.Context,
    job: str = typer.Argument(..., help="Job id."),
    project: str = PROJECT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Show a job's progress live until it ends (exit code 1 when it fails or is cancelled)."""
    from largeforge.cli.remote.follow import follow_job

    def action() -> dict[str, Any]:
        with connect(ctx) as client:
            return _finished(follow_job(client, project, job, json_output=json_output))

    def render(doc: dict[str, Any]) -> None:
        stdout_console().print(f"job [bold]{doc['id']}[/] {doc.get('state')}")
        _print_result(doc)

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("logs")
def logs_(
    ctx: typer.Context,
    job: str = typer.Argument(..., help="Job id."),
    project: str = PROJECT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """The job's log output."""

    def action() -> str:
        with connect(ctx) as client:
            return client.jobs.logs(project, job)

    run_command(json_output, action, render=typer.echo, to_json=lambda text: {"job": job, "logs": text})


def _transition(verb: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        job: str = typer.Argument(..., help="Job id."),
        project: str = PROJECT_OPTION,
        json_output: bool = JSON_OPTION,
    ) -> None:
        def action() -> dict[str, Any]:
            with connect(ctx) as client:
                return dict(getattr(client.jobs, verb)(project, job))

        def render(doc: dict[str, Any]) -> None:
            stdout_console().print(f"job [bold]{doc['id']}[/]: {verb} requested, now {doc.get('state')}")

        run_command(json_output, action, render=render, to_json=lambda doc: doc)

    command.__doc__ = help_text
    app.command(verb)(command)


_transition("cancel", "Cancel a queued or running job (the running process is stopped).")
_transition("retry", "Run a failed or cancelled job again from the start.")
_transition("resume", "Run a failed or cancelled training job again from its last checkpoint.")


def _print_result(job: dict[str, Any]) -> None:
    if job.get("error"):
        stdout_console().print(f"[red]error:[/] {job['error']}", highlight=False)
    if job.get("result"):
        print_fields(dict(job["result"]), title="result")


__all__ = ["app", "read_spec"]
