"""Prompt-only rows for GRPO and distillation; extra columns (e.g. ``answer``) are kept for rewards."""

from __future__ import annotations

import json
from typing import Any

from largeforge.data.formats._spec import (
    FieldProblem,
    FormatSpec,
    NormalizeResult,
    missing_columns,
    non_empty_text,
)
from largeforge.data.formats.conversation import check_messages


def normalize(data: dict[str, Any]) -> NormalizeResult:
    problems = missing_columns(data, ("prompt",), "prompt")
    if problems:
        return NormalizeResult(None, problems)
    prompt = data["prompt"]
    if isinstance(prompt, list):
        problems = check_messages(prompt, "prompt", end_with="user")
    else:
        problems = non_empty_text(prompt, "prompt")
    for key, value in data.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            problems.append(
                FieldProblem(
                    key,
                    f"holds a {type(value).__name__}, which is not JSON",
                    "use text, numbers, lists or objects",
                )
            )
    return NormalizeResult(None if problems else dict(data), problems)


SPEC = FormatSpec(
    "prompt", "prompt", "prompts only (GRPO, distillation), extra columns kept", ("prompt",), normalize
)
