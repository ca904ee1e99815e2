"""``largeforge models …``: the registry — register, list, show, aliases, lineage, delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.tree import Tree

from largeforge.cli.output import JSON_OPTION, run_command, stdout_console
from largeforge.errors import InvalidInput

app = typer.Typer(help="The model registry: versions, lineage, aliases.", no_args_is_help=True)
alias_app = typer.Typer(help="Move, remove and inspect aliases such as @production.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")


def _pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise InvalidInput(f"{flag} {value!r} must look like KEY=VALUE")
        pairs.append((key, rest))
    return pairs


@app.command("register")
def register(
    path: Path = typer.Argument(..., help="A model or adapter directory, or a .gguf file."),
    name: str = typer.Option(..., "--name", "-n", help="Registered model name (created on first use)."),
    kind: str | None = typer.Option(
        None, help="base, full, adapter, merged, quantized or gguf (default: detected)."
    ),
    parent: list[str] = typer.Option([], help="Parent version as REF or RELATION=REF, e.g. base=tiny:1."),
    dataset: list[str] = typer.Option([], help="Dataset version id that made this version (repeatable)."),
    run: str | None = typer.Option(None, help="Training run directory that made this version."),
    tag: list[str] = typer.Option([], help="Tag as KEY=VALUE (repeatable)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Store a version's files (content-addressed) and record its lineage."""
    from largeforge.registry.service import open_registry, version_to_dict

    def action() -> dict[str, Any]:
        parents = [(p.partition("=")[2], p.partition("=")[0]) if "=" in p else (p, "parent") for p in parent]
        inputs = [("dataset", d) for d in dataset] + ([("run", str(Path(run).resolve()))] if run else [])
        with open_registry() as registry:
            version = registry.register(
                path, name=name, kind=kind, parents=parents, inputs=inputs, tags=dict(_pairs(tag, "--tag"))
            )
            return version_to_dict(version)

    def render(doc: dict[str, Any]) -> None:
        stdout_console().print(
            f"registered [bold]{doc['ref']}[/] ({doc['kind']}, {len(doc['files'])} files, "
            f"{doc['size_bytes']:,} bytes, digest {doc['digest'][:12]}…)"
        )

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("list")
def list_(json_output: bool = JSON_OPTION) -> None:
    """Registered models with their newest version and aliases."""
    from largeforge.registry.service import open_registry

    def action() -> list[dict[str, Any]]:
        with open_registry() as registry:
            rows = []
            for model in registry.repo.list_models():
                versions = registry.repo.list_versions(model)
                aliases = {
                    a.name: registry.repo.get_version_by_id(a.version_id)
                    for a in registry.repo.aliases_of(model)
                }
                rows.append(
                    {
                        "name": model.name,
                        "versions": len(versions),
                        "latest": versions[-1].version if versions else None,
                        "latest_kind": versions[-1].kind if versions else None,
                        "aliases": {k: v.version for k, v in aliases.items() if v is not None},
                    }
                )
            return rows

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table(title="Registered models")
        for column in ("name", "versions", "latest", "kind", "aliases"):
            table.add_column(column)
        for row in rows:
            aliases = ", ".join(f"@{k}→{v}" for k, v in row["aliases"].items())
            table.add_row(
                row["name"], str(row["versions"]), str(row["latest"]), row["latest_kind"] or "", aliases
            )
        stdout_console().print(
            table if rows else "no models yet: `largeforge models register PATH --name NAME`"
        )

    run_command(json_output, action, render=render, to_json=lambda rows: {"data": rows, "count": len(rows)})


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@ALIAS."),
    json_output: bool = JSON_OPTION,
) -> None:
    """One version: kind, size, digest, metrics, tags, files."""
    from largeforge.registry.service import open_registry, version_to_dict

    def action() -> dict[str, Any]:
        with open_registry() as registry:
            return version_to_dict(registry.get(ref))

    def render(doc: dict[str, Any]) -> None:
        table = Table(show_header=False, title=f"Model version {doc['ref']}")
        for key in (
            "kind",
            "digest",
            "size_bytes",
            "chat_template_hash",
            "metrics",
            "tags",
            "source",
            "created_at",
        ):
            value = doc[key]
            table.add_row(key, value if isinstance(value, str) else json.dumps(value))
        table.add_row(
            "files", "\n".join(f"{n}  {e['sha256'][:12]}…  {e['size']:,}" for n, e in doc["files"].items())
        )
        stdout_console().print(table)

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("lineage")
def lineage(
    ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@ALIAS."), json_output: bool = JSON_OPTION
) -> None:
    """Where a version came from (parents, datasets, runs) and what was made from it."""
    from largeforge.registry.service import open_registry

    def action() -> dict[str, Any]:
        with open_registry() as registry:
            return registry.lineage(ref)

    def render(doc: dict[str, Any]) -> None:
        tree = Tree(f"[bold]{doc['ref']}[/] ({doc['kind']})")
        _grow(tree, doc)
        for child in doc["children"]:
            tree.add(f"[green]↓ {child['ref']}[/] ({child['relation']})")
        stdout_console().print(tree)

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


