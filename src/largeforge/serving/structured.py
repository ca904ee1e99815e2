"""Structured output: grammars for ``response_format`` and ``tool_choice``, enforced token by token.

Owns the translation of OpenAI request fields into a :class:`~largeforge.serving.engine.Grammar` and
the per-request :class:`TokenConstraint` that an engine uses to mask logits. It does not sample,
schedule or parse tool calls out of text (``tools.py``).

The grammar library is llguidance (Microsoft, from the guidance project; also used by vLLM and
llama.cpp). It is a byte-level Earley parser: token masks are computed lazily from the tokenizer's
token trie in about 50 µs per step, so it works with any Hugging Face tokenizer, byte-level BPE
included, and needs no per-vocabulary precompilation. One grammar form covers everything we need:
Lark grammars with embedded ``%json {schema}``, JSON schemas and regexes; llama.cpp can enforce the
same grammars, which keeps :class:`Grammar` engine-neutral.

JSON is generated in one line with ``", "`` and ``": "`` separators and no other whitespace: small
models stay on the shortest path to a finished document, and the text matches ``json.dumps`` and the
tool-call format the chat template renders.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from largeforge.errors import InvalidInput, LargeForgeError
from largeforge.serving.engine import Grammar
from largeforge.serving.tools import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, TOOL_NAME_PATTERN, validate_tools

if TYPE_CHECKING:
    import torch

JSON_FORMAT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")


def _json_rule(schema: dict[str, Any]) -> str:
    """A Lark ``%json`` body for ``schema`` with our whitespace settings (llguidance's ``x-guidance``)."""
    return "%json " + json.dumps({**schema, "x-guidance": JSON_FORMAT}, ensure_ascii=False)


def _grammar_error_reason(message: str) -> str:
    """llguidance's message without its position prefix and the echo of our generated grammar."""
    lines = []
    for line in message.splitlines():
        if re.match(r"^\s+\d+ \|", line):  # the grammar source excerpt: ours, not the caller's
            break
        lines.append(line.strip())
    return re.sub(r"^at \d+\(\d+\): ", "", " ".join(lines).strip())


def _check_grammar(lark: str, param: str) -> Grammar:
    """Compile ``lark`` once without a tokenizer so an unsupported schema fails the request early."""
    from llguidance import LLMatcher

    failed, messages = LLMatcher.validate_grammar_with_warnings(LLMatcher.grammar_from_lark(lark))
    if failed:
        reason = _grammar_error_reason(messages[0])
        raise InvalidInput(
            f"{param} cannot be enforced: {reason}. Simplify the schema (see "
            "https://github.com/guidance-ai/llguidance/blob/main/docs/json_schema.md for what is supported)"
        )
    return Grammar(lark=lark)


def _check_schema(schema: Any, param: str) -> dict[str, Any]:
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict):
        raise InvalidInput(f"{param} must be a JSON schema object, got {type(schema).__name__}")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise InvalidInput(
            f"{param} is not a valid JSON schema: {exc.message}" + (f" (at {where})" if where else "")
        ) from exc
    return schema


def grammar_for_response_format(response_format: Any) -> Grammar | None:
    """The grammar for OpenAI's ``response_format``, or None when the output is free text.

    Args:
        response_format: ``None``, ``{"type": "text"}``, ``{"type": "json_object"}`` (any JSON object)
            or ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``. The schema is
            always enforced, whatever ``strict`` says.

    Raises:
        InvalidInput: a malformed shape, an invalid schema, or one llguidance cannot enforce; the
            message names the field (``response_format.json_schema.schema``).
    """
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise InvalidInput(
            'response_format must be an object such as {"type": "json_object"}, '
            f"got {type(response_format).__name__}"
        )
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMAT_TYPES:
        raise InvalidInput(
            f"response_format.type must be one of {', '.join(RESPONSE_FORMAT_TYPES)}; got {kind!r}"
        )
    if kind == "text":
        return None
    if kind == "json_object":
        return _check_grammar("start: " + _json_rule({"type": "object"}), "response_format")
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidInput(
            'response_format.json_schema is required with type "json_schema": '
            '{"name": "...", "schema": {...}, "strict": true}'
        )
    name = spec.get("name")
    if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
        raise InvalidInput(
            f"response_format.json_schema.name {name!r} must be 1–64 letters, digits, '_' or '-'"
        )
    if not isinstance(spec.get("strict", False), bool | None):
        raise InvalidInput("response_format.json_schema.strict must be true or false")
    if "schema" not in spec:
        raise InvalidInput("response_format.json_schema.schema is required: give the JSON schema to follow")
    schema = _check_schema(spec["schema"], "response_format.json_schema.schema")
    return _check_grammar("start: " + _json_rule(schema), "response_format.json_schema.schema")


