"""The built-in checks: exact, regex, json, json_schema, length.

Each factory takes its validated config and returns a :data:`CheckFn` ``(completion, row) -> float``,
with whatever is expensive (compiled pattern, schema validator) prepared once. Scores are 1.0 (pass) or
0.0 (fail); partial credit comes from combining checks with weights, not from one check's internals.
Completions are compared after stripping surrounding whitespace, because generated text routinely ends
in a newline that no one considers part of the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from largeforge.checks.specs import (
    ExactCheckConfig,
    JsonCheckConfig,
    JsonSchemaCheckConfig,
    LengthCheckConfig,
    RegexCheckConfig,
)
from largeforge.errors import InvalidInput

CheckFn = Callable[[str, Mapping[str, Any]], float]

_NOT_JSON = object()


def column_value(row: Mapping[str, Any], column: str) -> Any:
    """The row's value for ``column``.

    Raises:
        InvalidInput: the row has no such column (the check is configured for other data).
    """
    if column not in row:
        raise InvalidInput(
            f"the check reads column {column!r}, but the row only has {sorted(row)}; set the check's column"
        )
    return row[column]


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return _NOT_JSON


def _squash(text: str) -> str:
    return " ".join(text.split())


def exact(config: ExactCheckConfig) -> CheckFn:
    def score(completion: str, row: Mapping[str, Any]) -> float:
        expected = str(column_value(row, config.column)).strip()
        got = completion.strip()
        if config.normalize_whitespace:
            expected, got = _squash(expected), _squash(got)
        return float(got == expected)

    return score


def regex(config: RegexCheckConfig) -> CheckFn:
    pattern = re.compile(config.pattern)
    match = pattern.fullmatch if config.fullmatch else pattern.search

    def score(completion: str, row: Mapping[str, Any]) -> float:
        return float(match(completion.strip()) is not None)

    return score


def json_check(config: JsonCheckConfig) -> CheckFn:
    """json_valid without a column; json_match (equal after parsing both sides) with one.

    Parsing both sides makes key order and spacing irrelevant: ``{"a": 1, "b": 2}`` matches
    ``{"b":2,"a":1}``. A completion that parses but differs scores 0.0; add a second ``json`` check
    without a column (with a smaller weight) to reward valid JSON separately.
    """
    column = config.column

    def score(completion: str, row: Mapping[str, Any]) -> float:
        parsed = _parse_json(completion.strip())
        if parsed is _NOT_JSON:
            return 0.0
        if column is None:
            return 1.0
        expected = column_value(row, column)
        if isinstance(expected, str):
            expected = _parse_json(expected)
            if expected is _NOT_JSON:
                raise InvalidInput(
                    f"column {column!r} holds {row[column]!r}, which is not JSON; a json check compares "
                    "against JSON text or an object"
                )
        return float(parsed == expected)

    return score


def json_schema(config: JsonSchemaCheckConfig) -> CheckFn:
    from jsonschema.validators import validator_for

    validator = validator_for(config.json_schema)(config.json_schema)

    def score(completion: str, row: Mapping[str, Any]) -> float:
        parsed = _parse_json(completion.strip())
        if parsed is _NOT_JSON:
            return 0.0
        return float(validator.is_valid(parsed))

    return score


def length(config: LengthCheckConfig) -> CheckFn:
    low = config.min if config.min is not None else 0
    high = config.max

    def score(completion: str, row: Mapping[str, Any]) -> float:
        text = completion.strip()
        size = len(text.split()) if config.unit == "words" else len(text)
        return float(size >= low and (high is None or size <= high))

    return score


__all__ = ["CheckFn", "column_value", "exact", "json_check", "json_schema", "length", "regex"]
