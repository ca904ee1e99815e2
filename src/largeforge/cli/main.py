"""The ``largeforge`` entry point: registers the command groups and the top-level commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from largeforge.cli import admin, data, export, model, models, router, serve, server, train, worker
from largeforge.cli import eval as eval_cli
from largeforge.cli.output import JSON_OPTION, progress_for, quiet_libraries, run_command, stdout_console
from largeforge.cli.remote import datasets as remote_datasets
from largeforge.cli.remote import deployments as remote_deployments
from largeforge.cli.remote import jobs as remote_jobs
from largeforge.cli.remote import login as remote_login
from largeforge.cli.remote import projects as remote_projects
from largeforge.cli.remote.connection import DEFAULT_KEY_ENV, RemoteOptions

app = typer.Typer(
    name="largeforge",
    help="LargeForge: data → training → evaluation → registry → export → serving → routing, in one system.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(admin.app, name="admin")
app.add_typer(data.app, name="data")
app.add_typer(eval_cli.app, name="eval")
app.add_typer(export.app, name="export")
app.add_typer(model.app, name="model")
app.add_typer(models.app, name="models")
app.add_typer(router.app, name="router")
app.command("train")(train.train)
app.command("serve")(serve.serve)
app.command("server")(server.server)
app.command("worker")(worker.worker)
# Commands that talk to a control plane (largeforge --server URL …).
app.add_typer(remote_jobs.app, name="jobs")
app.add_typer(remote_projects.app, name="projects")
app.add_typer(remote_datasets.app, name="datasets")
app.add_typer(remote_deployments.app, name="deployments")
app.command("login")(remote_login.login)


@app.callback()
def global_options(
    ctx: typer.Context,
    server_url: str | None = typer.Option(
        None,
        "--server",
        help="Control plane URL for jobs, projects, datasets, deployments and login "
        "(default: LARGEFORGE_SERVER_URL).",
    ),
    api_key_env: str = typer.Option(
        DEFAULT_KEY_ENV, "--api-key-env", help="Environment variable holding the API key for --server."
    ),
) -> None:
    """LargeForge: data → training → evaluation → registry → export → serving → routing, in one system."""
    ctx.obj = RemoteOptions(server=server_url, api_key_env=api_key_env)


@app.command("env")
def env(json_output: bool = JSON_OPTION) -> None:
    """Versions, device and paths — paste this into bug reports."""
    from largeforge.environment import collect_environment

    def render(doc: dict[str, Any]) -> None:
        table = Table(show_header=False, title="LargeForge environment")
        table.add_row("largeforge", doc["largeforge"])
        table.add_row("python", doc["python"])
        table.add_row("platform", doc["platform"])
        for name, version in doc["packages"].items():
            table.add_row(name, version or "[dim]not installed[/]")
        for key, value in doc["device"].items():
            table.add_row(f"device.{key}", str(value))
        for key, value in doc["paths"].items():
            table.add_row(f"path.{key}", value)
        table.add_row("database", doc["database_url"])
        stdout_console().print(table)

    run_command(json_output, collect_environment, render=render, to_json=lambda doc: doc)


@app.command("quickstart")
def quickstart(
    workdir: Path | None = typer.Option(None, help="Where to put files (default: <home>/quickstart)."),
    preset: str = typer.Option("tiny", help="Base model size: tiny, small or mid."),
    train_rows: int = typer.Option(2000, min=10, help="Training examples to generate."),
    eval_rows: int = typer.Option(200, min=1, help="Held-out evaluation examples."),
    sft_steps: int = typer.Option(600, min=1, help="Supervised fine-tuning steps."),
    dpo_steps: int = typer.Option(50, min=1, help="DPO steps (LoRA adapter on the SFT model)."),
    city_steps: int = typer.Option(
        120, min=1, help="Steps of the second adapter (the router's other expert)."
    ),
    seed: int = typer.Option(0, help="Seed for data and weights."),
    gate_pass_rate: float = typer.Option(
        0.8, min=0.0, max=1.0, help="Held-out pass rate the tuned model needs for @production."
    ),
    via_server: bool = typer.Option(
        False,
        "--via-server",
        help="Run the loop through a `largeforge server` started for the run: upload, one pipeline job "
        "followed live, the deployment queried through the gateway.",
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """The whole loop on this machine, end to end, with a summary table."""
    from largeforge.quickstart import QuickstartConfig, run_quickstart
    from largeforge.scratch.presets import get_preset
    from largeforge.settings import get_settings

    quiet_libraries()

    def action() -> Any:
        get_preset(preset)  # fail before any work on a typo
        config = QuickstartConfig(
            workdir=(workdir or get_settings().home / "quickstart").resolve(),
            preset=preset,
            train_rows=train_rows,
            eval_rows=eval_rows,
            sft_steps=sft_steps,
            dpo_steps=dpo_steps,
            city_steps=city_steps,
            seed=seed,
            gate_pass_rate=gate_pass_rate,
        )
        if via_server:
            from largeforge.quickstart_via_server import run_quickstart_via_server

            return run_quickstart_via_server(config, progress=progress_for(json_output))
        return run_quickstart(config, progress=progress_for(json_output))

    def render(result: Any) -> None:
        table = Table(title=f"LargeForge quickstart — {result.workdir}")
        table.add_column("stage", style="bold")
        table.add_column("result", overflow="fold")
        table.add_column("time", justify="right")
        for stage in result.stages:
            table.add_row(stage.name, stage.summary, f"{stage.seconds:.1f}s")
        stdout_console().print(table)

    run_command(json_output, action, render=render, to_json=lambda r: r.to_dict())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
