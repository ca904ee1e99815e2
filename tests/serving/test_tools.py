"""Tool calls parsed out of model text, whole and streamed, in OpenAI's shapes."""

from __future__ import annotations

import random
from typing import Any

import pytest

from largeforge.serving.tools import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ToolCallStreamParser,
    parse_tool_calls,
    validate_tools,
)

WEATHER_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
TIME_CALL = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
TEXTS = [
    "Just an answer, no tools.",
    WEATHER_CALL,
    "Let me check.\n" + WEATHER_CALL + "\n" + TIME_CALL,
    WEATHER_CALL + "\nDone: it is sunny. ",
    "Broken: <tool_call>\n{not json}\n</tool_call> and then " + TIME_CALL,
    "Unfinished " + TOOL_CALL_OPEN + '\n{"name": "get_time"',
    'a < b and <tool_cal is not a tag; <tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call>',
    "  \n" + TIME_CALL + "  \n  ",
]


def test_plain_text_is_content() -> None:
    assert parse_tool_calls("Just an answer.") == ("Just an answer.", [])
    assert parse_tool_calls("") == (None, [])


def test_calls_and_content_in_openai_shape() -> None:
    content, calls = parse_tool_calls("Let me check.\n" + WEATHER_CALL + "\n" + TIME_CALL)
    assert content == "Let me check."
    assert [c["function"] for c in calls] == [
        {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"name": "get_time", "arguments": "{}"},
    ]
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    assert parse_tool_calls(WEATHER_CALL)[0] is None


def test_arguments_already_encoded_as_a_string_are_kept() -> None:
    text = '<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call>'
    assert parse_tool_calls(text)[1][0]["function"] == {"name": "f", "arguments": '{"x": 1}'}


@pytest.mark.parametrize(
    "block",
    [
        "<tool_call>\n{not json}\n</tool_call>",
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": [1]}</tool_call>',
        '<tool_call>{"name": "f", "arguments": "not json"}</tool_call>',
        '<tool_call>\n{"name": "get_time"',
    ],
)
def test_malformed_or_unfinished_calls_stay_content(block: str) -> None:
    text = "Before " + block + " after"
    assert parse_tool_calls(text) == (text, [])


def collect(deltas: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]], list[int]]:
    content = "".join(d["content"] for d in deltas if "content" in d)
    calls = [c for d in deltas for c in d.get("tool_calls", [])]
    return content or None, [c["function"] for c in calls], [c["index"] for c in calls]


@pytest.mark.parametrize("text", TEXTS)
def test_stream_gives_what_the_whole_text_gives_for_any_chunking(text: str) -> None:
    content, calls = parse_tool_calls(text)
    rng = random.Random(text)
    for _ in range(25):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 12))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        parser = ToolCallStreamParser()
        deltas = [d for chunk in chunks for d in parser.push(chunk)] + parser.finish()
        assert all(set(d) in ({"content"}, {"tool_calls"}) and any(d.values()) for d in deltas)
        streamed_content, streamed_calls, indexes = collect(deltas)
        assert streamed_content == content
        assert streamed_calls == [c["function"] for c in calls]
        assert indexes == list(range(len(calls)))
        assert parser.produced_calls == bool(calls)


def test_stream_holds_back_only_a_possible_tag() -> None:
    parser = ToolCallStreamParser()
    assert parser.push("Hello <tool") == [{"content": "Hello"}]  # the space waits: it may precede a call
    assert parser.push('_call>\n{"name": "get_time", ') == []
    assert not parser.produced_calls
    (delta,) = parser.push('"arguments": {}}\n</tool_call>')
    (call,) = delta["tool_calls"]
    assert call["index"] == 0 and call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_time", "arguments": "{}"}
    assert parser.push("\nIt is noon.") == [{"content": "It is noon."}]
    assert parser.finish() == []
    assert parser.produced_calls


def test_stream_releases_text_that_is_not_a_tag() -> None:
    parser = ToolCallStreamParser()
    assert parser.push("x <tool") == [{"content": "x"}]
    assert parser.push("box") == [{"content": " <toolbox"}]
    assert parser.push(f" {TOOL_CALL_OPEN}half") == []  # a call may be starting
    assert parser.finish() == [{"content": f" {TOOL_CALL_OPEN}half"}]
    assert not parser.produced_calls


def test_validate_tools_fills_in_empty_parameters() -> None:
    tools = [{"type": "function", "function": {"name": "now"}}]
    assert validate_tools(tools)[0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert "parameters" not in tools[0]["function"], "the caller's dicts are not modified"
    assert validate_tools(None) == []


def test_tags_match_the_chat_template_instructions_the_chat_template_format() -> None:
    from largeforge.scratch.chat_template import TOOLS_INSTRUCTIONS

    assert f"{TOOL_CALL_OPEN}\n" in TOOLS_INSTRUCTIONS and f"\n{TOOL_CALL_CLOSE}" in TOOLS_INSTRUCTIONS
