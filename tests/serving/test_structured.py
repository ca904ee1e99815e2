"""Constrained decoding on the real tiny model: random sampling under a grammar always yields valid output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from largeforge.errors import InvalidInput, LargeForgeError
from largeforge.serving.engine import Grammar
from largeforge.serving.structured import (
    TokenConstraint,
    apply_constraints,
    grammar_for_response_format,
    grammar_for_tool_choice,
)
from largeforge.serving.tools import parse_tool_calls
from tests.conftest import make_sharp_copy

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z ]{1,10}$"},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "city": {"enum": ["Lisbon", "Paris"]},
        "member": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "member"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "pattern": "^[a-z]{1,8}$"},
        "unit": {"$ref": "#/$defs/unit"},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
    "$defs": {"unit": {"enum": ["C", "F"]}},
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER},
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
]


@pytest.fixture(scope="module")
def sharp_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Spread-out logits: the model strongly prefers tokens the grammar must forbid."""
    return make_sharp_copy(tiny_model_dir, tmp_path_factory.mktemp("sharp"))


@pytest.fixture(scope="module")
def model_and_tokenizer(sharp_model_dir: Path) -> tuple[Any, Any]:
    return AutoModelForCausalLM.from_pretrained(sharp_model_dir).eval(), AutoTokenizer.from_pretrained(
        sharp_model_dir
    )


def sample(
    model: Any,
    tokenizer: Any,
    constraint: TokenConstraint | None,
    seed: int,
    max_tokens: int,
    bias: torch.Tensor | None = None,
) -> tuple[str, bool, list[tuple[str, bool]]]:
    """Multinomial sampling at temperature 1, the way an engine would drive a constraint.

    Returns the text, whether it ended (EOS or a finished grammar), and for every step the text so far
    with whether EOS was allowed there.
    """
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Maria Lopez, 34, lives in Lisbon."}], add_generation_prompt=True
    )["input_ids"]
    generator = torch.Generator().manual_seed(seed)
    out: list[int] = []
    eos_allowed: list[tuple[str, bool]] = []
    inputs, past = torch.tensor([prompt]), None
    with torch.inference_mode():
        for _ in range(max_tokens + 1):
            output = model(input_ids=inputs, past_key_values=past, use_cache=True)
            past, logits = output.past_key_values, output.logits[:, -1].float().clone()
            if bias is not None:
                logits += bias
            if constraint is not None:
                apply_constraints(logits, [constraint])
                eos_allowed.append(
                    (tokenizer.decode(out), bool(torch.isfinite(logits[0, tokenizer.eos_token_id])))
                )
                if constraint.is_finished():
                    assert torch.isfinite(logits).sum() == 1, "a finished grammar allows only EOS"
                    return tokenizer.decode(out), True, eos_allowed
            if len(out) == max_tokens:
                break
            token = int(torch.multinomial(torch.softmax(logits[0], -1), 1, generator=generator))
            if token == tokenizer.eos_token_id:
                return tokenizer.decode(out), True, eos_allowed
            if constraint is not None:
                constraint.advance(token)
            out.append(token)
            inputs = torch.tensor([[token]])
    return tokenizer.decode(out), False, eos_allowed


