"""Read, detect, normalise and validate a dataset file in one call.

The single entry point used by ``data validate``, ``data import`` and (later) training. Bad rows
never raise here: the caller looks at ``report.ok`` (or calls :meth:`NormalizedDataset.require_valid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from largeforge.data.formats import detect_format, get_format
from largeforge.data.lengths import row_token_count
from largeforge.data.loaders import load_file
from largeforge.data.validation import RowError, ValidationReport
from largeforge.errors import DataValidationError


@dataclass
class NormalizedDataset:
    format: str
    kind: str
    rows: list[dict[str, Any]]
    report: ValidationReport
    source: Path
    loader: str

    def require_valid(self) -> NormalizedDataset:
        """Return self, or raise :class:`DataValidationError` listing every bad row."""
        if not self.report.ok:
            raise DataValidationError(self.report)
        return self


def read_dataset(
    path: str | Path,
    *,
    format: str | None = None,
    split: str | None = None,
    max_errors: int | None = None,
    max_chars: int = 200_000,
    tokenizer: Any | None = None,
    max_tokens: int | None = None,
) -> NormalizedDataset:
    """Load ``path`` and normalise every row to its kind's shape, collecting every problem.

    Args:
        format: a format name to use instead of detection.
        max_errors: rows listed in the report (default ``LARGEFORGE_MAX_VALIDATION_ERRORS``).
        max_chars: rows whose JSON is longer than this are errors.
        tokenizer, max_tokens: with both, rows longer than ``max_tokens`` tokens are errors.

    Raises:
        NotFound / InvalidInput: missing, empty or unreadable file; unknown or undetectable format.
        DataValidationError: no row could be read at all (every line broken, or a ``.json`` syntax
            error) and no ``format`` was given, so there are no columns to detect a format from;
            the report lists the parse errors.
    """
    from largeforge.settings import get_settings

    loaded = load_file(path, split=split)
    limit = max_errors or get_settings().max_validation_errors
    if format is None and not loaded.rows:
        # Detection would only say "cannot tell the format"; the parse errors are the real news.
        unreadable = ValidationReport(source=str(loaded.path), rows_total=len(loaded.errors), limit=limit)
        unreadable.extend(loaded.errors)
        raise DataValidationError(unreadable)
    spec = get_format(format) if format else get_format(detect_format(loaded.rows))
    report = ValidationReport(source=str(loaded.path), format=spec.name, kind=spec.kind, limit=limit)
    report.extend(loaded.errors)
    # Every loader error stands for one row (or line) that could not be read at all.
    report.rows_total = len(loaded.rows) + len(loaded.errors)
    rows: list[dict[str, Any]] = []
    ignored: set[str] = set()
    for raw in loaded.rows:
        result = spec.normalize(raw.data)
        ignored.update(result.ignored_columns)
        problems = [RowError(raw.number, raw.line, p.field, p.problem, p.hint) for p in result.problems]
        if result.row is not None:
            problems += _length_problems(
                raw.number, raw.line, result.row, spec.kind, max_chars, tokenizer, max_tokens
            )
        if problems:
            report.extend(problems)
        else:
            rows.append(result.row)  # type: ignore[arg-type]  # no problems means a row was produced
    report.rows_valid = len(rows)
    if ignored:
        report.warnings.append(
            f"ignored columns not used by format '{spec.name}': {', '.join(sorted(ignored))}"
        )
    return NormalizedDataset(spec.name, spec.kind, rows, report, loaded.path, loaded.loader)


def _length_problems(
    number: int,
    line: int | None,
    row: dict[str, Any],
    kind: str,
    max_chars: int,
    tokenizer: Any,
    max_tokens: int | None,
) -> list[RowError]:
    import json

    chars = len(json.dumps(row, ensure_ascii=False))
    if chars > max_chars:
        return [
            RowError(
                number,
                line,
                None,
                f"is over-long: {chars:,} characters, the limit is {max_chars:,}",
                "split the row or raise the limit",
            )
        ]
    if tokenizer is not None and max_tokens is not None:
        tokens = row_token_count(row, kind, tokenizer)
        if tokens > max_tokens:
            return [
                RowError(
                    number,
                    line,
                    None,
                    f"is over-long: {tokens:,} tokens, the limit is {max_tokens:,}",
                    "split the row or raise --max-tokens",
                )
            ]
    return []


__all__ = ["NormalizedDataset", "read_dataset"]
