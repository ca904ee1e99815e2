"""The router's use cases: decide which expert answers, send the request there, record what happened.

Owns a :class:`RouterState` — everything built from one config (classifier, replica pools, proxy) —
and the :class:`Router` that holds the current state, swaps it on reload without dropping requests
(requests in flight keep the state they started with), runs the health checks, and ties the
classifier, cache, proxy, decision log and metrics together for each request. HTTP shapes are
:mod:`.routes`; this module raises :mod:`largeforge.errors` and returns plain results.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from largeforge.errors import InvalidInput, NotFound
from largeforge.routing.cache import ResponseCache, open_cache_backend
from largeforge.routing.classifiers import Classification, Classifier, build_classifier
from largeforge.routing.config import RouterConfig, load_router_config
from largeforge.routing.decisions import DecisionLog
from largeforge.routing.metrics import RouterMetrics
from largeforge.routing.proxy import Proxy, UpstreamFailed, UpstreamResponse
from largeforge.routing.replicas import ReplicaPool, run_health_checks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteDecision:
    """Which expert answers and why. ``how``: auto, abstained, expert (named) or model (pass-through)."""

    expert: str
    how: str
    reason: str
    classification: Classification | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"expert": self.expert, "decision": self.how, "reason": self.reason}
        if self.classification is not None:
            body["scores"] = self.classification.to_dict()["scores"]
            body["confidence"] = round(self.classification.confidence, 4)
        return body


@dataclass
class RoutedAnswer:
    """What the HTTP layer sends back: a body or a byte stream, a status and the routing headers."""

    status_code: int
    headers: dict[str, str]
    content: bytes | None = None
    stream: AsyncIterator[bytes] | None = None


class RouterState:
    """Everything built from one config; replaced as a whole on reload."""

    def __init__(self, config: RouterConfig, classifier: Classifier, client: httpx.AsyncClient) -> None:
        self.config = config
        self.classifier = classifier
        self.experts = {expert.name: expert for expert in config.experts}
        self.pools = {e.name: ReplicaPool.from_config(e, config.health) for e in config.experts}
        self.proxy = Proxy(self.pools, self.experts, config.retry, client)
        self.models: dict[str, str] = {}  # an upstream model id → the first expert serving it
        for expert in config.experts:
            for upstream in expert.upstreams:
                self.models.setdefault(upstream.model, expert.name)
        self.semantic_cache = any(e.cache and e.cache.semantic_threshold for e in config.experts)


@dataclass
class Router:
    """The running router: current state, shared HTTP client, cache, decision log and metrics."""

    config_path: Path | None
    state: RouterState
    client: httpx.AsyncClient
    cache: ResponseCache
    decisions: DecisionLog
    embedder: Callable[[], Any]
    metrics: RouterMetrics = field(default_factory=RouterMetrics)
    _health_task: asyncio.Task[None] | None = None

    @classmethod
    def build(
        cls,
        config: RouterConfig,
        *,
        config_path: Path | None = None,
        embedder: Callable[[], Any] | None = None,
        redis_url: str | None = None,
    ) -> Router:
        """Build the classifier (embedding the examples), pools, cache and log. Blocking: ~1 s with embeddings.

        Raises:
            InvalidInput: a learned classifier's artifact does not fit the config; Unavailable: the
                routing extra is missing for an embedding classifier.
        """
        from largeforge.routing.embeddings import load_embedder
        from largeforge.settings import get_settings

        embedder = embedder or load_embedder
        # One pooled client for every upstream: keep-alive connections are most of the proxy's speed.
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        client = httpx.AsyncClient(limits=limits, timeout=None)
        state = RouterState(config, build_classifier(config, embedder), client)
        settings = get_settings()
        path = config.decisions.path or settings.home / "router" / "decisions.jsonl"
        decisions = DecisionLog(Path(path), log_prompts=config.decisions.log_prompts)
        cache = ResponseCache(
            open_cache_backend(settings.redis_url if redis_url is None else redis_url or None)
        )
        return cls(config_path, state, client, cache, decisions, embedder)

    async def start(self) -> None:
        """Start the active health checks of the current state."""
        self._restart_health_checks()

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        await self.cache.backend.aclose()
        await self.client.aclose()
        self.decisions.close()

    async def reload(self, config: RouterConfig | None = None) -> RouterState:
        """Re-read the config file (or take ``config``) and swap the state; in-flight requests finish on the old one.

        Raises:
            InvalidInput: the new config is invalid (every problem listed); the old state stays in place.
        """
        if config is None:
            if self.config_path is None:
                raise InvalidInput("this router was started without a config file; nothing to reload")
            config = load_router_config(self.config_path)
        classifier = await asyncio.to_thread(build_classifier, config, self.embedder)
        self.state = RouterState(config, classifier, self.client)
        self._restart_health_checks()
        log.info("reloaded: %d experts, %s classifier", len(config.experts), config.classifier.type)
        return self.state

    def _restart_health_checks(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        state = self.state
        self._health_task = asyncio.get_running_loop().create_task(
            run_health_checks(list(state.pools.values()), self.client, state.config.health.interval_seconds)
        )

    async def decide(self, model: str, text: str, state: RouterState | None = None) -> RouteDecision:
        """Resolve ``model``: ``auto`` classifies ``text``; an expert name or an upstream model id is direct.

        Raises:
            NotFound: ``model`` is none of those.
        """
        state = state or self.state
        if model == "auto":
            vector = await self._embed(text) if state.classifier.needs_embedding else None
            outcome = state.classifier.decide(text, vector)
            how = "abstained" if outcome.abstained else "auto"
            return RouteDecision(outcome.expert, how, outcome.reason, outcome)
        if model in state.experts:
            return RouteDecision(model, "expert", "expert requested by name")
        if model in state.models:
            return RouteDecision(state.models[model], "model", f"model {model} is served by this expert")
        choices = ", ".join(["auto", *state.experts, *state.models])
        raise NotFound(f"The model `{model}` does not exist; this router has: {choices}")

    async def complete(self, path: str, body: dict[str, Any], *, scope: str) -> RoutedAnswer:
        """Route and answer one ``/v1`` request (``path``: ``/chat/completions`` or ``/completions``).

        Raises:
            InvalidInput: the body lacks ``model`` or its messages/prompt; NotFound: unknown model;
            UpstreamFailed: no upstream answered.
        """
        state, started, request_id = self.state, time.perf_counter(), f"route-{uuid.uuid4().hex[:20]}"
        text = prompt_text(path, body)
        decision = await self.decide(str(body.get("model", "")), text, state)
        self.metrics.decisions[(decision.expert, decision.how)] += 1
        headers = routing_headers(decision, request_id)
        expert_cache = state.experts[decision.expert].cache
        vector = None
        if expert_cache is not None:
            vector = await self._embed(text) if expert_cache.semantic_threshold else None
            hit = await self.cache.lookup(expert_cache, scope, decision.expert, path, body, vector)
            if hit is not None:
                self.metrics.cache_hits[(decision.expert, hit[1])] += 1
                self._record(
                    decision, request_id, text, started, "ok", cache=hit[1], response_id=_response_id(hit[0])
                )
                return RoutedAnswer(200, {**headers, "x-largeforge-cache": hit[1]}, content=hit[0])
        try:
            response = await state.proxy.send(path, body, decision.expert, stream=bool(body.get("stream")))
        except UpstreamFailed as error:
            self.metrics.upstream_failures[decision.expert] += 1
            self._record(decision, request_id, text, started, "upstream_failed", error=error.message)
            raise
        failures = len(response.attempts)
        if failures:
            self.metrics.upstream_failures[decision.expert] += failures
        if response.fallback_used:
            self.metrics.fallbacks[response.expert] += 1
            headers["x-largeforge-fallback-from"] = decision.expert
        headers.update(response.headers)
        headers["x-largeforge-upstream"] = _ascii(response.replica.name)
        headers["x-largeforge-answered-by"] = response.expert
        if response.stream is not None:
            stream = self._finish_stream(response, decision, request_id, text, started)
            return RoutedAnswer(response.status_code, headers, stream=stream)
        content = response.content or b""
        outcome = "ok" if response.status_code < 400 else "client_error"
        if expert_cache is not None and response.status_code == 200:
            await self.cache.store(expert_cache, scope, decision.expert, path, body, vector, content)
        response_id, response.usage = _parse_answer(content)
        self._record(decision, request_id, text, started, outcome, response=response, response_id=response_id)
        return RoutedAnswer(response.status_code, headers, content=content)

    async def _finish_stream(
        self, response: UpstreamResponse, decision: RouteDecision, request_id: str, text: str, started: float
    ) -> AsyncIterator[bytes]:
        assert response.stream is not None
        outcome, response_id = "ok", None
        try:
            async for chunk in response.stream:
                if response_id is None:
                    response_id = _response_id_from_event(chunk)
                if b'"upstream_failed"' in chunk:
                    outcome = "failed_mid_stream"
                yield chunk
        finally:
            self._record(
                decision, request_id, text, started, outcome, response=response, response_id=response_id
            )

    def _record(
        self,
        decision: RouteDecision,
        request_id: str,
        text: str,
        started: float,
        outcome: str,
        *,
        response: UpstreamResponse | None = None,
        response_id: str | None = None,
        cache: str | None = None,
        error: str | None = None,
    ) -> None:
        seconds = time.perf_counter() - started
        self.metrics.observe(response.expert if response else decision.expert, outcome, seconds)
        usage = response.usage if response else {}
        self.decisions.decision(
            request_id=request_id,
            response_id=response_id,
            prompt=text,
            expert=decision.expert,
            answered_by=response.expert if response else None,
            decision=decision.how,
            reason=decision.reason,
            scores=decision.classification.to_dict()["scores"] if decision.classification else None,
            upstream=response.replica.name if response else None,
            retries=len(response.attempts) if response else 0,
            latency_ms=round(seconds * 1000, 2),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            cache=cache,
            outcome=outcome,
            error=error,
        )

    async def _embed(self, text: str) -> np.ndarray:
        vector: np.ndarray = await self.embedder().aencode(text)
        return vector

    def feedback(
        self, response_id: str, *, rating: float | None, expert: str | None, comment: str | None
    ) -> None:
        """Record a rating and/or the expert that should have answered; :mod:`.learning` trains on it.

        Raises:
            InvalidInput: neither a rating nor an expert, or an expert the config does not have.
        """
        if rating is None and expert is None:
            raise InvalidInput(
                "feedback needs a rating, an expert (the one that should have answered), or both"
            )
        if expert is not None and expert not in self.state.experts:
            raise InvalidInput(f"expert {expert!r} does not exist; experts: {', '.join(self.state.experts)}")
        self.decisions.feedback(response_id, rating=rating, expert=expert, comment=comment)

    def describe_experts(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [
            {
                "name": expert.name,
                "description": expert.description,
                "default": expert.name == self.state.config.default,
                "fallbacks": expert.fallbacks,
                "cost": expert.cost.model_dump(),
                "cache": expert.cache.model_dump() if expert.cache else None,
                "replicas": [replica.to_dict(now) for replica in self.state.pools[expert.name].replicas],
            }
            for expert in self.state.config.experts
        ]


def prompt_text(path: str, body: dict[str, Any]) -> str:
    """The text classifiers read: the last user message of a chat, or a completion's prompt.

    Raises:
        InvalidInput: the body has no ``model`` or no usable messages/prompt.
    """
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidInput("model: required; send `auto`, an expert name or a model id")
    if path == "/chat/completions":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidInput("messages: required, a non-empty list of {role, content}")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        return _content_text(
            (users or messages)[-1].get("content") if isinstance((users or messages)[-1], dict) else ""
        )
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = " ".join(str(p) for p in prompt)
    if not isinstance(prompt, str):
        raise InvalidInput("prompt: required, a string")
    return prompt


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def routing_headers(decision: RouteDecision, request_id: str) -> dict[str, str]:
    return {
        "x-largeforge-expert": decision.expert,
        "x-largeforge-decision": decision.how,
        "x-largeforge-reason": _ascii(decision.reason),
        "x-largeforge-request-id": request_id,
    }


def _ascii(text: str) -> str:
    """HTTP header values are latin-1; keep them plain ASCII so every client can read them."""
    return text.encode("ascii", "replace").decode()[:200]


def _parse_answer(content: bytes) -> tuple[str | None, dict[str, Any]]:
    """The response id and usage of a non-streamed answer (both optional in what upstreams send)."""
    try:
        document = json.loads(content)
    except ValueError:
        return None, {}
    if not isinstance(document, dict):
        return None, {}
    value, usage = document.get("id"), document.get("usage")
    return (value if isinstance(value, str) else None), (usage if isinstance(usage, dict) else {})


def _response_id(content: bytes) -> str | None:
    return _parse_answer(content)[0]


def _response_id_from_event(chunk: bytes) -> str | None:
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: {"):
            return _response_id(line[6:])
    return None


__all__ = ["RouteDecision", "RoutedAnswer", "Router", "RouterState", "prompt_text", "routing_headers"]
