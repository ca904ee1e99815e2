"""Types every format module shares: the spec, a field problem, a normalisation result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

FormatName = Literal["text", "messages", "sharegpt", "alpaca", "preference", "kto", "prompt"]
Kind = Literal["text", "conversation", "preference", "kto", "prompt"]


@dataclass(frozen=True)
class FieldProblem:
    field: str | None
    problem: str
    hint: str


@dataclass
class NormalizeResult:
    """The normalised row (None when any problem was found) and every problem in the row."""

    row: dict[str, Any] | None
    problems: list[FieldProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FormatSpec:
    name: str
    kind: str
    description: str
    columns: tuple[str, ...]
    normalize: Callable[[dict[str, Any]], NormalizeResult]


def missing_columns(data: dict[str, Any], required: tuple[str, ...], format_name: str) -> list[FieldProblem]:
    """One problem per absent (or null) required column, naming what the row does have."""
    have = ", ".join(sorted(data)) or "nothing"
    return [
        FieldProblem(
            column,
            f"missing column '{column}' (the row has: {have})",
            f"format '{format_name}' needs columns {', '.join(required)}; add it or pass --format",
        )
        for column in required
        if data.get(column) is None
    ]


def non_empty_text(value: Any, field_name: str) -> list[FieldProblem]:
    if not isinstance(value, str):
        return [FieldProblem(field_name, f"must be text, got {type(value).__name__}", "use a JSON string")]
    if not value.strip():
        return [FieldProblem(field_name, "is empty", "write some text or drop the row")]
    return []


__all__ = [
    "FieldProblem",
    "FormatName",
    "FormatSpec",
    "Kind",
    "NormalizeResult",
    "missing_columns",
    "non_empty_text",
]
