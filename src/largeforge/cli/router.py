"""``largeforge router``: run the expert router, and ``largeforge router train`` its learned classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from largeforge.cli.output import JSON_OPTION, fail, run_command, stderr_console, stdout_console
from largeforge.errors import InvalidInput, LargeForgeError

app = typer.Typer(
    help="The expert router: many models behind one OpenAI-compatible endpoint, chosen per request.",
    invoke_without_command=True,
)


@app.callback()
def serve(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experts YAML (see examples/router/experts.yaml)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, min=1, max=65535, help="TCP port."),
    api_key: str | None = typer.Option(
        None, help="Require `Authorization: Bearer KEY` (not on /health, /metrics)."
    ),
) -> None:
    """Serve /v1/chat/completions and /v1/completions (model: auto | expert | model id), /route, /experts,
    /v1/feedback, /health, /metrics and /admin/reload; SIGHUP reloads the config."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise fail(InvalidInput("--config is required: largeforge router --config experts.yaml"), False)
    import uvicorn

    from largeforge.routing.app import create_app
    from largeforge.routing.config import load_router_config
    from largeforge.routing.service import Router

    try:
        router = Router.build(load_router_config(config), config_path=config.resolve())
    except LargeForgeError as error:
        raise fail(error, False) from None
    application = create_app(router, api_key=api_key, reload_on_sighup=True)
    experts = ", ".join(router.state.experts)
    stderr_console().print(
        f"routing {experts} ({router.state.config.classifier.type}) on http://{host}:{port}/v1",
        highlight=False,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command("train")
def train(
    config: Path = typer.Option(..., "--config", "-c", help="The experts YAML the router runs now."),
    data: Path | None = typer.Option(
        None, help="Labelled prompts, JSON lines {prompt, expert, split?}; split: test rows are held out."
    ),
    decisions: Path | None = typer.Option(
        None, help="Decision log with feedback (default: the config's decisions.path, if it exists)."
    ),
    out: Path | None = typer.Option(
        None, help="Where to write the classifier (default <home>/router/learned)."
    ),
    register_as: str = typer.Option("router-classifier", help="Registry name; '' to skip registering."),
    alias: str = typer.Option("production", help="Alias moved to the new version when it is promoted."),
    min_gain: float = typer.Option(
        0.0, help="Promote only when held-out accuracy improves by more than this."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Fit a classifier on examples, labelled prompts and feedback; promote it only if it beats the current one."""
    from largeforge.routing.config import load_router_config
    from largeforge.routing.learning import promote, train_router
    from largeforge.settings import get_settings

    def action() -> Any:
        router_config = load_router_config(config)
        home = get_settings().home
        log = decisions or router_config.decisions.path or home / "router" / "decisions.jsonl"
        report = train_router(
            router_config, labelled=data, decisions=log if log.exists() else None, min_gain=min_gain
        )
        if report.promoted:
            promote(report, out or home / "router" / "learned", register_as=register_as or None, alias=alias)
        return report

    def render(report: Any) -> None:
        table = Table(title="router train", show_header=False)
        table.add_row("training prompts", f"{report.train_size} ({report.sources})")
        table.add_row("held-out prompts", str(report.test_size))
        for name, value in report.accuracy.items():
            table.add_row(f"accuracy {name}", f"{value:.3f}")
        table.add_row("result", report.reason)
        if report.saved_to:
            table.add_row("saved to", report.saved_to)
        if report.registered_as:
            table.add_row("registered", report.registered_as)
        stdout_console().print(table)

    run_command(json_output, action, render=render, to_json=lambda report: report.to_dict())
