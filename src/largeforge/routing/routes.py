"""The router's HTTP surface: parse, call :class:`~largeforge.routing.service.Router`, shape.

``/v1/chat/completions`` and ``/v1/completions`` (``model``: ``auto``, an expert, or an upstream model
id), ``/v1/models``, ``/v1/feedback``, ``/route``, ``/experts``, ``/admin/reload``; ``/health`` and
``/metrics`` are in :mod:`.app` because they need no key. Bodies are forwarded as the client sent
them (fields we do not know are the upstream's business), so they are read as JSON, not a schema.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from largeforge.errors import InvalidInput
from largeforge.routing.cache import caller_scope
from largeforge.routing.service import Router, prompt_text
from largeforge.serving.auth import require_api_key

routes = APIRouter(dependencies=[Depends(require_api_key)])


def _router(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


async def _answer(request: Request, path: str) -> Response:
    body = await _json_body(request)
    scope = caller_scope(request.headers.get("authorization"), request.headers.get("x-largeforge-project"))
    answer = await _router(request).complete(path, body, scope=scope)
    if answer.stream is not None:
        headers = {**answer.headers, "cache-control": "no-cache", "x-accel-buffering": "no"}
        headers.pop("content-type", None)
        return StreamingResponse(
            answer.stream, status_code=answer.status_code, headers=headers, media_type="text/event-stream"
        )
    media = answer.headers.pop("content-type", "application/json")
    return Response(answer.content, status_code=answer.status_code, headers=answer.headers, media_type=media)


@routes.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions, answered by the expert ``model`` names or the classifier picks (``auto``)."""
    return await _answer(request, "/chat/completions")


@routes.post("/v1/completions", response_model=None)
async def completions(request: Request) -> Response:
    """OpenAI text completions, routed like chat completions."""
    return await _answer(request, "/completions")


@routes.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    """``auto``, every expert, and every model id an upstream serves (pass-through)."""
    state = _router(request).state
    ids = ["auto", *state.experts, *(m for m in state.models if m not in state.experts)]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "largeforge-router"} for i in ids]
    return {"object": "list", "data": data}


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field("auto", description="auto, an expert name or a model id — as in a completion request.")
    messages: list[dict[str, Any]] | None = Field(
        None, description="A chat; the last user message is classified."
    )
    prompt: str | None = Field(None, description="A completion prompt (instead of messages).")


@routes.post("/route")
async def route(body: RouteRequest, request: Request) -> dict[str, Any]:
    """The decision alone — expert, scores per expert, the reason — without calling an upstream."""
    path = "/chat/completions" if body.messages is not None else "/completions"
    text = prompt_text(path, body.model_dump(exclude_none=True))
    decision = await _router(request).decide(body.model, text)
    return decision.to_dict()


@routes.get("/experts")
async def experts(request: Request) -> dict[str, Any]:
    """Every expert with its replicas' live health, load and failures."""
    router = _router(request)
    return {"default": router.state.config.default, "experts": router.describe_experts()}


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(
        min_length=1, description="The `id` of the response, or its x-largeforge-request-id."
    )
    rating: float | None = Field(None, ge=-1, le=1, description="-1 (bad) … 1 (good).")
    expert: str | None = Field(
        None, description="The expert that should have answered, when the router chose wrong."
    )
    comment: str | None = Field(None, max_length=2000, description="Free text, kept in the log.")


@routes.post("/v1/feedback")
async def feedback(body: FeedbackCreate, request: Request) -> dict[str, Any]:
    """Rate a response or correct its expert; `largeforge router train` learns from it."""
    _router(request).feedback(body.response_id, rating=body.rating, expert=body.expert, comment=body.comment)
    return {"recorded": True, "response_id": body.response_id}


@routes.post("/admin/reload")
async def reload(request: Request) -> dict[str, Any]:
    """Re-read the config file; requests in flight finish on the old config. A bad file changes nothing (422)."""
    state = await _router(request).reload()
    return {"reloaded": True, "experts": list(state.experts), "classifier": state.config.classifier.type}


__all__ = ["routes"]
