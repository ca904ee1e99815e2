"""``largeforge serve``: an OpenAI-compatible server for a model directory or a registry reference."""

from __future__ import annotations

from pathlib import Path

import typer

from largeforge.cli.output import fail, quiet_libraries, stderr_console
from largeforge.errors import InvalidInput, LargeForgeError


def serve(
    model: str = typer.Argument(
        ..., help="A model directory or a registry reference (NAME, NAME:N, NAME@ALIAS)."
    ),
    adapter: list[str] = typer.Option([], help="A LoRA adapter to serve as NAME=PATH (repeatable)."),
    engine: str = typer.Option("hf", help="Inference engine: hf (transformers)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    api_key: str | None = typer.Option(None, help="Require `Authorization: Bearer KEY` on /v1 routes."),
) -> None:
    """Serve /v1/models, /v1/chat/completions and /v1/completions (streaming included) and /health."""
    import uvicorn

    from largeforge.serving.app import create_app
    from largeforge.serving.engines import create_engine

    quiet_libraries()
    try:
        adapters = dict(_pair(item) for item in adapter)
        source = model if Path(model).expanduser().exists() else _from_registry(model)
        app = create_app(create_engine(engine, source, adapters), api_key=api_key)
    except LargeForgeError as error:
        raise fail(error, False) from None
    stderr_console().print(f"serving {source} on http://{host}:{port}/v1", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _pair(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise InvalidInput(f"--adapter {text!r} must look like NAME=PATH")
    return name, path


def _from_registry(reference: str) -> str:
    from largeforge.registry.runs import resolve_recipe_model
    from largeforge.registry.service import open_registry
    from largeforge.settings import get_settings

    with open_registry() as registry:
        path, _ = resolve_recipe_model(registry, reference, get_settings().models_dir / "registry")
    return path
