"""``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions``: parse, call the engine, shape.

The routes know nothing of how tokens are made: they turn a request into :class:`GenerationRequest`
objects (one per choice, all submitted at once so the engine batches them) and engine chunks into
OpenAI's response or server-sent-event shapes. Grammars for ``response_format`` and forced tool
calls are built here, enforced by the engine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from largeforge.errors import InvalidInput, NotFound
from largeforge.serving.auth import require_api_key
from largeforge.serving.engine import GenerationChunk, GenerationRequest, Grammar, TokenLogprob
from largeforge.serving.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    OpenAIRequest,
    chat_logprobs,
    completion_logprobs,
    envelope,
    new_id,
    usage,
)

routes = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


def _engine(request: Request) -> Any:
    return request.app.state.engine


@routes.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The base model and every loaded adapter."""
    engine = _engine(request)
    base = engine.model_ids()[0]
    data = [
        {
            "id": model_id,
            "object": "model",
            "created": 0,
            "owned_by": "largeforge",
            "root": base,
            "parent": None if model_id == base else base,
        }
        for model_id in engine.model_ids()
    ]
    return {"object": "list", "data": data}


def _plan(
    engine: Any, body: OpenAIRequest, prompt_ids: list[int], grammar: Grammar | None
) -> list[GenerationRequest]:
    """Validate model and lengths, then one generation request per choice (seeded ``seed + i``)."""
    ids = engine.model_ids()
    if body.model not in ids:
        raise NotFound(f"The model `{body.model}` does not exist; this server has: {', '.join(ids)}")
    room = engine.context_length - len(prompt_ids)
    limit = body.token_limit() or room
    if limit > room or room < 1:
        raise InvalidInput(
            f"This model's maximum context length is {engine.context_length} tokens. However, you requested "
            f"{len(prompt_ids) + limit} tokens ({len(prompt_ids)} in the prompt, {limit} for the completion). "
            "Please reduce the length of the messages or the completion."
        )
    adapter = None if body.model == ids[0] else body.model
    return [
        GenerationRequest(
            prompt_ids=prompt_ids,
            max_tokens=limit,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            min_p=body.min_p,
            seed=None if body.seed is None else body.seed + index,
            stop=body.stop_strings(),
            adapter=adapter,
            presence_penalty=body.presence_penalty,
            frequency_penalty=body.frequency_penalty,
            logprobs=body.top_logprobs_count(),
            grammar=grammar,
            ignore_eos=body.ignore_eos,
        )
        for index in range(body.n)
    ]


@dataclass
class _Choice:
    """What one choice accumulated from its stream."""

    text: list[str] = field(default_factory=list)
    tokens: int = 0
    finish: str = "length"
    logprobs: list[TokenLogprob] = field(default_factory=list)


async def _start(
    request: Request, plan: list[GenerationRequest], model: str
) -> AsyncGenerator[tuple[int, Any]]:
    """Submit every choice, then yield ``(index, chunk)`` as they come; the first one before returning.

    Pulling the first chunk here means overload and validation errors become HTTP statuses instead of
    an error in the middle of a 200 stream.
    """
    engine, metrics = _engine(request), request.app.state.metrics
    started = time.perf_counter()
    streams: list[AsyncIterator[GenerationChunk]] = []
    try:
        for generation in plan:
            streams.append(metrics.timed(model, started, engine.generate(generation)))
    except BaseException:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
        raise
    merged = _merge(streams)
    try:
        first = await anext(merged)
    except StopAsyncIteration:
        return _empty()
    except BaseException:
        await merged.aclose()
        raise
    return _prepend(first, merged)


async def _empty() -> AsyncGenerator[tuple[int, Any]]:
    return
    yield  # pragma: no cover — makes this an async generator


async def _prepend(
    first: tuple[int, Any], rest: AsyncGenerator[tuple[int, Any]]
) -> AsyncGenerator[tuple[int, Any]]:
    try:
        yield first
        async for item in rest:
            yield item
    finally:
        await rest.aclose()


async def _merge(
    streams: list[AsyncIterator[GenerationChunk]],
) -> AsyncGenerator[tuple[int, GenerationChunk]]:
    """Interleave the choices' streams in arrival order; closing the merge cancels them all."""
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    async def pump(index: int, stream: AsyncIterator[GenerationChunk]) -> None:
        try:
            async for chunk in stream:
                await queue.put((index, chunk))
            await queue.put((index, None))
        except Exception as exc:  # noqa: BLE001 — handed to the consumer, which re-raises it
            await queue.put((index, exc))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _chat_prompt(engine: Any, body: ChatCompletionRequest) -> tuple[list[int], Grammar | None, bool]:
    """Render the conversation (with tools) and pick the grammar; also whether to parse tool calls."""
    from largeforge.serving.structured import grammar_for_response_format, grammar_for_tool_choice

    tools = body.tools if body.tools and body.tool_choice != "none" else None
    grammar = grammar_for_tool_choice(tools, body.tool_choice) if tools else None
    if (
        tools is None
        and isinstance(body.tool_choice, dict | str)
        and body.tool_choice not in ("none", "auto")
    ):
        raise InvalidInput("tool_choice: forcing a tool call needs `tools`")
    if grammar is None:
        grammar = grammar_for_response_format(body.response_format)
    messages = [m.for_template() for m in body.messages]
    try:
        encoded = engine.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, **({"tools": tools} if tools else {})
        )
    except Exception as exc:
        raise InvalidInput(f"messages: the model's chat template cannot render them: {exc}") from exc
    return list(encoded["input_ids"]), grammar, tools is not None


