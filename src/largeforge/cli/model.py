"""``largeforge model …``: build offline base models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from largeforge.cli.output import JSON_OPTION, progress_for, quiet_libraries, run_command, stdout_console
from largeforge.errors import InvalidInput

app = typer.Typer(help="Base models built offline: tokenizer + model presets.", no_args_is_help=True)


def parse_overrides(pairs: list[str]) -> dict[str, int]:
    """``["hidden_size=32"]`` → ``{"hidden_size": 32}``; every preset field is an integer."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value.strip().isdigit():
            raise InvalidInput(f"--set {pair!r} must look like FIELD=INTEGER, e.g. --set hidden_size=64")
        overrides[key.strip()] = int(value)
    return overrides


@app.command("init")
def init(
    out_dir: Path = typer.Argument(..., help="Directory to create (a Hugging Face model directory)."),
    preset: str = typer.Option("tiny", help="tiny (~0.9M params), small (~6M) or mid (~60M)."),
    architecture: str = typer.Option("qwen2", help="qwen2 or llama."),
    corpus: Path | None = typer.Option(None, help="Text (.txt) or dataset file to train the tokenizer on."),
    vocab_size: int | None = typer.Option(
        None, min=1, help="Target vocabulary size (default: the preset's)."
    ),
    config: Path | None = typer.Option(None, help="Any transformers config.json to use instead of a preset."),
    set_: list[str] = typer.Option([], "--set", help="Override a preset field, e.g. --set hidden_size=64."),
    seed: int = typer.Option(0, help="Seed for weight initialisation."),
    overwrite: bool = typer.Option(False, help="Replace OUT_DIR if it holds files."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Train a byte-level BPE tokenizer and save a freshly initialised model, all offline."""
    from largeforge.data.corpus import iter_corpus_texts
    from largeforge.scratch import build_base_model

    quiet_libraries()

    def action() -> Any:
        texts = list(iter_corpus_texts(corpus)) if corpus is not None else None
        return build_base_model(
            out_dir,
            preset=preset,
            architecture=architecture,
            corpus=texts,
            vocab_size=vocab_size,
            config_path=config,
            overrides=parse_overrides(set_),
            seed=seed,
            overwrite=overwrite,
            progress=progress_for(json_output),
        )

    def render(info: Any) -> None:
        table = Table(show_header=False, title="Base model")
        table.add_row("path", info.path)
        table.add_row("architecture", info.architecture)
        table.add_row("preset", info.preset or "(custom config)")
        table.add_row("parameters", f"{info.parameters:,}")
        table.add_row("vocabulary", f"{info.vocab_size:,}")
        table.add_row("tokenizer corpus", f"{info.corpus_lines:,} lines, sha256 {info.corpus_sha256[:12]}…")
        stdout_console().print(table)

    run_command(json_output, action, render=render, to_json=lambda info: info.to_dict())
