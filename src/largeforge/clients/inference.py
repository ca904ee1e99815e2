"""Clients for one OpenAI-compatible server (``largeforge serve``, vLLM, llama.cpp, a provider).

Built on the official ``openai`` client — its request shapes, retries and stream parsing are not
rewritten here. What this adds: short calls for the common cases (a string prompt, text out),
streaming iterators that yield text, ``health()``, and typed errors (:mod:`.errors`) instead of the
``openai`` exception zoo. ``client.openai`` is the underlying client for everything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeVar

import httpx
import openai

from largeforge.clients.errors import raise_for_status, translating

Messages = str | Sequence[dict[str, Any]]
_Sync = TypeVar("_Sync", bound="InferenceClient")
_Async = TypeVar("_Async", bound="AsyncInferenceClient")


def as_messages(messages: Messages) -> list[Any]:
    """A bare string is one user message (typed loosely: ``openai``'s message unions reject plain dicts)."""
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)


def server_root(base_url: str) -> str:
    """``http://host:port/v1`` → ``http://host:port`` (where /health and the router's routes live)."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class InferenceClient:
    """A blocking client for one server.

    Args:
        base_url: the server's OpenAI base URL, ending in ``/v1``.
        api_key: its key, if it has one.
        model: the default model for calls that do not name one.
        timeout: seconds per request.
        max_retries: the official client's retries on connection errors, 429 and 5xx.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.openai = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=max_retries
        )
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=server_root(self.base_url), headers=headers, timeout=timeout)

    def chat(self, messages: Messages, *, model: str | None = None, **params: Any) -> Any:
        """One chat completion (an ``openai`` ``ChatCompletion``); ``params`` as in the OpenAI API.

        Raises:
            ClientError: a typed subclass for each failure (see :mod:`largeforge.clients.errors`).
        """
        with translating():
            return self.openai.chat.completions.create(
                model=self._model(model), messages=as_messages(messages), **params
            )

    def chat_text(self, messages: Messages, *, model: str | None = None, **params: Any) -> str:
        """The text of the first choice."""
        return str(self.chat(messages, model=model, **params).choices[0].message.content or "")

    def stream_chat(self, messages: Messages, *, model: str | None = None, **params: Any) -> Iterator[str]:
        """Yield the answer's text as it arrives.

        Raises:
            StreamFailed: the server ended the stream with an error event (e.g. an upstream died).
        """
        with translating():
            stream: Any = self.openai.chat.completions.create(
                model=self._model(model), messages=as_messages(messages), stream=True, **params
            )
            with stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content

    def complete(self, prompt: str, *, model: str | None = None, **params: Any) -> Any:
        """One text completion (an ``openai`` ``Completion``)."""
        with translating():
            return self.openai.completions.create(model=self._model(model), prompt=prompt, **params)

    def stream_complete(self, prompt: str, *, model: str | None = None, **params: Any) -> Iterator[str]:
        """Yield a text completion as it arrives."""
        with translating():
            stream: Any = self.openai.completions.create(
                model=self._model(model), prompt=prompt, stream=True, **params
            )
            with stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        if choice.text:
                            yield choice.text

    def models(self) -> list[str]:
        """Ids of the models (and adapters, or experts) the server offers."""
        with translating():
            return [model.id for model in self.openai.models.list().data]

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` body.

        Raises:
            ServerError: the server says it is unhealthy (503); ConnectionFailed: it does not answer.
        """
        with translating():
            response = self.http.get("/health")
        raise_for_status(response)
        return dict(response.json())

    def close(self) -> None:
        self.openai.close()
        self.http.close()

    def __enter__(self: _Sync) -> _Sync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _model(self, model: str | None) -> str:
        chosen = model or self.model
        if not chosen:
            raise ValueError("name a model: pass model=... to the call or to the client")
        return chosen


class AsyncInferenceClient:
    """The asyncio twin of :class:`InferenceClient` (same arguments, ``await``-able calls, async iterators)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.openai = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=max_retries
        )
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=server_root(self.base_url), headers=headers, timeout=timeout)

    async def chat(self, messages: Messages, *, model: str | None = None, **params: Any) -> Any:
        with translating():
            return await self.openai.chat.completions.create(
                model=self._model(model), messages=as_messages(messages), **params
            )

    async def chat_text(self, messages: Messages, *, model: str | None = None, **params: Any) -> str:
        return str((await self.chat(messages, model=model, **params)).choices[0].message.content or "")

    async def stream_chat(
        self, messages: Messages, *, model: str | None = None, **params: Any
    ) -> AsyncIterator[str]:
        with translating():
            stream: Any = await self.openai.chat.completions.create(
                model=self._model(model), messages=as_messages(messages), stream=True, **params
            )
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content

    async def complete(self, prompt: str, *, model: str | None = None, **params: Any) -> Any:
        with translating():
            return await self.openai.completions.create(model=self._model(model), prompt=prompt, **params)

    async def models(self) -> list[str]:
        with translating():
            page = await self.openai.models.list()
        return [model.id for model in page.data]

    async def health(self) -> dict[str, Any]:
        with translating():
            response = await self.http.get("/health")
        raise_for_status(response)
        return dict(response.json())

    async def aclose(self) -> None:
        await self.openai.close()
        await self.http.aclose()

    async def __aenter__(self: _Async) -> _Async:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _model(self, model: str | None) -> str:
        chosen = model or self.model
        if not chosen:
            raise ValueError("name a model: pass model=... to the call or to the client")
        return chosen


__all__ = ["AsyncInferenceClient", "InferenceClient", "Messages", "as_messages", "server_root"]
