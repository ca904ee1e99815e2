"""Tool calling in the Hermes/Qwen2.5 format: validate OpenAI ``tools``, parse calls out of model text.

A model calls a tool by writing ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` (the
chat template in ``scratch/chat_template.py`` teaches it that format; ``structured.py`` enforces it with
a grammar for ``tool_choice`` "required" or a named function). This module turns such text into
OpenAI ``tool_calls``, whole (:func:`parse_tool_calls`) or as streamed deltas
(:class:`ToolCallStreamParser`). It never drops text: a block whose JSON is not a call stays content.

Content is the text outside the call blocks; whitespace that only separates a block from its
neighbours (the ``\\n`` between two calls, after the text before a call) is the block's formatting
and is not content. Both parsers apply that rule, so a stream's deltas add up to the whole answer.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from largeforge.errors import InvalidInput

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
# OpenAI's rule for function names; also keeps names safe to embed in grammars and templates.
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def validate_tools(tools: Any) -> list[dict[str, Any]]:
    """Check OpenAI ``tools`` and return them normalised (``parameters`` filled in when omitted).

    Args:
        tools: the request's ``tools``: ``[{"type": "function", "function": {"name", "description",
            "parameters"}}]``; None means no tools.

    Returns:
        New tool dicts in the same shape; ``function.parameters`` defaults to an empty object schema.

    Raises:
        InvalidInput: every problem found, each naming its place (``tools[1].function.name``) and the fix.
    """
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidInput(
            f"tools must be a list of {{'type': 'function', 'function': {{...}}}}, got {type(tools).__name__}"
        )
    problems: list[str] = []
    normalised: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            problems.append(f"{where}.type must be 'function' (the only tool type served here)")
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            problems.append(f"{where}.function must be an object with name, description and parameters")
            continue
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
            problems.append(f"{where}.function.name {name!r} must be 1–64 letters, digits, '_' or '-'")
        elif name in seen:
            problems.append(
                f"{where}.function.name {name!r} is used by an earlier tool; names must be unique"
            )
        else:
            seen.add(name)
        if not isinstance(function.get("description", ""), str):
            problems.append(f"{where}.function.description must be a string")
        parameters = function.get("parameters", EMPTY_PARAMETERS)
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            problems.append(
                f'{where}.function.parameters must be a JSON schema with "type": "object" '
                '(use {"type": "object", "properties": {}} for a function without arguments)'
            )
        else:
            try:
                validator_for(parameters).check_schema(parameters)
            except SchemaError as exc:
                problems.append(f"{where}.function.parameters is not a valid JSON schema: {exc.message}")
        normalised.append({**tool, "function": {**function, "parameters": parameters}})
    if problems:
        raise InvalidInput("; ".join(problems))
    return normalised


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _parse_call(body: str) -> tuple[str, str] | None:
    """``(name, arguments as a JSON string)`` from a block's inside, or None when it is not a call."""
    try:
        call = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    arguments = call.get("arguments", {})
    if isinstance(arguments, dict):
        return call["name"], json.dumps(arguments, ensure_ascii=False)
    if isinstance(arguments, str):  # some models write the arguments already encoded
        try:
            decoded = json.loads(arguments)
        except json.JSONDecodeError:
            return None
        return (call["name"], arguments) if isinstance(decoded, dict) else None
    return None


def _held_prefix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ToolCallStreamParser:
    """Turns streamed model text into OpenAI chat-chunk ``delta`` dicts.

    Plain text comes out as ``{"content": ...}`` as soon as it cannot be the start of a tool call
    (only a possible prefix of ``<tool_call>`` and trailing whitespace are held back); a call comes out
    whole, once its ``</tool_call>`` arrives, as ``{"tool_calls": [{"index", "id", "type", "function":
    {"name", "arguments"}}]}``. Call :meth:`finish` at the end of the stream; when
    :attr:`produced_calls` is true the choice's finish_reason is ``"tool_calls"``.
    """

    def __init__(self) -> None:
        self._buffer = ""  # text not yet decided on
        self._inside = False  # after a <tool_call> whose </tool_call> has not come yet
        self._whitespace = ""  # trailing whitespace held back: it is dropped if a call follows
        self._after_call = False  # drop leading whitespace: it separates the last call from what follows
        self._calls = 0

    @property
    def produced_calls(self) -> bool:
        return self._calls > 0

    def push(self, delta: str) -> list[dict[str, Any]]:
        """Feed the next piece of text; returns the deltas that are now certain."""
        self._buffer += delta
        out: list[dict[str, Any]] = []
        while True:
            if self._inside:
                end = self._buffer.find(TOOL_CALL_CLOSE)
                if end < 0:
                    return out
                body, self._buffer = self._buffer[:end], self._buffer[end + len(TOOL_CALL_CLOSE) :]
                self._inside = False
                self._close_block(body, out)
            else:
                start = self._buffer.find(TOOL_CALL_OPEN)
                if start < 0:
                    cut = len(self._buffer) - _held_prefix(self._buffer, TOOL_CALL_OPEN)
                    self._emit_text(self._buffer[:cut], out)
                    self._buffer = self._buffer[cut:]
                    return out
                self._emit_text(self._buffer[:start], out)
                self._buffer = self._buffer[start + len(TOOL_CALL_OPEN) :]
                self._inside = True

    def finish(self) -> list[dict[str, Any]]:
        """Flush what is left at the end of the stream: an unfinished call is content."""
        out: list[dict[str, Any]] = []
        rest = (TOOL_CALL_OPEN if self._inside else "") + self._buffer
        self._buffer, self._inside = "", False
        self._emit_text(rest, out)
        if self._whitespace:
            out.append({"content": self._whitespace})
            self._whitespace = ""
        return out

    def _close_block(self, body: str, out: list[dict[str, Any]]) -> None:
        parsed = _parse_call(body.strip())
        if parsed is None:  # not a call: the whole block, tags included, is content
            self._emit_text(TOOL_CALL_OPEN + body + TOOL_CALL_CLOSE, out)
            return
        name, arguments = parsed
        self._whitespace, self._after_call = "", True
        function = {"name": name, "arguments": arguments}
        call = {"index": self._calls, "id": _new_call_id(), "type": "function", "function": function}
        out.append({"tool_calls": [call]})
        self._calls += 1

    def _emit_text(self, text: str, out: list[dict[str, Any]]) -> None:
        if self._after_call:
            text = text.lstrip()
            if not text:
                return
            self._after_call = False
        text = self._whitespace + text
        body = text.rstrip()
        self._whitespace = text[len(body) :]
        if body:
            out.append({"content": body})


def parse_tool_calls(text: str) -> tuple[str | None, list[dict[str, Any]]]:
    """Split a finished answer into content and OpenAI ``tool_calls``.

    Returns:
        ``(content, calls)``: content is the text outside the call blocks (None when there is none);
        each call is ``{"id": "call_…", "type": "function", "function": {"name", "arguments"}}`` with
        ``arguments`` a JSON string. A block whose inside is not ``{"name": str, "arguments": {...}}``
        stays in the content, tags and all.
    """
    parser = ToolCallStreamParser()
    content: list[str] = []
    calls: list[dict[str, Any]] = []
    for delta in [*parser.push(text), *parser.finish()]:
        if "content" in delta:
            content.append(delta["content"])
        for call in delta.get("tool_calls", []):
            calls.append({key: value for key, value in call.items() if key != "index"})
    return ("".join(content) or None), calls


__all__ = [
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "TOOL_NAME_PATTERN",
    "ToolCallStreamParser",
    "parse_tool_calls",
    "validate_tools",
]
