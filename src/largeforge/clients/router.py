"""Clients for the expert router: everything an :class:`InferenceClient` does, plus routing.

Adds the router's own endpoints — ``route`` (the decision without an answer), ``experts`` (with live
replica health), ``feedback`` (a rating or the expert that should have answered, which
``largeforge router train`` learns from) — and ``routed_chat``, which returns the answer together
with the expert that gave it and why (the router's ``x-largeforge-*`` headers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from largeforge.clients.errors import raise_for_status, translating
from largeforge.clients.inference import AsyncInferenceClient, InferenceClient, Messages, as_messages


@dataclass(frozen=True)
class RoutedChat:
    """A chat answer with its routing: ``decision`` is auto, abstained, expert or model."""

    completion: Any
    expert: str
    decision: str
    reason: str
    request_id: str
    answered_by: str | None = None  # a fallback expert, when the chosen one failed
    cache: str | None = None

    @property
    def text(self) -> str:
        return str(self.completion.choices[0].message.content or "")


def _routed(raw: Any) -> RoutedChat:
    headers = raw.headers
    return RoutedChat(
        completion=raw.parse(),
        expert=headers.get("x-largeforge-expert", ""),
        decision=headers.get("x-largeforge-decision", ""),
        reason=headers.get("x-largeforge-reason", ""),
        request_id=headers.get("x-largeforge-request-id", ""),
        answered_by=headers.get("x-largeforge-answered-by"),
        cache=headers.get("x-largeforge-cache"),
    )


def _route_body(messages: Messages, model: str) -> dict[str, Any]:
    return {"model": model, "messages": as_messages(messages)}


def _feedback_body(
    response_id: str, rating: float | None, expert: str | None, comment: str | None
) -> dict[str, Any]:
    return {"response_id": response_id, "rating": rating, "expert": expert, "comment": comment}


class RouterClient(InferenceClient):
    """A blocking client for ``largeforge router``; ``model`` defaults to ``auto`` (let the router choose)."""

    def __init__(
        self, base_url: str, *, api_key: str | None = None, model: str = "auto", **kwargs: Any
    ) -> None:
        super().__init__(base_url, api_key=api_key, model=model, **kwargs)

    def routed_chat(self, messages: Messages, *, model: str | None = None, **params: Any) -> RoutedChat:
        """A chat answer together with the expert that gave it and the reason."""
        with translating():
            raw = self.openai.chat.completions.with_raw_response.create(
                model=self._model(model), messages=as_messages(messages), **params
            )
            return _routed(raw)

    def route(self, messages: Messages, *, model: str = "auto") -> dict[str, Any]:
        """The decision alone: ``{"expert", "decision", "reason", "scores", "confidence"}``."""
        with translating():
            response = self.http.post("/route", json=_route_body(messages, model))
        raise_for_status(response)
        return dict(response.json())

    def experts(self) -> list[dict[str, Any]]:
        """Every expert with its replicas' health, load and failures."""
        with translating():
            response = self.http.get("/experts")
        raise_for_status(response)
        return list(response.json()["experts"])

    def feedback(
        self,
        response_id: str,
        *,
        rating: float | None = None,
        expert: str | None = None,
        comment: str | None = None,
    ) -> None:
        """Rate an answer (-1 … 1) and/or name the expert that should have answered it."""
        with translating():
            response = self.http.post(
                "/v1/feedback", json=_feedback_body(response_id, rating, expert, comment)
            )
        raise_for_status(response)


class AsyncRouterClient(AsyncInferenceClient):
    """The asyncio twin of :class:`RouterClient`."""

    def __init__(
        self, base_url: str, *, api_key: str | None = None, model: str = "auto", **kwargs: Any
    ) -> None:
        super().__init__(base_url, api_key=api_key, model=model, **kwargs)

    async def routed_chat(self, messages: Messages, *, model: str | None = None, **params: Any) -> RoutedChat:
        with translating():
            raw = await self.openai.chat.completions.with_raw_response.create(
                model=self._model(model), messages=as_messages(messages), **params
            )
            return _routed(raw)

    async def route(self, messages: Messages, *, model: str = "auto") -> dict[str, Any]:
        with translating():
            response = await self.http.post("/route", json=_route_body(messages, model))
        raise_for_status(response)
        return dict(response.json())

    async def experts(self) -> list[dict[str, Any]]:
        with translating():
            response = await self.http.get("/experts")
        raise_for_status(response)
        return list(response.json()["experts"])

    async def feedback(
        self,
        response_id: str,
        *,
        rating: float | None = None,
        expert: str | None = None,
        comment: str | None = None,
    ) -> None:
        with translating():
            response = await self.http.post(
                "/v1/feedback", json=_feedback_body(response_id, rating, expert, comment)
            )
        raise_for_status(response)


__all__ = ["AsyncRouterClient", "RoutedChat", "RouterClient"]
