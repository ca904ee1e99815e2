"""``largeforge --server URL login EMAIL``: trade a password for an API key the other commands use.

The password is read from a prompt (or stdin when piped) and never from argv; the key is shown
once, with the line to export it."""

from __future__ import annotations

import socket
from typing import Any

import typer

from largeforge.cli.output import JSON_OPTION, run_command, stdout_console
from largeforge.cli.remote.connection import DEFAULT_KEY_ENV, options_of, server_url


def login(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="Your user's email."),
    key_name: str | None = typer.Option(None, help="Name of the new key (default: cli@<this host>)."),
    project: str | None = typer.Option(None, "--project", "-p", help="Scope the key to one project."),
    role: str | None = typer.Option(None, help="With --project: the most the key may do there."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Sign in with your password and create an API key for the remote commands."""
    password = typer.prompt("password", hide_input=True, err=True)

    def action() -> dict[str, Any]:
        from largeforge.clients import PlatformClient

        with PlatformClient(server_url(ctx)) as client:
            client.login(email, password)
            key = client.keys.create(key_name or f"cli@{socket.gethostname()}", project=project, role=role)
            client.logout()
            return key

    def render(doc: dict[str, Any]) -> None:
        variable = options_of(ctx).api_key_env or DEFAULT_KEY_ENV
        stdout_console().print(
            f"created API key [bold]{doc['name']}[/] ({doc['prefix']}…); it is shown only now:"
        )
        typer.echo(f"export {variable}={doc['key']}")

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


__all__ = ["login"]