def parses(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


@pytest.mark.parametrize("seed", range(4))
def test_json_schema_output_always_validates_under_random_sampling(
    model_and_tokenizer: tuple[Any, Any], seed: int
) -> None:
    model, tokenizer = model_and_tokenizer
    grammar = grammar_for_response_format(
        {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    )
    assert grammar is not None
    text, ended, eos_steps = sample(model, tokenizer, TokenConstraint(grammar, tokenizer), seed, 70)
    assert ended, f"seed {seed}: the bounded schema should finish within 70 tokens, got {text!r}"
    jsonschema.validate(json.loads(text), PERSON)
    assert ", " in text and "\n" not in text  # compact one-line JSON, as configured
    # EOS is allowed exactly when the text so far is a complete document.
    assert [allowed for _, allowed in eos_steps] == [parses(prefix) for prefix, _ in eos_steps]


def test_without_the_constraint_the_same_model_writes_no_json(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    text, _, _ = sample(model, tokenizer, None, 0, 40)
    assert not parses(text), "the control run must show that the grammar, not the model, makes JSON"


@pytest.mark.parametrize("seed", range(3))
def test_json_object_output_is_a_dict(model_and_tokenizer: tuple[Any, Any], seed: int) -> None:
    model, tokenizer = model_and_tokenizer
    grammar = grammar_for_response_format({"type": "json_object"})
    assert grammar is not None
    # A random-init model spreads its mass over the whole byte-level vocabulary, so an unbounded
    # string rarely closes within a test's budget. Favouring closing characters shortens the output;
    # the mask still decides what is allowed (a '}' cannot follow '{"').
    vocab = [tokenizer.decode([i]) for i in range(len(tokenizer))]
    bias = torch.tensor([3.0 if ('"' in t or "}" in t) else 0.0 for t in vocab])
    text, ended, _ = sample(model, tokenizer, TokenConstraint(grammar, tokenizer), seed, 80, bias)
    assert ended, text
    assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize(
    ("tool_choice", "names"),
    [
        ("required", {"get_weather", "get_time"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"get_weather"}),
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_forced_tool_call_parses_and_its_arguments_validate(
    model_and_tokenizer: tuple[Any, Any], tool_choice: Any, names: set[str], seed: int
) -> None:
    model, tokenizer = model_and_tokenizer
    grammar = grammar_for_tool_choice(TOOLS, tool_choice)
    assert grammar is not None
    text, ended, _ = sample(model, tokenizer, TokenConstraint(grammar, tokenizer), seed, 90)
    assert ended, text
    content, calls = parse_tool_calls(text)
    assert content is None and len(calls) == 1, text
    function = calls[0]["function"]
    assert function["name"] in names
    parameters = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == function["name"])
    jsonschema.validate(json.loads(function["arguments"]), parameters)


def test_chat_template_tool_call_is_what_the_grammar_accepts(tiny_model_dir: Path) -> None:
    """The three views of a call agree: the template renders it, the grammar accepts it, the parser reads it."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    call = {
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "paris", "unit": "C"}},
    }
    messages = [{"role": "user", "content": "Weather?"}, {"role": "assistant", "tool_calls": [call]}]
    rendered = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    block = rendered.split("<|im_start|>assistant\n")[1].removesuffix("<|im_end|>\n")
    constraint = TokenConstraint(grammar_for_tool_choice(TOOLS, "required"), tokenizer)  # type: ignore[arg-type]
    for token in tokenizer(block, add_special_tokens=False)["input_ids"]:
        constraint.advance(token)
    assert constraint.is_finished()
    assert parse_tool_calls(block)[1][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "paris", "unit": "C"}',
    }


def test_batch_masks_only_constrained_rows_and_padded_columns(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    vocab = len(tokenizer)
    json_row = TokenConstraint(grammar_for_response_format({"type": "json_object"}), tokenizer)  # type: ignore[arg-type]
    tool_row = TokenConstraint(grammar_for_tool_choice(TOOLS, "required"), tokenizer)  # type: ignore[arg-type]
    logits = torch.randn(3, vocab + 45)  # a head padded past the vocabulary and its 32-bit mask words
    logits[:, vocab:] = 100.0
    free = logits[1].clone()
    apply_constraints(logits, [json_row, None, tool_row])
    assert torch.equal(logits[1], free)
    assert torch.isinf(logits[[0, 2], vocab:]).all()
    for row, literal in ((0, "{"), (2, '<tool_call>\n{"name": ')):
        allowed = torch.isfinite(logits[row]).nonzero().flatten().tolist()
        assert allowed and tokenizer.eos_token_id not in allowed
        texts = [tokenizer.decode([i]) for i in allowed]
        assert all(literal.startswith(t) or t.startswith(literal) for t in texts), texts
    assert tokenizer.convert_tokens_to_ids("{") in torch.isfinite(logits[0]).nonzero().flatten().tolist()


def test_a_rejected_token_is_a_clear_error(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    constraint = TokenConstraint(grammar_for_response_format({"type": "json_object"}), tokenizer)  # type: ignore[arg-type]
    with pytest.raises(
        LargeForgeError, match=r"constrained decoding failed at token .*doesn't satisfy the grammar"
    ):
        constraint.advance(tokenizer.convert_tokens_to_ids("x"))
    with pytest.raises(LargeForgeError, match="constrained decoding failed"):
        apply_constraints(torch.zeros(1, len(tokenizer)), [constraint])
    with pytest.raises(InvalidInput, match="grammar does not compile"):
        TokenConstraint(Grammar(lark="start: missing_rule"), tokenizer)


def test_tokenizer_is_converted_once(tiny_model_dir: Path) -> None:
    from largeforge.serving.structured import _llg_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert _llg_tokenizer(tokenizer) is _llg_tokenizer(tokenizer)
    assert _llg_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir)) is not _llg_tokenizer(tokenizer)


@pytest.mark.parametrize("response_format", [None, {"type": "text"}])
def test_free_text_needs_no_grammar(response_format: Any) -> None:
    assert grammar_for_response_format(response_format) is None


@pytest.mark.parametrize("tool_choice", [None, "auto", "none"])
def test_tool_choice_that_leaves_the_model_free_needs_no_grammar(tool_choice: Any) -> None:
    assert grammar_for_tool_choice(TOOLS, tool_choice) is None


def _schema_format(schema: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, **extra}}


@pytest.mark.parametrize(
    ("response_format", "message"),
    [
        ("json", r"response_format must be an object"),
        ({"type": "xml"}, r"response_format.type must be one of text, json_object, json_schema; got 'xml'"),
        ({"type": "json_schema"}, r"response_format.json_schema is required"),
        (
            {"type": "json_schema", "json_schema": {"name": "x"}},
            r"response_format.json_schema.schema is required",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}},
            r"response_format.json_schema.name 'a b'",
        ),
        (_schema_format({"type": "object"}, strict="yes"), r"response_format.json_schema.strict"),
        (_schema_format([1]), r"response_format.json_schema.schema must be a JSON schema object"),
        (_schema_format({"type": "strin"}), r"response_format.json_schema.schema is not a valid JSON schema"),
        (
            _schema_format({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}),
            r"response_format.json_schema.schema cannot be enforced: .*not",
        ),
        (_schema_format({"$ref": "#/$defs/missing"}), r"cannot be enforced: .*missing"),
    ],
)
def test_invalid_response_format_names_the_field(response_format: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        grammar_for_response_format(response_format)


def _tool(name: str = "f", parameters: Any = None, **function: Any) -> dict[str, Any]:
    spec = {"name": name, **function}
    if parameters is not None:
        spec["parameters"] = parameters
    return {"type": "function", "function": spec}


@pytest.mark.parametrize(
    ("tools", "tool_choice", "message"),
    [
        ("f", "auto", r"tools must be a list"),
        ([{"type": "retrieval"}], "auto", r"tools\[0\].type must be 'function'"),
        ([{"type": "function"}], "auto", r"tools\[0\].function must be an object"),
        ([_tool("get weather")], "auto", r"tools\[0\].function.name 'get weather'"),
        ([_tool("f"), _tool("f")], "auto", r"tools\[1\].function.name 'f' is used by an earlier tool"),
        ([_tool(parameters={"type": "array"})], "auto", r"tools\[0\].function.parameters must be .*object"),
        (
            [_tool(parameters={"type": "object", "properties": {"a": {"type": 5}}})],
            "auto",
            r"tools\[0\].function.parameters is not a valid JSON schema",
        ),
        ([_tool(description=3)], "auto", r"tools\[0\].function.description must be a string"),
        (
            [_tool("a b"), _tool(parameters=[])],
            "auto",
            r"tools\[0\].function.name.*; tools\[1\].function.parameters",
        ),
        (TOOLS, "sometimes", r"tool_choice must be \"none\", \"auto\", \"required\""),
        (
            TOOLS,
            {"type": "function", "function": {"name": "nope"}},
            r"tool_choice.function.name 'nope' is not one of",
        ),
        (TOOLS, {"type": "function"}, r"tool_choice.function.name None"),
        ([], "required", r"tool_choice \"required\" needs at least one tool"),
        (
            [_tool("a"), _tool("b", parameters={"type": "object", "properties": {"a": {"not": {}}}})],
            {"type": "function", "function": {"name": "b"}},
            r"tools\[1\].function.parameters cannot be enforced: .*not",
        ),
    ],
)
def test_invalid_tools_and_tool_choice_name_the_field(tools: Any, tool_choice: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        grammar_for_tool_choice(tools, tool_choice)