def _chosen_tools(tools: list[dict[str, Any]], tool_choice: Any) -> list[int] | None:
    """Indexes into ``tools`` of those one of which must be called; None when the model may answer freely."""
    if tool_choice in (None, "auto", "none"):
        return None
    if tool_choice == "required":
        if not tools:
            raise InvalidInput('tool_choice "required" needs at least one tool in tools')
        return list(range(len(tools)))
    if not isinstance(tool_choice, dict) or tool_choice.get("type") != "function":
        raise InvalidInput(
            'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}; '
            f"got {tool_choice!r}"
        )
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    names = [tool["function"]["name"] for tool in tools]
    if name not in names:
        raise InvalidInput(
            f"tool_choice.function.name {name!r} is not one of the tools; "
            f"choose from: {', '.join(names) or '(no tools given)'}"
        )
    return [names.index(name)]


def grammar_for_tool_choice(tools: list[dict[str, Any]] | None, tool_choice: Any) -> Grammar | None:
    """The grammar that forces one tool call, or None when ``tool_choice`` leaves the model free.

    The output must be exactly ``<tool_call>\\n{"name": NAME, "arguments": ARGS}\\n</tool_call>`` with
    NAME one of the chosen tools and ARGS valid against that tool's ``parameters`` (each schema stays
    a root schema, so its ``$ref``/``$defs`` resolve as written).

    Args:
        tools: OpenAI tools (validated here, whatever ``tool_choice`` is).
        tool_choice: None, "none", "auto", "required" or ``{"type": "function", "function": {"name"}}``.

    Raises:
        InvalidInput: bad ``tools[i]...``, an unknown ``tool_choice``, or ``tools[i].function.parameters``
            that llguidance cannot enforce.
    """
    normalised = validate_tools(tools)
    chosen = _chosen_tools(normalised, tool_choice)
    if chosen is None:
        return None
    head = json.dumps(TOOL_CALL_OPEN + '\n{"name": ')
    tail = json.dumps("}\n" + TOOL_CALL_CLOSE)
    rules = [f"start: {head} call {tail}", "call: " + " | ".join(f"call_{i}" for i in chosen)]
    for index in chosen:
        function = normalised[index]["function"]
        arguments = _json_rule(function["parameters"])
        # Compiled alone first, so an unsupported schema is reported against its own tool.
        _check_grammar(f"start: {arguments}", f"tools[{index}].function.parameters")
        prefix = json.dumps(json.dumps(function["name"]) + ', "arguments": ')
        rules += [f"call_{index}: {prefix} args_{index}", f"args_{index}: {arguments}"]
    return _check_grammar("\n".join(rules), "tool_choice")


_TOKENIZERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_TOKENIZERS_LOCK = threading.Lock()


def _llg_tokenizer(tokenizer: Any) -> Any:
    """llguidance's view of an HF tokenizer, built once per tokenizer object (it walks the vocabulary)."""
    import llguidance.hf

    with _TOKENIZERS_LOCK:
        if (found := _TOKENIZERS.get(tokenizer)) is None:
            try:
                found = llguidance.hf.from_tokenizer(tokenizer)
            except ValueError as exc:
                raise InvalidInput(
                    f"structured output needs a fast (tokenizers) tokenizer; this model has "
                    f"{type(tokenizer).__name__}: {exc}"
                ) from exc
            _TOKENIZERS[tokenizer] = found
        return found


@cache
def _executor() -> Any:
    """One llguidance thread pool per process, computing the masks of a batch in parallel."""
    from llguidance import LLExecutor

    return LLExecutor()


def _first_line(error: str) -> str:
    return error.splitlines()[0] if error else "unknown error"