@routes.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    from largeforge.serving.tools import parse_tool_calls

    engine = _engine(request)
    prompt_ids, grammar, with_tools = _chat_prompt(engine, body)
    plan = _plan(engine, body, prompt_ids, grammar)
    request.app.state.metrics.prompt_tokens.labels(body.model).inc(len(prompt_ids))
    request_id = new_id("chatcmpl")
    chunks = await _start(request, plan, body.model)
    if body.stream:
        events = _chat_events(chunks, plan, request_id, body, len(prompt_ids), with_tools)
        return StreamingResponse(events, media_type="text/event-stream")
    collected = await _collect(chunks, len(plan))
    choices = []
    for index, choice in enumerate(collected):
        text = "".join(choice.text)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = choice.finish
        if with_tools:
            content, calls = parse_tool_calls(text)
            message["content"] = content
            if calls:
                message["tool_calls"] = calls
                finish = "tool_calls"
        logprobs = chat_logprobs(choice.logprobs) if body.logprobs else None
        choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": logprobs})
    return {
        **envelope("chat.completion", request_id, body.model),
        "choices": choices,
        "usage": usage(len(prompt_ids), sum(c.tokens for c in collected)),
    }


@routes.post("/completions", response_model=None)
async def completions(body: CompletionRequest, request: Request) -> Any:
    from largeforge.serving.structured import grammar_for_response_format

    engine = _engine(request)
    if isinstance(body.prompt, list):
        prompt_ids = list(body.prompt)
    else:
        prompt_ids = list(engine.tokenizer(body.prompt, add_special_tokens=False)["input_ids"])
    if not prompt_ids:
        raise InvalidInput("prompt: must not be empty")
    grammar = grammar_for_response_format(body.response_format)
    plan = _plan(engine, body, prompt_ids, grammar)
    request.app.state.metrics.prompt_tokens.labels(body.model).inc(len(prompt_ids))
    request_id = new_id("cmpl")
    chunks = await _start(request, plan, body.model)
    if body.stream:
        events = _completion_events(chunks, request_id, body, len(prompt_ids))
        return StreamingResponse(events, media_type="text/event-stream")
    collected = await _collect(chunks, len(plan))
    choices = [
        {
            "index": index,
            "text": "".join(choice.text),
            "finish_reason": choice.finish,
            "logprobs": completion_logprobs(choice.logprobs) if body.logprobs is not None else None,
        }
        for index, choice in enumerate(collected)
    ]
    return {
        **envelope("text_completion", request_id, body.model),
        "choices": choices,
        "usage": usage(len(prompt_ids), sum(c.tokens for c in collected)),
    }


async def _collect(chunks: AsyncIterator[tuple[int, GenerationChunk]], count: int) -> list[_Choice]:
    collected = [_Choice() for _ in range(count)]
    async for index, chunk in chunks:
        choice = collected[index]
        choice.text.append(chunk.text)
        choice.tokens += len(chunk.token_ids)
        choice.logprobs.extend(chunk.logprobs or [])
        choice.finish = chunk.finish_reason or choice.finish
    return collected


async def _chat_events(
    chunks: AsyncGenerator[tuple[int, GenerationChunk]],
    plan: list[GenerationRequest],
    request_id: str,
    body: ChatCompletionRequest,
    prompt_tokens: int,
    with_tools: bool,
) -> AsyncIterator[str]:
    """Chat chunks: a role delta first, content or tool-call deltas, the finish reason, usage, [DONE]."""
    from largeforge.serving.tools import ToolCallStreamParser

    head = envelope("chat.completion.chunk", request_id, body.model)
    parsers = [ToolCallStreamParser() if with_tools else None for _ in plan]
    generated = 0

    def event(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> str:
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        return _event({**head, "choices": [choice]})

    for index in range(len(plan)):
        yield event(index, {"role": "assistant", "content": ""})
    async with aclosing(chunks):
        async for index, chunk in chunks:
            generated += len(chunk.token_ids)
            parser = parsers[index]
            if parser is not None:
                deltas = parser.push(chunk.text)
                if chunk.finish_reason:
                    deltas += parser.finish()
            else:
                deltas = [{"content": chunk.text}] if chunk.text else []
            logprobs = chat_logprobs(chunk.logprobs) if chunk.logprobs and body.logprobs else None
            if logprobs and not deltas:
                deltas = [{}]
            for position, delta in enumerate(deltas):
                yield event(index, delta, logprobs=logprobs if position == 0 else None)
            if chunk.finish_reason:
                finish = "tool_calls" if parser is not None and parser.produced_calls else chunk.finish_reason
                yield event(index, {}, finish)
    if body.include_usage():
        yield _event({**head, "choices": [], "usage": usage(prompt_tokens, generated)})
    yield "data: [DONE]\n\n"


async def _completion_events(
    chunks: AsyncGenerator[tuple[int, GenerationChunk]],
    request_id: str,
    body: CompletionRequest,
    prompt_tokens: int,
) -> AsyncIterator[str]:
    head = envelope("text_completion", request_id, body.model)
    generated = 0
    async with aclosing(chunks):
        async for index, chunk in chunks:
            generated += len(chunk.token_ids)
            if chunk.text or chunk.finish_reason or chunk.logprobs:
                logprobs = completion_logprobs(chunk.logprobs) if chunk.logprobs is not None else None
                choice = {
                    "index": index,
                    "text": chunk.text,
                    "finish_reason": chunk.finish_reason,
                    "logprobs": logprobs,
                }
                yield _event({**head, "choices": [choice]})
    if body.include_usage():
        yield _event({**head, "choices": [], "usage": usage(prompt_tokens, generated)})
    yield "data: [DONE]\n\n"


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


__all__ = ["routes"]
