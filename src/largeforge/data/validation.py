"""Validation results: every bad row, where it is, what is wrong and what to do.

A report never stops at the first problem: users fix files in one pass. Past ``limit`` errors are
still counted (``errors_total``) but not stored, so a million bad rows cost no memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from largeforge.settings import get_settings


@dataclass(frozen=True)
class RowError:
    row: int | None
    line: int | None
    field: str | None
    problem: str
    hint: str

    def location(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.row is not None:
            parts.append(f"(row {self.row})" if parts else f"row {self.row}")
        return " ".join(parts) or "file"

    def describe(self) -> str:
        where = self.location() + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.problem} — {self.hint}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"message": self.describe()}


@dataclass
class ValidationReport:
    source: str
    format: str | None = None
    kind: str | None = None
    rows_total: int = 0
    rows_valid: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    warnings: list[str] = field(default_factory=list)
    limit: int = field(default_factory=lambda: get_settings().max_validation_errors)

    @property
    def ok(self) -> bool:
        return self.errors_total == 0

    def add(self, error: RowError) -> None:
        self.errors_total += 1
        if len(self.errors) < self.limit:
            self.errors.append(error)

    def extend(self, errors: list[RowError]) -> None:
        for error in errors:
            self.add(error)

    def invalid_rows(self) -> int:
        return self.rows_total - self.rows_valid

    def summary(self) -> str:
        fmt = f" (format '{self.format}')" if self.format else ""
        if self.ok:
            return f"{self.source}: all {self.rows_total} rows are valid{fmt}"
        first = self.errors[0].describe() if self.errors else ""
        return (
            f"{self.source}: {self.errors_total} problem(s) in {self.invalid_rows()} of {self.rows_total} "
            f"rows{fmt} — first: {first}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "kind": self.kind,
            "ok": self.ok,
            "rows_total": self.rows_total,
            "rows_valid": self.rows_valid,
            "errors_total": self.errors_total,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": self.warnings,
            "limit": self.limit,
        }


__all__ = ["RowError", "ValidationReport"]
