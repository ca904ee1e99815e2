"""``largeforge --server URL projects …``: list and create projects, list and set members."""

from __future__ import annotations

from typing import Any

import typer

from largeforge.cli.output import JSON_OPTION, run_command, stdout_console
from largeforge.cli.remote.connection import connect
from largeforge.cli.remote.tables import print_rows

app = typer.Typer(help="Projects on a control plane.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """The projects you belong to, with your role in each."""

    def action() -> list[dict[str, Any]]:
        with connect(ctx) as client:
            return client.projects.list()

    run_command(
        json_output,
        action,
        render=lambda rows: print_rows(
            rows,
            ("name", "id", "role", "max_running_jobs", "description"),
            title="projects",
            empty="no projects yet: largeforge projects create NAME",
        ),
        to_json=lambda rows: rows,
    )


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Lowercase letters, digits and dashes."),
    description: str | None = typer.Option(None, help="What the project is for."),
    max_running_jobs: int | None = typer.Option(None, min=1, help="Jobs of this project running at once."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Create a project; you become its owner."""

    def action() -> dict[str, Any]:
        with connect(ctx) as client:
            return client.projects.create(name, description=description, max_running_jobs=max_running_jobs)

    run_command(
        json_output,
        action,
        render=lambda doc: stdout_console().print(f"created project [bold]{doc['name']}[/] ({doc['id']})"),
        to_json=lambda doc: doc,
    )


@app.command("members")
def members(
    ctx: typer.Context,
    project: str = typer.Argument(..., help="Project name or id."),
    json_output: bool = JSON_OPTION,
) -> None:
    """The project's members and their roles."""

    def action() -> list[dict[str, Any]]:
        with connect(ctx) as client:
            return client.projects.members(project)

    run_command(
        json_output,
        action,
        render=lambda rows: print_rows(
            rows, ("email", "role", "user_id"), title=f"members of {project}", empty="no members"
        ),
        to_json=lambda rows: rows,
    )


@app.command("add-member")
def add_member(
    ctx: typer.Context,
    project: str = typer.Argument(..., help="Project name or id."),
    email: str = typer.Argument(..., help="The user's email (a global admin creates users)."),
    role: str = typer.Option("viewer", help="viewer, developer, admin or owner."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Add a user to the project or change their role (project admins)."""

    def action() -> dict[str, Any]:
        with connect(ctx) as client:
            return client.projects.set_member(project, email, role)

    run_command(
        json_output,
        action,
        render=lambda doc: stdout_console().print(f"{doc['email']} is now {doc['role']} in {project}"),
        to_json=lambda doc: doc,
    )


__all__ = ["app"]
