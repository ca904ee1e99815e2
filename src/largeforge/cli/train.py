"""``largeforge train``: run a recipe, resume a run, print the recipe schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from largeforge.cli.output import (
    JSON_OPTION,
    fail,
    print_json,
    progress_for,
    quiet_libraries,
    run_command,
    stderr_console,
    stdout_console,
)
from largeforge.errors import InvalidInput, LargeForgeError


def train(
    recipe: str | None = typer.Argument(
        None, help="Recipe YAML to run, or the word `schema` to print its JSON schema."
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Run directory (default <home>/runs/<method>-<time>)."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a field: --set training.max_steps=20 (values are YAML)."
    ),
    resume: Path | None = typer.Option(
        None, help="Continue a stopped run from its newest complete checkpoint."
    ),
    continue_from: Path | None = typer.Option(None, help="Start a new run from another run's final model."),
    nproc: int = typer.Option(
        1, min=1, help="Processes to train with (accelerate launch: DDP, FSDP or DeepSpeed)."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Train a model from a recipe: pretrain, sft, dpo, orpo, kto (see examples/recipes/)."""
    from largeforge.training import load_recipe, recipe_json_schema, resume_training, run_training

    if recipe == "schema" and not Path("schema").exists():
        print_json(recipe_json_schema())
        return
    if (recipe is None) == (resume is None):
        raise fail(InvalidInput("give a RECIPE to run or --resume RUN_DIR (one of them)"), json_output)
    quiet_libraries()
    progress = progress_for(json_output)

    def report(preflight: Any) -> None:
        stderr_console().print(preflight.describe(), highlight=False)
        for warning in preflight.warnings:
            stderr_console().print(f"[yellow]warning:[/] {warning}", highlight=False)

    if nproc > 1 and recipe is not None:
        _launch(recipe, output_dir, set_, nproc, json_output)
        return

    def action() -> Any:
        if resume is not None:
            return resume_training(resume, progress=progress, on_preflight=report)
        assert recipe is not None
        loaded = load_recipe(recipe, set_)
        loaded, parent = _with_registry_model(loaded)
        result = run_training(
            loaded, output_dir=output_dir, continue_from=continue_from, progress=progress, on_preflight=report
        )
        if loaded.register_as is not None:
            result.metrics["registered"] = _register(result, loaded, parent)
        return result

    from largeforge.training.launch import is_main_process

    if not is_main_process():  # under --nproc, rank 0 alone reports the result
        run_command(False, action, render=lambda result: None, to_json=lambda result: None)
        return
    run_command(json_output, action, render=_render, to_json=lambda result: result.to_dict())


def _with_registry_model(recipe: Any) -> tuple[Any, str | None]:
    """Materialise a registry reference used as the model; find the parent version for lineage."""
    if Path(recipe.model).expanduser().exists() and recipe.register_as is None:
        return recipe, None  # a plain path and nothing to register: no need to touch the registry
    from largeforge.registry.runs import resolve_recipe_model
    from largeforge.registry.service import open_registry
    from largeforge.settings import get_settings

    with open_registry() as registry:
        path, parent = resolve_recipe_model(registry, recipe.model, get_settings().models_dir / "registry")
    return recipe.model_copy(update={"model": path}), parent


def _register(result: Any, recipe: Any, parent: str | None) -> str:
    from largeforge.registry.runs import register_run
    from largeforge.registry.service import open_registry

    with open_registry() as registry:
        version = register_run(
            registry, Path(result.run_dir), recipe.register_as.name, parent, recipe.register_as.tags
        )
        return version.ref


def _launch(
    recipe: str, output_dir: Path | None, overrides: list[str], nproc: int, json_output: bool
) -> None:
    from largeforge.training import load_recipe
    from largeforge.training.launch import launch
    from largeforge.training.runner import default_run_dir

    try:
        loaded = load_recipe(recipe, overrides)
    except LargeForgeError as error:
        raise fail(error, json_output) from None
    target = (output_dir or default_run_dir(loaded)).resolve()
    code = launch(loaded, Path(recipe), target, nproc, overrides, json_output=json_output)
    if code != 0:
        raise typer.Exit(code=code)


def _render(result: Any) -> None:
    table = Table(show_header=False, title=f"Training run ({result.method})")
    table.add_row("run directory", result.run_dir)
    table.add_row("steps", str(result.steps))
    table.add_row("final loss", f"{result.final_loss:.4f}" if result.final_loss is not None else "-")
    table.add_row("runtime", f"{result.runtime_seconds:.1f}s")
    table.add_row("model / adapter", result.final_dir)
    if result.resumed_from:
        table.add_row("resumed from", result.resumed_from)
    if result.metrics.get("registered"):
        table.add_row("registered as", result.metrics["registered"])
    stdout_console().print(table)
