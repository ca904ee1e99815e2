"""How the remote commands print server resources for people: one table shape for every list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from largeforge.cli.output import stdout_console


def cell(value: Any) -> str:
    """A JSON value as table text: timestamps to the second, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        return value[:19].replace("T", " ")
    if isinstance(value, dict | list):
        return (
            ", ".join(f"{k}={v}" for k, v in value.items())
            if isinstance(value, dict)
            else ", ".join(map(str, value))
        )
    return str(value)


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str, empty: str) -> None:
    """``rows`` as a table with ``columns`` (missing fields stay blank), or ``empty`` when there are none."""
    if not rows:
        stdout_console().print(f"[dim]{empty}[/]")
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(cell(row.get(column)) for column in columns))
    stdout_console().print(table)


def print_fields(document: dict[str, Any], *, title: str) -> None:
    """One resource as a two-column table of its fields."""
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in document.items():
        table.add_row(key, cell(value))
    stdout_console().print(table)


__all__ = ["cell", "print_fields", "print_rows"]