class TokenConstraint:
    """One request's grammar state: which tokens may come next, and whether the output is complete.

    Build one per request at admission (it is cheap once the tokenizer is cached), mask the logits of
    every step with :func:`apply_constraints`, :meth:`advance` with the sampled token, and stop with
    finish_reason "stop" when :meth:`is_finished` or the sampled token is EOS. EOS is allowed exactly
    when the grammar accepts what has been generated so far.

    Raises (constructor):
        InvalidInput: the grammar does not compile, or the tokenizer is not a fast tokenizer.
    """

    def __init__(self, grammar: Grammar, tokenizer: Any) -> None:
        from llguidance import LLMatcher

        self._tokenizer = _llg_tokenizer(tokenizer)
        self.vocab_size: int = self._tokenizer.vocab_size
        self.eos_token_id: int = self._tokenizer.eos_token
        self._matcher = LLMatcher(self._tokenizer, LLMatcher.grammar_from_lark(grammar.lark), log_level=0)
        if self._matcher.is_error():
            raise InvalidInput(f"the grammar does not compile: {_first_line(self._matcher.get_error())}")

    def advance(self, token_id: int) -> None:
        """Consume the sampled token.

        Raises:
            LargeForgeError: the grammar rejects the token (the engine sampled outside the mask) or the
                matcher hit a resource limit; the output would not follow the grammar.
        """
        if not self._matcher.consume_token(token_id):
            raise LargeForgeError(
                f"constrained decoding failed at token {token_id}: {_first_line(self._matcher.get_error())}"
            )

    def is_finished(self) -> bool:
        """True when the output is complete and nothing but EOS may follow."""
        self._raise_if_failed()
        return bool(self._matcher.is_stopped())

    def _raise_if_failed(self) -> None:
        if self._matcher.is_error():
            raise LargeForgeError(f"constrained decoding failed: {_first_line(self._matcher.get_error())}")


def _unpack_bitmask(bitmask: torch.Tensor, width: int) -> torch.Tensor:
    """``[N, words]`` int32 (bit j of word w allows token 32w+j) → ``[N, width]`` bool; beyond = False."""
    import torch

    shifts = torch.arange(32, dtype=torch.int32, device=bitmask.device)
    bits = ((bitmask.unsqueeze(-1) >> shifts) & 1).bool().reshape(bitmask.shape[0], -1)
    if bits.shape[1] < width:  # the model has more logits than the tokenizer has tokens (padding)
        bits = torch.nn.functional.pad(bits, (0, width - bits.shape[1]), value=False)
    return bits[:, :width]


def apply_constraints(logits: torch.Tensor, constraints: Sequence[TokenConstraint | None]) -> None:
    """Set to -inf, in place, the logits of tokens that the row's grammar does not allow next.

    Rows whose constraint is None are left alone. Columns past the tokenizer's vocabulary (embedding
    padding) are always disallowed in constrained rows.

    Args:
        logits: ``[B, V]`` next-token logits, on any device; V may exceed the tokenizer's vocabulary.
        constraints: B entries, one per row.

    Raises:
        ValueError: ``constraints`` does not have one entry per row, or mixes tokenizers.
        LargeForgeError: a row's matcher failed, or allows no token at all.
    """
    import torch
    from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask_par

    if len(constraints) != logits.shape[0]:
        raise ValueError(f"{len(constraints)} constraints for {logits.shape[0]} rows of logits")
    rows = [(row, c) for row, c in enumerate(constraints) if c is not None]
    if not rows:
        return
    vocab_size = rows[0][1].vocab_size
    if any(c.vocab_size != vocab_size for _, c in rows):
        raise ValueError("constraints of one batch must share a tokenizer")
    # llguidance.numpy rather than llguidance.torch: the latter imports torch._dynamo (~1 s) and
    # applies masks with torch.compile, which needs a C compiler on CPU machines.
    bitmask = allocate_token_bitmask(len(rows), vocab_size)
    fill_next_token_bitmask_par(_executor(), [(c._matcher, k) for k, (_, c) in enumerate(rows)], bitmask)
    for _, constraint in rows:
        constraint._raise_if_failed()
    if empty := [row for k, (row, _) in enumerate(rows) if not bitmask[k].any()]:
        raise LargeForgeError(f"constrained decoding allows no token at all in rows {empty}")
    allowed = _unpack_bitmask(torch.from_numpy(bitmask).to(logits.device), logits.shape[1])
    if len(rows) == logits.shape[0]:
        logits.masked_fill_(~allowed, float("-inf"))
        return
    index = torch.tensor([row for row, _ in rows], device=logits.device)
    logits[index] = logits[index].masked_fill(~allowed, float("-inf"))


__all__ = [
    "JSON_FORMAT",
    "TokenConstraint",
    "apply_constraints",
    "grammar_for_response_format",
    "grammar_for_tool_choice",
]
