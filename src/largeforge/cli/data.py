"""``largeforge data …``: validate, import, list, show, preview and synthesize datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from largeforge.cli.output import (
    JSON_OPTION,
    progress_for,
    quiet_libraries,
    run_command,
    stderr_console,
    stdout_console,
)

app = typer.Typer(
    help="Datasets: validate, import as versions, inspect, preview, synthesize.", no_args_is_help=True
)

FORMAT_HELP = (
    "Force a format instead of detecting it: text, messages, sharegpt, alpaca, preference, kto, prompt."
)


@app.command("validate")
def validate(
    file: Path = typer.Argument(
        ..., help="A .jsonl, .json, .csv, .parquet file or an HF save_to_disk folder."
    ),
    format: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    split: str | None = typer.Option(None, help="Split to read from an HF DatasetDict folder."),
    max_errors: int | None = typer.Option(None, min=1, help="Stop listing bad rows after this many."),
    tokenizer: str | None = typer.Option(None, help="Model directory whose tokenizer measures --max-tokens."),
    max_tokens: int | None = typer.Option(None, min=1, help="Rows longer than this many tokens are errors."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Check every row; exit 0 when the file is valid, 1 with a list of bad rows when not."""
    from largeforge.data.reading import read_dataset
    from largeforge.model_source import load_tokenizer

    def action() -> Any:
        loaded = load_tokenizer(tokenizer) if tokenizer else None
        return read_dataset(
            file, format=format, split=split, max_errors=max_errors, tokenizer=loaded, max_tokens=max_tokens
        )

    result = run_command(json_output, action, render=_render_validation, to_json=lambda d: d.report.to_dict())
    if not result.report.ok:
        raise typer.Exit(code=1)


