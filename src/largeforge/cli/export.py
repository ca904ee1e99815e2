"""``largeforge export …``: merge adapters, quantize, convert to GGUF, write Ollama Modelfiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from largeforge.cli.output import JSON_OPTION, progress_for, quiet_libraries, run_command, stdout_console
from largeforge.export.quantize import DEFAULT_TOLERANCE

app = typer.Typer(help="Export models: merge, quantize, GGUF, Ollama.", no_args_is_help=True)

OVERWRITE_OPTION = typer.Option(False, "--overwrite", help="Replace the output if it exists.")
REGISTER_OPTION = typer.Option(
    None,
    "--register-as",
    help="Registry name for the export (default: <source model>-<kind> when the source is registered).",
)


def _register(
    result: Any, output: Path, source: Path, kind: str, relation: str, name: str | None
) -> dict[str, Any]:
    """File the export in the registry with its lineage; the result as a dict with ``registered`` added."""
    from largeforge.registry.runs import register_export
    from largeforge.registry.service import open_registry

    parity = getattr(result, "parity", None)
    metrics = {"parity/max_abs_logit_diff": parity.max_abs_logit_diff} if parity is not None else {}
    with open_registry() as registry:
        version = register_export(
            registry, output, source=source, kind=kind, relation=relation, name=name, metrics=metrics
        )
        return {**result.to_dict(), "registered": version.ref if version is not None else None}


def _print_parity(table: Table, parity: dict[str, Any] | None) -> None:
    if parity is None:
        table.add_row("parity", "[yellow]not checked[/]")
        return
    verdict = "[green]passed[/]" if parity["passed"] else "[red]failed[/]"
    table.add_row("parity", f"{verdict}: max |Δlogit| {parity['max_abs_logit_diff']:.3g}")
    table.add_row("greedy agreement", f"{parity['greedy_agreement']:.0%} of {parity['greedy_tokens']} tokens")


def _render(title: str, rows: dict[str, Any]) -> None:
    table = Table(show_header=False, title=title)
    parity = rows.pop("parity", "absent")
    for key, value in rows.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    if parity != "absent":
        _print_parity(table, parity)
    stdout_console().print(table)


@app.command("merge")
def merge(
    adapter: Path = typer.Argument(..., help="A LoRA adapter directory, e.g. a training run's final/."),
    out_dir: Path = typer.Argument(..., help="Directory for the merged model."),
    base: Path | None = typer.Option(None, help="Base model (default: the one the adapter names)."),
    no_parity: bool = typer.Option(False, "--no-parity", help="Skip the merged-vs-unmerged check."),
    register_as: str | None = REGISTER_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Merge a LoRA adapter into its base; the result must match base + adapter or nothing is written."""
    from largeforge.export.merge import merge_adapter

    quiet_libraries()

    def action() -> Any:
        result = merge_adapter(
            adapter,
            out_dir,
            base=base,
            check_parity=not no_parity,
            overwrite=overwrite,
            progress=progress_for(json_output),
        )
        return _register(result, out_dir, adapter, "merged", "merged-from", register_as)

    run_command(
        json_output,
        action,
        render=lambda doc: _render("Merged model", dict(doc)),
        to_json=lambda doc: doc,
    )


@app.command("quantize")
def quantize(
    model: Path = typer.Argument(..., help="A model directory (safetensors)."),
    out_dir: Path = typer.Argument(..., help="Directory for the quantized model."),
    method: str = typer.Option("int8", help="int8 (CPU), bnb8, bnb4, awq or gptq (CUDA)."),
    tolerance: float = typer.Option(DEFAULT_TOLERANCE, min=0.0, help="Largest acceptable logit drift."),
    register_as: str | None = REGISTER_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Quantize a model and report the drift from the original (parity check on canary prompts)."""
    from largeforge.export.quantize import quantize_model

    quiet_libraries()

    def action() -> Any:
        result = quantize_model(
            model,
            out_dir,
            method=method,
            tolerance=tolerance,
            overwrite=overwrite,
            progress=progress_for(json_output),
        )
        return _register(result, out_dir, model, "quantized", "quantized-from", register_as)

    run_command(
        json_output,
        action,
        render=lambda doc: _render("Quantized model", dict(doc)),
        to_json=lambda doc: doc,
    )


@app.command("gguf")
def gguf(
    model: Path = typer.Argument(..., help="A Llama or Qwen2 model directory (safetensors)."),
    out_path: Path = typer.Argument(..., help="The .gguf file to write."),
    type_: str = typer.Option("f16", "--type", help="f32, f16 or q8_0."),
    pre_tokenizer: str | None = typer.Option(
        None, help="llama.cpp pre-tokenizer name (default: recorded in largeforge.json, or detected)."
    ),
    register_as: str | None = REGISTER_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Convert a model to one GGUF file for llama.cpp and Ollama."""
    from largeforge.export.gguf import write_gguf

    def action() -> Any:
        result = write_gguf(
            model,
            out_path,
            type=type_,
            pre_tokenizer=pre_tokenizer,
            overwrite=overwrite,
            progress=progress_for(json_output),
        )
        return _register(result, out_path, model, "gguf", "converted-from", register_as)

    run_command(
        json_output, action, render=lambda doc: _render("GGUF file", dict(doc)), to_json=lambda doc: doc
    )


@app.command("ollama")
def ollama(
    gguf_file: Path = typer.Argument(..., help="A .gguf file (e.g. from `largeforge export gguf`)."),
    out_dir: Path = typer.Argument(..., help="Directory for the Modelfile and the GGUF."),
    system: str | None = typer.Option(None, help="Default system prompt."),
    template: str | None = typer.Option(None, help="A Go template to use instead of translating ChatML."),
    overwrite: bool = OVERWRITE_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Write an Ollama Modelfile (FROM, TEMPLATE, stop) next to a copy of the GGUF file."""
    from largeforge.export.ollama import write_modelfile

    def action() -> Any:
        return write_modelfile(gguf_file, out_dir, template=template, system=system, overwrite=overwrite)

    def render(result: Any) -> None:
        stdout_console().print(
            f"wrote [bold]{result.modelfile}[/]; next: ollama create NAME -f {result.modelfile}"
        )

    run_command(json_output, action, render=render, to_json=lambda r: r.to_dict())
