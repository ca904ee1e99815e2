"""``largeforge --server URL datasets …``: upload a data file as a project dataset, list them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from largeforge.cli.output import JSON_OPTION, run_command, stdout_console
from largeforge.cli.remote.connection import PROJECT_OPTION, connect
from largeforge.cli.remote.tables import print_rows

app = typer.Typer(help="A project's datasets on a control plane.", no_args_is_help=True)


@app.command("upload")
def upload(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A .jsonl, .json, .csv or .parquet file."),
    project: str = PROJECT_OPTION,
    name: str = typer.Option(
        ..., "--name", "-n", help="Dataset name in the project (a new version if it exists)."
    ),
    format: str | None = typer.Option(
        None, help="Force a format instead of detecting it (messages, alpaca …)."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Upload a data file (streamed); the server validates it and stores a new version."""

    def action() -> dict[str, Any]:
        with connect(ctx) as client:
            return client.datasets.upload(project, file, name=name, format=format)

    def render(doc: dict[str, Any]) -> None:
        stored = "stored" if doc.get("created", True) else "already stored"
        stdout_console().print(
            f"{stored} [bold]{doc.get('name', name)}@{doc.get('number', '?')}[/]: {doc.get('row_count', '?')} "
            f"{doc.get('kind', '')} rows ({doc.get('format', '')}); use it in a recipe as "
            f"data.train: {doc.get('ref', name)}"
        )

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("list")
def list_(ctx: typer.Context, project: str = PROJECT_OPTION, json_output: bool = JSON_OPTION) -> None:
    """The project's datasets with their newest version."""

    def action() -> list[dict[str, Any]]:
        with connect(ctx) as client:
            rows = client.datasets.list(project)
        for row in rows:  # flatten the newest version for the table
            latest = row.get("latest") or {}
            row.setdefault("kind", latest.get("kind"))
            row.setdefault("rows", latest.get("row_count"))
            row.setdefault("ref", latest.get("ref"))
        return rows

    run_command(
        json_output,
        action,
        render=lambda rows: print_rows(
            rows,
            ("name", "versions", "kind", "rows", "ref", "updated_at"),
            title=f"datasets of {project}",
            empty="no datasets: largeforge datasets upload FILE -p PROJECT -n NAME",
        ),
        to_json=lambda rows: rows,
    )


__all__ = ["app"]
