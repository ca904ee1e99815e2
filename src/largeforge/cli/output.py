"""How every command prints: rich tables for people, one JSON document for scripts, errors as both.

Commands stay thin by handing their one service call to :func:`run_command`, which turns our
errors into a message plus exit code 1 (Typer/Click usage errors exit 2) instead of a traceback.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from largeforge.errors import LargeForgeError
from largeforge.progress import JsonLinesProgress, ProgressReporter, RichProgress

T = TypeVar("T")

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables.")


def stdout_console() -> Console:
    return Console(soft_wrap=True)


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def progress_for(json_output: bool) -> ProgressReporter:
    """Rich bars on stderr for people; JSON-line events on stderr for scripts."""
    return JsonLinesProgress() if json_output else RichProgress(stderr_console())


def quiet_libraries() -> None:
    """Silence transformers' own bars and chatter: our progress reporting is the one the user sees."""
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    # PEFT 0.21 and TRL 1.16 still call the name transformers 5.23 deprecated; nothing a user can act on.
    warnings.filterwarnings(
        "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
    )


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def fail(error: LargeForgeError, json_output: bool) -> typer.Exit:
    """Print ``error`` the way the caller asked and return the Exit to raise."""
    if json_output:
        print_json(error.to_dict())
    else:
        stderr_console().print(f"[bold red]error:[/] {error.message}", highlight=False)
    return typer.Exit(code=error.exit_code)


def run_command(
    json_output: bool,
    action: Callable[[], T],
    *,
    render: Callable[[T], None],
    to_json: Callable[[T], Any],
) -> T:
    """Run ``action``; print its result with ``render`` or as JSON; map our errors to exit code 1."""
    try:
        result = action()
    except LargeForgeError as error:
        raise fail(error, json_output) from None
    if json_output:
        print_json(to_json(result))
    else:
        render(result)
    return result


__all__ = [
    "JSON_OPTION",
    "fail",
    "print_json",
    "progress_for",
    "quiet_libraries",
    "run_command",
    "stderr_console",
    "stdout_console",
]