def _grow(tree: Tree, node: dict[str, Any]) -> None:
    for item in node["inputs"]:
        tree.add(f"[cyan]{item['kind']}[/] {item['ref']}")
    for parent in node["parents"]:
        _grow(tree.add(f"[bold]{parent['ref']}[/] ({parent['kind']}, {parent['relation']})"), parent)


@app.command("delete")
def delete(
    ref: str = typer.Argument(..., help="NAME:VERSION to delete."), json_output: bool = JSON_OPTION
) -> None:
    """Delete a version (refused while something depends on it)."""
    from largeforge.registry.service import open_registry

    def action() -> dict[str, Any]:
        if ":" not in ref:
            raise InvalidInput(f"delete needs an explicit version, e.g. {ref}:1")
        with open_registry() as registry:
            return {"deleted": registry.delete(ref).ref}

    run_command(
        json_output,
        action,
        render=lambda d: stdout_console().print(f"deleted {d['deleted']}"),
        to_json=lambda d: d,
    )


@alias_app.command("set")
def alias_set(
    name: str = typer.Argument(..., help="Registered model name."),
    alias: str = typer.Argument(..., help="Alias, e.g. production."),
    version: str = typer.Argument(..., help="Version number or reference to point at."),
    reason: str | None = typer.Option(None, help="Why (kept in the alias history)."),
    require_gate: Path | None = typer.Option(
        None, help="Evaluation suite the version must pass first (with --min); the alias stays put otherwise."
    ),
    minimum: list[str] = typer.Option(
        [], "--min", help="Gate minimum, e.g. --min pass_rate=0.8 (with --require-gate)."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Point NAME@ALIAS at a version (atomically, with history), optionally only through a gate."""
    from largeforge.registry.service import open_registry

    def action() -> dict[str, Any]:
        if require_gate is not None:
            return _gated_move(name, alias, version, require_gate, minimum)
        if minimum:
            raise InvalidInput("--min needs --require-gate SUITE")
        with open_registry() as registry:
            event = registry.set_alias(name, alias, version, reason=reason)
            return {
                "alias": f"{name}@{alias}",
                "moved": True,
                "from": event.from_version,
                "to": event.to_version,
            }

    def render(doc: dict[str, Any]) -> None:
        if not doc["moved"]:
            stdout_console().print(f"[red]gate failed[/]: {doc['alias']} not moved — {doc['gate']}")
            return
        stdout_console().print(f"{doc['alias']}: {doc['from'] or '-'} → {doc['to']}")

    result = run_command(json_output, action, render=render, to_json=lambda doc: doc)
    if not result["moved"]:
        raise typer.Exit(code=1)


def _gated_move(name: str, alias: str, version: str, suite_path: Path, minimum: list[str]) -> dict[str, Any]:
    from largeforge.evaluation import load_suite, parse_minimums, set_alias_if_gate_passes

    if not minimum:
        raise InvalidInput("--require-gate needs at least one --min, e.g. --min pass_rate=0.8")
    promotion = set_alias_if_gate_passes(
        name, alias, version, load_suite(suite_path), parse_minimums(minimum)
    )
    return promotion.to_dict()


@alias_app.command("unset")
def alias_unset(
    name: str = typer.Argument(...), alias: str = typer.Argument(...), json_output: bool = JSON_OPTION
) -> None:
    """Remove an alias (the history keeps where it pointed)."""
    from largeforge.registry.service import open_registry

    def action() -> dict[str, Any]:
        with open_registry() as registry:
            event = registry.unset_alias(name, alias)
            return {"alias": f"{name}@{alias}", "from": event.from_version, "to": None}

    run_command(
        json_output,
        action,
        render=lambda d: stdout_console().print(f"{d['alias']} removed"),
        to_json=lambda d: d,
    )


@alias_app.command("history")
def alias_history(
    name: str = typer.Argument(...), alias: str | None = typer.Argument(None), json_output: bool = JSON_OPTION
) -> None:
    """Every alias move of a model, oldest first."""
    from largeforge.registry.service import open_registry

    def action() -> list[dict[str, Any]]:
        with open_registry() as registry:
            return [
                {
                    "alias": e.alias,
                    "from": e.from_version,
                    "to": e.to_version,
                    "reason": e.reason,
                    "at": e.at.isoformat(),
                }
                for e in registry.alias_history(name, alias)
            ]

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table(title=f"Alias history of {name}")
        for column in ("at", "alias", "from", "to", "reason"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["at"], row["alias"], str(row["from"] or "-"), str(row["to"] or "-"), row["reason"] or ""
            )
        stdout_console().print(table)

    run_command(json_output, action, render=render, to_json=lambda rows: {"data": rows, "count": len(rows)})
