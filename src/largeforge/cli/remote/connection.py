"""Where the remote commands find their server and key: ``--server`` / ``--api-key-env`` on the
``largeforge`` callback, else the LARGEFORGE_SERVER_URL / LARGEFORGE_API_KEY settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from largeforge.errors import InvalidInput

if TYPE_CHECKING:  # the clients import openai, too slow for `largeforge --help`
    from largeforge.clients import PlatformClient

DEFAULT_KEY_ENV = "LARGEFORGE_API_KEY"

PROJECT_OPTION = typer.Option(..., "--project", "-p", help="Project name or id.")


@dataclass(frozen=True)
class RemoteOptions:
    """The global options of ``largeforge``, kept on the Typer context for the remote commands."""

    server: str | None = None
    api_key_env: str = DEFAULT_KEY_ENV


def options_of(ctx: typer.Context) -> RemoteOptions:
    return ctx.obj if isinstance(ctx.obj, RemoteOptions) else RemoteOptions()


def server_url(ctx: typer.Context) -> str:
    """The control plane's URL.

    Raises:
        InvalidInput: neither ``--server`` nor LARGEFORGE_SERVER_URL names one.
    """
    from largeforge.settings import get_settings

    url = options_of(ctx).server or get_settings().server_url
    if not url:
        raise InvalidInput(
            "no control plane to talk to: put --server URL before the command "
            "(largeforge --server http://127.0.0.1:8000 jobs list -p demo) or set LARGEFORGE_SERVER_URL"
        )
    return url


def api_key(ctx: typer.Context) -> str:
    """The API key from the variable ``--api-key-env`` names (default LARGEFORGE_API_KEY).

    Raises:
        InvalidInput: the variable is unset or empty (the message says how to get a key).
    """
    from largeforge.settings import get_settings, read_secret_env

    name = options_of(ctx).api_key_env
    key = get_settings().api_key if name == DEFAULT_KEY_ENV else read_secret_env(name)
    if not key:
        raise InvalidInput(
            f"no API key: export {name}=lf_… (get one with `largeforge --server URL login EMAIL`) "
            "or name another variable with --api-key-env"
        )
    return key


def connect(ctx: typer.Context) -> PlatformClient:
    """A client for the configured server, authenticated with the configured key."""
    from largeforge.clients import PlatformClient

    return PlatformClient(server_url(ctx), api_key=api_key(ctx))


__all__ = ["PROJECT_OPTION", "RemoteOptions", "api_key", "connect", "options_of", "server_url"]
