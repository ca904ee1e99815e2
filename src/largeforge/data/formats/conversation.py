"""Conversations in three spellings, all normalised to OpenAI-style ``messages``.

- ``messages``: ``[{"role", "content"}]`` (OpenAI)
- ``sharegpt``: ``conversations: [{"from", "value"}]`` (+ optional ``system`` column)
- ``alpaca``: ``instruction`` + optional ``input`` + ``output`` (+ optional ``system``)

:func:`check_messages` is shared with the preference, KTO and prompt formats.
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

ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function_call": "assistant",
    "observation": "tool",
}


def check_messages(
    messages: Any, field_name: str, *, end_with: str | None = "assistant"
) -> list[FieldProblem]:
    """Every problem of a message list; ``end_with`` is the role the last turn must have (or None)."""
    if not isinstance(messages, list):
        return [
            FieldProblem(
                field_name,
                f"must be a list of messages, got {type(messages).__name__}",
                'use [{"role": ..., "content": ...}]',
            )
        ]
    if not messages:
        return [FieldProblem(field_name, "has no messages", "add at least one turn or drop the row")]
    problems: list[FieldProblem] = []
    for index, message in enumerate(messages):
        where = f"{field_name}[{index}]"
        if not isinstance(message, dict):
            problems.append(
                FieldProblem(
                    where,
                    f"must be an object, got {type(message).__name__}",
                    'use {"role": ..., "content": ...}',
                )
            )
            continue
        role = message.get("role")
        if role not in ROLES:
            problems.append(
                FieldProblem(
                    f"{where}.role", f"{role!r} is not a known role", f"use one of {', '.join(ROLES)}"
                )
            )
        elif role == "system" and index > 0:
            problems.append(
                FieldProblem(
                    f"{where}.role",
                    "a system message must come first",
                    "move it to the start of the conversation",
                )
            )
        problems.extend(non_empty_text(message.get("content"), f"{where}.content"))
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if end_with == "assistant" and "assistant" not in roles:
        problems.append(
            FieldProblem(
                field_name,
                "has no assistant turn, so there is nothing to learn",
                "add the assistant's answer",
            )
        )
    elif end_with is not None and roles and roles[-1] != end_with:
        problems.append(
            FieldProblem(
                field_name,
                f"ends with a {roles[-1]!r} turn, not {end_with!r}",
                f"end the conversation with the {end_with}'s turn",
            )
        )
    return problems


def _clean(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def normalize_messages(data: dict[str, Any]) -> NormalizeResult:
    problems = missing_columns(data, ("messages",), "messages") or check_messages(
        data["messages"], "messages"
    )
    extra = sorted(set(data) - {"messages"})
    return NormalizeResult(None if problems else {"messages": _clean(data["messages"])}, problems, extra)


def normalize_sharegpt(data: dict[str, Any]) -> NormalizeResult:
    problems = missing_columns(data, ("conversations",), "sharegpt")
    extra = sorted(set(data) - {"conversations", "system"})
    if problems:
        return NormalizeResult(None, problems, extra)
    turns = data["conversations"]
    if not isinstance(turns, list):
        return NormalizeResult(
            None,
            [
                FieldProblem(
                    "conversations", "must be a list of turns", 'use [{"from": "human", "value": ...}]'
                )
            ],
            extra,
        )
    messages: list[Any] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            messages.append(turn)
            continue
        speaker = turn.get("from")
        if speaker not in SHAREGPT_ROLES:
            problems.append(
                FieldProblem(
                    f"conversations[{index}].from",
                    f"{speaker!r} is not a known speaker",
                    f"use one of {', '.join(SHAREGPT_ROLES)}",
                )
            )
        messages.append({"role": SHAREGPT_ROLES.get(str(speaker), "user"), "content": turn.get("value")})
    problems += [
        FieldProblem(
            (p.field or "")
            .replace("messages", "conversations")
            .replace(".content", ".value")
            .replace(".role", ".from"),
            p.problem,
            p.hint,
        )
        for p in check_messages(messages, "messages")
    ]
    # LLaMA-Factory's ShareGPT keeps the system prompt in its own column; dropping it would lose it.
    system = data.get("system")
    if system is not None:
        problems += non_empty_text(system, "system")
        if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
            problems.append(
                FieldProblem(
                    "system", "is set, but the first turn is a system turn too", "keep one of the two"
                )
            )
        messages.insert(0, {"role": "system", "content": system})
    return NormalizeResult(None if problems else {"messages": _clean(messages)}, problems, extra)


def normalize_alpaca(data: dict[str, Any]) -> NormalizeResult:
    problems = missing_columns(data, ("instruction", "output"), "alpaca")
    extra = sorted(set(data) - {"instruction", "input", "output", "system"})
    if problems:
        return NormalizeResult(None, problems, extra)
    problems = non_empty_text(data["instruction"], "instruction") + non_empty_text(data["output"], "output")
    extra_input = data.get("input")
    if extra_input is not None and not isinstance(extra_input, str):
        problems.append(
            FieldProblem(
                "input",
                f"must be text, got {type(extra_input).__name__}",
                "use a JSON string or leave it empty",
            )
        )
    system = data.get("system")
    if system is not None:
        problems += non_empty_text(system, "system")
    if problems:
        return NormalizeResult(None, problems, extra)
    user = data["instruction"] + (f"\n\n{extra_input}" if extra_input and extra_input.strip() else "")
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user},
        {"role": "assistant", "content": data["output"]},
    ]
    return NormalizeResult({"messages": messages}, [], extra)


MESSAGES = FormatSpec("messages", "conversation", "OpenAI chat messages", ("messages",), normalize_messages)
SHAREGPT = FormatSpec(
    "sharegpt", "conversation", "ShareGPT conversations (from/value)", ("conversations",), normalize_sharegpt
)
ALPACA = FormatSpec(
    "alpaca", "conversation", "Alpaca instruction/input/output", ("instruction", "output"), normalize_alpaca
)