def _render_validation(dataset: Any) -> None:
    report = dataset.report
    console = stdout_console()
    for warning in report.warnings:
        stderr_console().print(f"[yellow]warning:[/] {warning}", highlight=False)
    if report.ok:
        console.print(
            f"[green]valid[/]: {report.rows_total} rows, format [bold]{report.format}[/] (kind {report.kind})"
        )
        return
    table = Table(title=f"{report.errors_total} problem(s) in {report.source}", show_lines=False)
    for column in ("line", "row", "field", "problem", "what to do"):
        table.add_column(column, overflow="fold")
    for error in report.errors:
        table.add_row(
            str(error.line or ""), str(error.row or ""), error.field or "", error.problem, error.hint
        )
    console.print(table)
    if report.errors_total > len(report.errors):
        console.print(
            f"… and {report.errors_total - len(report.errors)} more (raise --max-errors to see them)"
        )
    console.print(f"[red]invalid[/]: {report.summary()}", highlight=False)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="The file (or HF folder) to import."),
    name: str = typer.Option(..., "--name", "-n", help="Name to file the version under."),
    format: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    split: str | None = typer.Option(None, help="Split to read from an HF DatasetDict folder."),
    tokenizer: str | None = typer.Option(
        None, help="Model directory whose tokenizer measures token lengths."
    ),
    max_tokens: int | None = typer.Option(None, min=1, help="Refuse rows longer than this many tokens."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Validate and store a file as a content-addressed version; prints the version id."""
    from largeforge.data.importing import import_dataset
    from largeforge.data.versions import open_dataset_store

    if tokenizer:
        quiet_libraries()

    def action() -> Any:
        return import_dataset(
            file,
            name=name,
            store=open_dataset_store(),
            format=format,
            split=split,
            tokenizer=tokenizer,
            max_tokens=max_tokens,
            progress=progress_for(json_output),
        )

    def render(result: Any) -> None:
        version = result.version
        status = "imported" if result.created else "already stored (same content)"
        stderr_console().print(
            f"{status}: {version.row_count} rows, kind {version.kind}, format {version.format}, name {name}"
        )
        typer.echo(version.id)

    run_command(
        json_output, action, render=render, to_json=lambda r: r.version.to_dict() | {"created": r.created}
    )


@app.command("list")
def list_(
    name: str | None = typer.Option(None, "--name", "-n", help="Only the versions of this name."),
    json_output: bool = JSON_OPTION,
) -> None:
    """List stored dataset versions, oldest first."""
    from largeforge.data.versions import open_dataset_store

    def render(versions: list[Any]) -> None:
        table = Table(title="Dataset versions")
        for column in ("id", "names", "kind", "format", "rows", "created"):
            table.add_column(column)
        for v in versions:
            table.add_row(v.id, ", ".join(v.names), v.kind, v.format, str(v.row_count), v.created_at)
        stdout_console().print(
            table if versions else "no datasets yet: `largeforge data import FILE --name NAME`"
        )

    run_command(
        json_output,
        lambda: open_dataset_store().list(name),
        render=render,
        to_json=lambda versions: {"data": [v.to_dict() for v in versions], "count": len(versions)},
    )


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="Version id (or unique prefix), NAME, or NAME@N."),
    rows: int = typer.Option(3, min=0, help="How many rows to print."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Show a version's manifest and its first rows."""
    import itertools
    import json

    from largeforge.data.versions import open_dataset_store

    def action() -> dict[str, Any]:
        store = open_dataset_store()
        version = store.get(ref)
        head = list(itertools.islice(store.iter_rows(version.id), rows))
        return version.to_dict() | {"rows": head}

    def render(doc: dict[str, Any]) -> None:
        console = stdout_console()
        table = Table(show_header=False, title=f"Dataset version {doc['id']}")
        for key in (
            "id",
            "sha256",
            "names",
            "kind",
            "format",
            "row_count",
            "columns",
            "created_at",
            "source",
        ):
            table.add_row(
                key, json.dumps(doc[key], ensure_ascii=False) if not isinstance(doc[key], str) else doc[key]
            )
        for tokenizer, stats in doc["token_stats"].items():
            table.add_row(f"tokens ({tokenizer})", ", ".join(f"{k}={v}" for k, v in stats.items()))
        console.print(table)
        for number, row in enumerate(doc["rows"], start=1):
            console.print(f"[bold]row {number}[/]: {json.dumps(row, ensure_ascii=False)}", highlight=False)

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("preview")
def preview(
    ref: str = typer.Argument(..., help="Version id (or unique prefix), NAME, or NAME@N."),
    model: str = typer.Option(
        ..., "--model", "-m", help="Model directory whose tokenizer and chat template to use."
    ),
    rows: int = typer.Option(2, min=1, help="How many rows to render."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Render rows through the chat template; trained-on tokens in green, the rest dimmed."""
    from largeforge.data.preview import preview_rows
    from largeforge.data.versions import open_dataset_store
    from largeforge.model_source import load_tokenizer

    quiet_libraries()

    def action() -> Any:
        store = open_dataset_store()
        version = store.get(ref)
        tokenizer = load_tokenizer(model)
        return preview_rows(store.rows(version.id)[:rows], version.kind, tokenizer, limit=rows)

    def render(result: Any) -> None:
        console = stdout_console()
        for warning in result.warnings:
            stderr_console().print(f"[yellow]warning:[/] {warning}", highlight=False)
        for row in result.rows:
            text = Text()
            for token, trained in zip(row.tokens, row.trained, strict=True):
                text.append(token, style="bold green" if trained else "dim")
            console.rule(f"row {row.row}: {row.trained_count} of {len(row.token_ids)} tokens trained")
            console.print(text)
        console.print("[bold green]green[/] = label (trained on), [dim]dim[/] = masked (-100)")

    run_command(json_output, action, render=render, to_json=lambda r: r.to_dict())


@app.command("synth")
def synth(
    seeds: Path = typer.Argument(
        ..., help="Seed prompts: .txt (one per line) or .jsonl/.json with a prompt field."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the generated rows (.jsonl)."),
    teacher: str | None = typer.Option(None, help="Local teacher: a model directory."),
    base_url: str | None = typer.Option(
        None, help="Teacher behind an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."
    ),
    model_name: str | None = typer.Option(None, "--model", help="Model name to ask the endpoint for."),
    api_key_env: str | None = typer.Option(
        None, help="Name of the env var that holds the endpoint's API key."
    ),
    kind: str = typer.Option("conversation", help="conversation or preference."),
    samples: int = typer.Option(1, min=1, help="Answers per seed prompt."),
    temperature: float = typer.Option(0.7, min=0.0, max=2.0),
    max_tokens: int = typer.Option(256, min=1, help="Longest answer, in tokens."),
    system: str | None = typer.Option(None, help="System prompt for the teacher."),
    strategy: str = typer.Option("judge", help="Preference pairs: judge (teacher picks) or rejected_model."),
    rejected_model: str | None = typer.Option(None, help="Model directory that writes rejected answers."),
    import_as: str | None = typer.Option(
        None, help="Also import the result as a dataset version of this name."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Generate a conversation or preference dataset from seed prompts with a teacher model."""
    from largeforge.data.synth_service import SynthRequest, run_synthesis

    quiet_libraries()

    def action() -> Any:
        request = SynthRequest.build(
            seeds=seeds,
            out=out,
            teacher=teacher,
            base_url=base_url,
            model_name=model_name,
            api_key_env=api_key_env,
            kind=kind,
            samples=samples,
            temperature=temperature,
            max_tokens=max_tokens,
            system=system,
            strategy=strategy,
            rejected_model=rejected_model,
            import_as=import_as,
        )
        return run_synthesis(request, progress=progress_for(json_output))

    def render(outcome: Any) -> None:
        stdout_console().print(
            f"wrote {outcome.rows} rows to {outcome.out} ({outcome.skipped} skipped)"
            + (f"; imported as {outcome.version_id}" if outcome.version_id else ""),
            highlight=False,
        )
        for reason in outcome.reasons[:5]:
            stderr_console().print(f"[yellow]skipped:[/] {reason}", highlight=False)

    run_command(json_output, action, render=render, to_json=lambda o: o.to_dict())
