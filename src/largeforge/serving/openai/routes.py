"""``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions``: parse, call the engine, shape.

The routes know nothing of how tokens are made: they turn a request into :class:`GenerationRequest`
objects and engine chunks into OpenAI's response or server-sent-event shapes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from largeforge.errors import InvalidInput, NotFound
from largeforge.serving.auth import require_api_key
from largeforge.serving.engine import GenerationChunk, GenerationRequest
from largeforge.serving.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    OpenAIRequest,
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


def _plan(engine: Any, body: OpenAIRequest, prompt_ids: list[int]) -> list[GenerationRequest]:
    """Validate model and lengths, then one generation request per choice (seeded ``seed + i``)."""
    ids = engine.model_ids()
    if body.model not in ids:
        raise NotFound(f"The model `{body.model}` does not exist; this server has: {', '.join(ids)}")
    room = engine.context_length - len(prompt_ids)
    limit = body.token_limit() or room
    if limit > room:
        raise InvalidInput(
            f"This model's maximum context length is {engine.context_length} tokens. However, you requested "
            f"{len(prompt_ids) + limit} tokens ({len(prompt_ids)} in the prompt, {limit} for the completion)."
        )
    adapter = None if body.model == ids[0] else body.model
    return [
        GenerationRequest(
            prompt_ids=prompt_ids,
            max_tokens=limit,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            seed=None if body.seed is None else body.seed + index,
            stop=body.stop_strings(),
            adapter=adapter,
        )
        for index in range(body.n)
    ]


async def _collect(engine: Any, generation: GenerationRequest) -> tuple[str, int, str]:
    text, tokens, finish = [], 0, "length"
    async for chunk in engine.generate(generation):
        text.append(chunk.text)
        tokens += len(chunk.token_ids)
        finish = chunk.finish_reason or finish
    return "".join(text), tokens, finish


@routes.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    engine = _engine(request)
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    encoded = engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
    prompt_ids = list(encoded["input_ids"])
    plan = _plan(engine, body, prompt_ids)
    request_id = new_id("chatcmpl")
    if body.stream:
        events = _stream(engine, plan, request_id, body, len(prompt_ids), chat=True)
        return StreamingResponse(events, media_type="text/event-stream")
    choices, generated = [], 0
    for index, generation in enumerate(plan):
        text, tokens, finish = await _collect(engine, generation)
        generated += tokens
        message = {"role": "assistant", "content": text}
        choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": None})
    return {
        **envelope("chat.completion", request_id, body.model),
        "choices": choices,
        "usage": usage(len(prompt_ids), generated),
    }


@routes.post("/completions", response_model=None)
async def completions(body: CompletionRequest, request: Request) -> Any:
    engine = _engine(request)
    prompt_ids = list(engine.tokenizer(body.prompt, add_special_tokens=False)["input_ids"])
    plan = _plan(engine, body, prompt_ids)
    request_id = new_id("cmpl")
    if body.stream:
        events = _stream(engine, plan, request_id, body, len(prompt_ids), chat=False)
        return StreamingResponse(events, media_type="text/event-stream")
    choices, generated = [], 0
    for index, generation in enumerate(plan):
        text, tokens, finish = await _collect(engine, generation)
        generated += tokens
        choices.append({"index": index, "text": text, "finish_reason": finish, "logprobs": None})
    return {
        **envelope("text_completion", request_id, body.model),
        "choices": choices,
        "usage": usage(len(prompt_ids), generated),
    }


async def _stream(
    engine: Any,
    plan: list[GenerationRequest],
    request_id: str,
    body: OpenAIRequest,
    prompt_tokens: int,
    *,
    chat: bool,
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk shapes; a usage chunk before [DONE] when asked for."""
    kind = "chat.completion.chunk" if chat else "text_completion"
    head = envelope(kind, request_id, body.model)
    generated = 0
    for index, generation in enumerate(plan):
        if chat:
            yield _event(
                {
                    **head,
                    "choices": [
                        {
                            "index": index,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                            "logprobs": None,
                        }
                    ],
                }
            )
        async for chunk in engine.generate(generation):
            generated += len(chunk.token_ids)
            if chunk.text or chunk.finish_reason:
                yield _event({**head, "choices": [_choice(index, chunk, chat)]})
    if body.include_usage():
        yield _event({**head, "choices": [], "usage": usage(prompt_tokens, generated)})
    yield "data: [DONE]\n\n"


def _choice(index: int, chunk: GenerationChunk, chat: bool) -> dict[str, Any]:
    if chat:
        delta = {"content": chunk.text} if chunk.text else {}
        return {"index": index, "delta": delta, "finish_reason": chunk.finish_reason, "logprobs": None}
    return {"index": index, "text": chunk.text, "finish_reason": chunk.finish_reason, "logprobs": None}


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


__all__ = ["routes"]
