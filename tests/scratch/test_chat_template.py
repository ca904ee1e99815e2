"""The ChatML template with tools: rendering, and the assistant mask training relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from largeforge.serving.tools import parse_tool_calls

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
TOOLS_BLOCK = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n'
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call><|im_end|>\n"
)
CALLS = [
    {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Lyon"}}},
]
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris and Lyon?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": CALLS},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    {"role": "tool", "tool_call_id": "call_2", "content": "20C"},
    {"role": "assistant", "content": "18C and 20C."},
]
ASSISTANT_CALLS = (
    'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lyon"}}\n</tool_call><|im_end|>'
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_without_tools_the_rendering_is_unchanged(tokenizer: Any) -> None:
    """Byte for byte the pre-tools template, tool results included (datasets depend on it)."""
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
        {"role": "tool", "content": "T"},
        {"role": "assistant", "content": "B"},
    ]
    expected = (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
        "<|im_start|>tool\nT<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == expected
    assert (
        tokenizer.apply_chat_template(messages, tools=[], tokenize=False, add_generation_prompt=True)
        == expected
    )
    encoded = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert trained == "A<|im_end|>B<|im_end|>"


def test_tools_render_in_the_system_turn_merged_with_the_system_message(tokenizer: Any) -> None:
    text = tokenizer.apply_chat_template(
        CONVERSATION, tools=TOOLS, tokenize=False, add_generation_prompt=False
    )
    assert text == (
        "<|im_start|>system\nBe brief.\n\n"
        + TOOLS_BLOCK
        + "<|im_start|>user\nWeather in Paris and Lyon?<|im_end|>\n"
        "<|im_start|>assistant\n" + ASSISTANT_CALLS + "\n"
        "<|im_start|>tool\n18C<|im_end|>\n<|im_start|>tool\n20C<|im_end|>\n"
        "<|im_start|>assistant\n18C and 20C.<|im_end|>\n"
    )
    alone = tokenizer.apply_chat_template(
        CONVERSATION[1:2], tools=TOOLS, tokenize=False, add_generation_prompt=True
    )
    assert alone == (
        "<|im_start|>system\n" + TOOLS_BLOCK + "<|im_start|>user\nWeather in Paris and Lyon?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_assistant_mask_covers_tool_calls_and_nothing_of_the_prompt(tokenizer: Any) -> None:
    encoded = tokenizer.apply_chat_template(
        CONVERSATION, tools=TOOLS, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    untrained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    assert trained == ASSISTANT_CALLS + "18C and 20C.<|im_end|>"
    assert (
        "# Tools" in untrained
        and "18C<|im_end|>" in untrained
        and '<tool_call>\n{"name": "get_weather"' not in untrained
    )


def test_rendered_calls_parse_back_to_the_same_calls(tokenizer: Any) -> None:
    content, calls = parse_tool_calls(ASSISTANT_CALLS.removesuffix("<|im_end|>"))
    assert content == "Checking."
    assert [c["function"] for c in calls] == [
        {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
    ]
