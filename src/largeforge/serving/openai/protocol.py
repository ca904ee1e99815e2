"""OpenAI wire types for the routes we serve, checked against the official ``openai`` client's types.

Requests use ``extra="allow"`` like OpenAI's own server (clients send fields we may not use); the
ignored ones are logged, never silently acted on.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)


class OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(description="Base model id or adapter name, as listed by GET /v1/models.")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens to generate.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Same as max_tokens (newer name).")
    temperature: float = Field(1.0, ge=0, le=2, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, description="Sample among the k most likely tokens (0 = off).")
    seed: int | None = Field(None, description="Makes sampling reproducible.")
    stop: str | list[str] | None = Field(None, description="Up to 4 strings that end the completion.")
    n: int = Field(1, ge=1, le=8, description="Completions per request.")
    stream: bool = Field(False, description="Send server-sent events.")
    stream_options: dict[str, Any] | None = Field(
        None, description="{include_usage: true} adds a usage chunk."
    )
    user: str | None = Field(None, description="End-user id (logged, not used).")

    @model_validator(mode="after")
    def _check(self) -> OpenAIRequest:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop: at most 4 stop strings")
        if self.model_extra:
            log.info("ignoring unsupported request fields: %s", ", ".join(sorted(self.model_extra)))
        return self

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(s for s in self.stop if s)

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | None = None


class ChatCompletionRequest(OpenAIRequest):
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")


class CompletionRequest(OpenAIRequest):
    prompt: str = Field(description="The text to continue.")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def envelope(kind: str, request_id: str, model: str) -> dict[str, Any]:
    return {"id": request_id, "object": kind, "created": int(time.time()), "model": model}


__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "OpenAIRequest",
    "envelope",
    "new_id",
    "usage",
]
