"""Every format normalises to its kind's exact shape; detection picks the right one."""

from __future__ import annotations

import typing

import pytest

from largeforge.data.formats import FORMATS, FormatName, detect_format, get_format
from largeforge.data.records import RawRow
from largeforge.errors import InvalidInput

USER_ASSISTANT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def normalize(name: str, data: dict) -> dict:  # type: ignore[type-arg]
    result = FORMATS[name].normalize(data)
    assert result.problems == [], result.problems
    assert result.row is not None
    return result.row


def test_registry_keys_match_the_format_literal() -> None:
    assert set(FORMATS) == set(typing.get_args(FormatName))
    assert {spec.name for spec in FORMATS.values()} == set(FORMATS)


def test_text() -> None:
    assert normalize("text", {"text": "the cat", "meta": 1}) == {"text": "the cat"}
    assert FORMATS["text"].normalize({"text": "x", "meta": 1}).ignored_columns == ["meta"]


def test_messages_drops_extra_message_keys() -> None:
    data = {
        "messages": [
            {"role": "user", "content": "Hi", "name": "bob"},
            {"role": "assistant", "content": "Hello"},
        ]
    }
    assert normalize("messages", data) == {"messages": USER_ASSISTANT}


def test_sharegpt_maps_speakers_to_roles() -> None:
    data = {
        "conversations": [
            {"from": "system", "value": "Be kind"},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello"},
        ]
    }
    assert normalize("sharegpt", data) == {
        "messages": [{"role": "system", "content": "Be kind"}, *USER_ASSISTANT]
    }


def test_sharegpt_errors_use_sharegpt_field_names() -> None:
    result = FORMATS["sharegpt"].normalize(
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": " "}]}
    )
    assert [p.field for p in result.problems] == ["conversations[1].value"]


def test_alpaca_joins_instruction_and_input() -> None:
    data = {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "Be brief"}
    assert normalize("alpaca", data) == {
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Translate\n\nbonjour"},
            {"role": "assistant", "content": "hello"},
        ]
    }
    assert normalize("alpaca", {"instruction": "Say hi", "input": "", "output": "hi"})["messages"][0] == {
        "role": "user",
        "content": "Say hi",
    }


def test_preference_text_and_messages() -> None:
    assert normalize("preference", {"prompt": "Q?", "chosen": "good", "rejected": "bad"}) == {
        "prompt": "Q?",
        "chosen": "good",
        "rejected": "bad",
    }
    conversational = {
        "prompt": [{"role": "user", "content": "Q?"}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
    }
    assert normalize("preference", conversational) == conversational


@pytest.mark.parametrize(
    ("label", "expected"), [(True, True), (0, False), ("TRUE", True), ("0", False), ("no", False)]
)
def test_kto_labels(label: object, expected: bool) -> None:
    row = normalize("kto", {"prompt": "Q?", "completion": "A", "label": label})
    assert row == {"prompt": "Q?", "completion": "A", "label": expected}


def test_prompt_keeps_extra_columns() -> None:
    assert normalize("prompt", {"prompt": "2+2?", "answer": "4", "difficulty": 1}) == {
        "prompt": "2+2?",
        "answer": "4",
        "difficulty": 1,
    }
    messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "2+2?"}]
    assert normalize("prompt", {"prompt": messages})["prompt"] == messages


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"messages": USER_ASSISTANT}, "messages"),
        ({"conversations": []}, "sharegpt"),
        ({"instruction": "i", "output": "o"}, "alpaca"),
        ({"prompt": "p", "chosen": "c", "rejected": "r"}, "preference"),
        ({"prompt": "p", "completion": "c", "label": True}, "kto"),
        ({"text": "t"}, "text"),
        ({"prompt": "p", "answer": "a"}, "prompt"),
    ],
)
def test_detection(columns: dict, expected: str) -> None:  # type: ignore[type-arg]
    assert detect_format([RawRow(1, 1, columns)]) == expected


def test_undetectable_columns_name_what_was_seen_and_expected() -> None:
    with pytest.raises(InvalidInput) as info:
        detect_format([RawRow(1, 1, {"question": "q", "reply": "r"})])
    assert "question, reply" in info.value.message and "--format" in info.value.message
    assert "instruction, output" in info.value.message


def test_unknown_format_name_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="sharegpt"):
        get_format("shargpt")


def test_sharegpt_system_column_becomes_the_first_message() -> None:
    turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]
    result = FORMATS["sharegpt"].normalize({"system": "Be kind", "conversations": turns})
    assert result.row == {"messages": [{"role": "system", "content": "Be kind"}, *USER_ASSISTANT]}
    assert result.ignored_columns == []
    twice = FORMATS["sharegpt"].normalize(
        {"system": "Be kind", "conversations": [{"from": "system", "value": "Be brief"}, *turns]}
    )
    assert [(p.field, p.problem) for p in twice.problems] == [
        ("system", "is set, but the first turn is a system turn too")
    ]


def test_detection_treats_null_columns_as_absent() -> None:
    # An empty "text" cell must not make a prompt dataset look like pretraining text.
    assert detect_format([RawRow(1, 2, {"text": None, "prompt": "2+2?"})]) == "prompt"
