"""``largeforge --server URL deployments …``: serve a model of the project, list, stop, delete."""

from __future__ import annotations

from typing import Any

import typer

from largeforge.cli.output import JSON_OPTION, run_command, stdout_console
from largeforge.cli.remote.connection import PROJECT_OPTION, connect
from largeforge.cli.remote.tables import print_rows
from largeforge.errors import InvalidInput

app = typer.Typer(help="A project's deployments (serving replicas) on a control plane.", no_args_is_help=True)

COLUMNS = ("id", "model", "version", "status", "replicas", "engine", "endpoint", "created_at")


def _adapters(values: list[str]) -> dict[str, str]:
    adapters = {}
    for value in values:
        name, sep, ref = value.partition("=")
        if not sep or not name or not ref:
            raise InvalidInput(
                f"--adapter {value!r} must look like NAME=REF, e.g. extract=my-adapter@production"
            )
        adapters[name] = ref
    return adapters


@app.command("create")
def create(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The project's model to serve: NAME, NAME:VERSION or NAME@ALIAS."),
    project: str = PROJECT_OPTION,
    replicas: int = typer.Option(1, min=1, help="Serving processes behind the gateway."),
    adapter: list[str] = typer.Option([], help="LoRA adapter to serve too, as NAME=REF (repeatable)."),
    engine: str | None = typer.Option(
        None, help="Serving engine: hf or llamacpp (a GGUF version); server default hf."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Start serving a model; the answer names its OpenAI-compatible gateway URL."""

    def action() -> dict[str, Any]:
        adapters = _adapters(adapter)
        with connect(ctx) as client:
            deployment = client.deployments.create(
                project, model, adapters=adapters, replicas=replicas, engine=engine
            )
            deployment.setdefault(
                "gateway_url", client.url(f"/projects/{project}/deployments/{deployment['id']}/v1")
            )
            return deployment

    run_command(
        json_output,
        action,
        render=lambda doc: stdout_console().print(
            f"deployment [bold]{doc['id']}[/] of {doc['version']}: {doc['status']}; "
            f"OpenAI base_url: {doc['gateway_url']} (with an API key)"
        ),
        to_json=lambda doc: doc,
    )


@app.command("list")
def list_(ctx: typer.Context, project: str = PROJECT_OPTION, json_output: bool = JSON_OPTION) -> None:
    """The project's deployments and their state."""

    def action() -> list[dict[str, Any]]:
        with connect(ctx) as client:
            return client.deployments.list(project)

    run_command(
        json_output,
        action,
        render=lambda rows: print_rows(
            rows, COLUMNS, title=f"deployments of {project}", empty="no deployments"
        ),
        to_json=lambda rows: rows,
    )


def _transition(verb: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        deployment: str = typer.Argument(..., help="Deployment id."),
        project: str = PROJECT_OPTION,
        json_output: bool = JSON_OPTION,
    ) -> None:
        def action() -> dict[str, Any]:
            with connect(ctx) as client:
                return dict(getattr(client.deployments, verb)(project, deployment))

        run_command(
            json_output,
            action,
            render=lambda doc: stdout_console().print(f"deployment [bold]{doc['id']}[/] {doc['status']}"),
            to_json=lambda doc: doc,
        )

    command.__doc__ = help_text
    app.command(verb)(command)


_transition("stop", "Stop a deployment's replicas (start brings it back on the same version).")
_transition("start", "Start a stopped deployment again.")


__all__ = ["app"]
