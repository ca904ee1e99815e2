"""Checks: score one completion against its row, 1.0 = pass. Shared by evaluation and GRPO rewards.

    check = build_check(parse_check_config({"type": "json", "column": "answer"}))
    check('{"a": 1}', {"answer": '{"a":1}'})  # -> 1.0

Configs (``specs``) are validated when parsed; ``build_check`` turns one into a callable through the
``CHECKS`` registry (user functions are imported at that point, not before). This package owns scoring
only: turning scores into metrics belongs to evaluation, turning them into rewards to training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from largeforge.checks import builtin, judge, user
from largeforge.checks.builtin import CheckFn
from largeforge.checks.specs import (
    CheckConfig,
    CheckName,
    ContainsCheckConfig,
    ExactCheckConfig,
    JsonCheckConfig,
    JsonSchemaCheckConfig,
    JudgeCheckConfig,
    LengthCheckConfig,
    NumericCheckConfig,
    PythonCheckConfig,
    RegexCheckConfig,
)
from largeforge.errors import InvalidInput

# One factory per ``type``; its keys equal ``CheckName`` (a test holds them together).
CHECKS: dict[str, Callable[[Any], CheckFn]] = {
    "exact": builtin.exact,
    "regex": builtin.regex,
    "json": builtin.json_check,
    "json_schema": builtin.json_schema,
    "length": builtin.length,
    "python": user.python_check,
    "contains": builtin.contains,
    "numeric": builtin.numeric,
    "judge": judge.judge_check,
}

_ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckConfig)


def parse_check_config(document: Any) -> Any:
    """A validated check config from a mapping such as ``{"type": "exact", "column": "answer"}``.

    Raises:
        InvalidInput: unknown type or bad settings (a regex that does not compile, an invalid schema),
            every problem listed with its field.
    """
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as exc:
        tag = document.get("type") if isinstance(document, dict) else None
        lines = []
        for item in exc.errors():
            loc = [str(part) for part in item["loc"]]
            if loc and loc[0] == tag:
                loc = loc[1:]  # the union's tag, not a field the user wrote
            lines.append(f"  {'.'.join(loc) or '(check)'}: {item['msg'].removeprefix('Value error, ')}")
        problems = "\n".join(lines)
        raise InvalidInput(f"the check has {exc.error_count()} problem(s):\n{problems}") from exc


def build_check(config: Any) -> CheckFn:
    """The scoring callable ``(completion, row) -> float in [0, 1]`` for a validated config.

    Raises:
        NotFound / InvalidInput: a ``python`` check's function cannot be loaded, or a ``judge``'s local
            model cannot be loaded (a judge loads its model here, once).
    """
    return CHECKS[config.type](config)


__all__ = [
    "CHECKS",
    "CheckConfig",
    "CheckFn",
    "CheckName",
    "ContainsCheckConfig",
    "ExactCheckConfig",
    "JsonCheckConfig",
    "JsonSchemaCheckConfig",
    "JudgeCheckConfig",
    "LengthCheckConfig",
    "NumericCheckConfig",
    "PythonCheckConfig",
    "RegexCheckConfig",
    "build_check",
    "parse_check_config",
]
