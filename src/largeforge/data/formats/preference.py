"""Preference pairs: ``prompt``, ``chosen``, ``rejected`` — all text, or all message lists.

:func:`check_prompt_and_answers` is shared with KTO, which has the same prompt/answer shape.
"""

from __future__ import annotations

from typing import Any

from largeforge.data.formats._spec import (
    FieldProblem,
    FormatSpec,
    NormalizeResult,
    missing_columns,
    non_empty_text,
)
from largeforge.data.formats.conversation import check_messages


def check_prompt_and_answers(data: dict[str, Any], answers: tuple[str, ...]) -> list[FieldProblem]:
    """Prompt and answers must share one style: all strings, or all message lists."""
    fields = ("prompt", *answers)
    styles = {name: "messages" if isinstance(data[name], list) else "text" for name in fields}
    if len(set(styles.values())) > 1:
        described = ", ".join(f"{name} is {style}" for name, style in styles.items())
        return [
            FieldProblem(
                None,
                f"mixes text and message lists ({described})",
                "give every field as text, or every field as a list of messages",
            )
        ]
    if styles["prompt"] == "text":
        return [p for name in fields for p in non_empty_text(data[name], name)]
    problems = check_messages(data["prompt"], "prompt", end_with="user")
    for name in answers:
        problems += check_messages(data[name], name, end_with="assistant")
        roles = {m.get("role") for m in data[name] if isinstance(m, dict)}
        if roles - {"assistant"}:
            problems.append(
                FieldProblem(name, "may only hold assistant messages", "move other turns into prompt")
            )
    return problems


def normalize(data: dict[str, Any]) -> NormalizeResult:
    columns = ("prompt", "chosen", "rejected")
    extra = sorted(set(data) - set(columns))
    problems = missing_columns(data, columns, "preference") or check_prompt_and_answers(
        data, ("chosen", "rejected")
    )
    if not problems and data["chosen"] == data["rejected"]:
        problems.append(
            FieldProblem("rejected", "is identical to chosen", "a pair needs two different answers")
        )
    row = None if problems else {name: data[name] for name in columns}
    return NormalizeResult(row, problems, extra)


SPEC = FormatSpec(
    "preference", "preference", "preference pairs for DPO/ORPO", ("prompt", "chosen", "rejected"), normalize
)
