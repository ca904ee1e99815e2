"""The built-in checks: exact, regex, json, json_schema, length, contains, numeric.

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
    ContainsCheckConfig,
    ExactCheckConfig,
    JsonCheckConfig,
    JsonSchemaCheckConfig,
    LengthCheckConfig,
    NumericCheckConfig,
    RegexCheckConfig,
)
from largeforge.errors import InvalidInput

CheckFn = Callable[[str, Mapping[str, Any]], float]

_NOT_JSON = object()
# A decimal number with an optional sign, thousands separators and exponent: "-1,234.5e3", ".5", "42".
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


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


def contains(config: ContainsCheckConfig) -> CheckFn:
    def fold(text: str) -> str:
        return text.casefold() if config.ignore_case else text

    def score(completion: str, row: Mapping[str, Any]) -> float:
        wanted = config.value if config.column is None else column_value(row, config.column)
        needles = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(needles, list) or not all(isinstance(n, str) for n in needles):
            raise InvalidInput(
                f"column {config.column!r} holds {wanted!r}; a contains check needs text or a list of texts"
            )
        haystack = fold(completion)
        found = [fold(needle) in haystack for needle in needles]
        return float(all(found) if config.mode == "all" else any(found))

    return score


def first_number(text: str) -> float | None:
    """The first number written in ``text`` ("about 1,234.5 km" -> 1234.5), or None if there is none."""
    for match in _NUMBER.finditer(text):
        token = match.group()
        if any(c.isdigit() for c in token):
            return float(token.replace(",", ""))
    return None


def numeric(config: NumericCheckConfig) -> CheckFn:
    """Compare the first number in the completion with the expected one.

    The expected value may be a number or text ("#### 72" reads as 72), so GSM8K-style answer columns
    work as they are. A completion without a number fails; an expected value without one is a data error.
    """

    def score(completion: str, row: Mapping[str, Any]) -> float:
        raw = column_value(row, config.column)
        expected = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        if expected is None:
            expected = first_number(str(raw))
        if expected is None:
            raise InvalidInput(f"column {config.column!r} holds {raw!r}, which has no number to compare with")
        got = first_number(completion)
        if got is None:
            return 0.0
        allowed = config.tolerance * abs(expected) if config.relative else config.tolerance
        # Slack for binary floating point: 1.01 vs 1.0 within 0.01 must pass although 1.01 - 1.0 > 0.01.
        allowed += 1e-9 * max(1.0, abs(expected))
        return float(abs(got - expected) <= allowed)

    return score


__all__ = [
    "CheckFn",
    "column_value",
    "contains",
    "exact",
    "first_number",
    "json_check",
    "json_schema",
    "length",
    "numeric",
    "regex",
]
