"""OpenAI wire types for the routes we serve, checked against the official ``openai`` client's types.

Requests use ``extra="allow"`` like OpenAI's own server (clients send fields we may not use); the
ignored ones are logged, never silently acted on.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from largeforge.serving.engine import TokenLogprob

log = logging.getLogger(__name__)


class OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(description="Base model id or adapter name, as listed by GET /v1/models.")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens to generate.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Same as max_tokens (newer name).")
    temperature: float = Field(1.0, ge=0, le=2, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, description="Sample among the k most likely tokens (0 = off).")
    min_p: float = Field(0.0, ge=0, le=1, description="Drop tokens below min_p × the top probability.")
    presence_penalty: float = Field(0.0, ge=-2, le=2, description="Penalise tokens already generated.")
    frequency_penalty: float = Field(
        0.0, ge=-2, le=2, description="Penalise tokens by how often they appeared."
    )
    seed: int | None = Field(None, description="Makes sampling reproducible.")
    stop: str | list[str] | None = Field(None, description="Up to 4 strings that end the completion.")
    n: int = Field(1, ge=1, le=8, description="Completions per request.")
    stream: bool = Field(False, description="Send server-sent events.")
    stream_options: dict[str, Any] | None = Field(
        None, description="{include_usage: true} adds a usage chunk."
    )
    user: str | None = Field(None, description="End-user id (logged for abuse tracing, not used otherwise).")
    response_format: dict[str, Any] | None = Field(
        None,
        description="{type: text | json_object | json_schema}; JSON is enforced by constrained decoding.",
    )
    ignore_eos: bool = Field(False, description="Extension (as in vLLM): generate max_tokens even past EOS.")

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

    def top_logprobs_count(self) -> int | None:
        """None: no log-probabilities; k: the sampled token's and the k most likely alternatives."""
        raise NotImplementedError


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _text_parts(cls, value: Any) -> Any:
        """Content parts are accepted when they are all text (this server reads no images)."""
        if isinstance(value, list):
            texts = []
            for part in value:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError("only text content parts ({'type': 'text', 'text': ...}) are supported")
                texts.append(part["text"])
            return "".join(texts)
        return value

    def for_template(self) -> dict[str, Any]:
        message = self.model_dump(exclude_none=True)
        message.setdefault("content", "")
        return message


class ChatCompletionRequest(OpenAIRequest):
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    logprobs: bool = Field(False, description="Return log-probabilities of the output tokens.")
    top_logprobs: int | None = Field(
        None, ge=0, le=20, description="Alternatives per token (needs logprobs)."
    )
    tools: list[dict[str, Any]] | None = Field(None, description="Functions the model may call.")
    tool_choice: str | dict[str, Any] | None = Field(
        None, description="none | auto | required | {type: function, function: {name}}."
    )
    parallel_tool_calls: bool | None = Field(None, description="Accepted; at most one call is forced.")

    @model_validator(mode="after")
    def _check_logprobs(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: needs logprobs=true")
        return self

    def top_logprobs_count(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(OpenAIRequest):
    prompt: str | list[int] = Field(description="The text (or token ids) to continue.")
    logprobs: int | None = Field(None, ge=0, le=5, description="Return this many alternatives per token.")
    echo: bool = Field(False, description="Not supported: must be false.")
    suffix: str | None = Field(None, description="Not supported: must be empty.")

    @model_validator(mode="after")
    def _check_unsupported(self) -> CompletionRequest:
        if self.echo:
            raise ValueError("echo: not supported by this server; send echo=false")
        if self.suffix:
            raise ValueError("suffix: not supported by this server; leave it empty")
        return self

    def top_logprobs_count(self) -> int | None:
        return self.logprobs


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


def chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    """``choice.logprobs`` of a chat completion: ``{"content": [{token, logprob, bytes, top_logprobs}]}``."""

    def item(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    return {
        "content": [
            {**item(e.token, e.logprob), "top_logprobs": [item(t, lp) for t, lp in e.top]} for e in entries
        ],
        "refusal": None,
    }


def completion_logprobs(entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """``choice.logprobs`` of a legacy completion: parallel lists and character offsets."""
    offsets, position = [], offset
    for entry in entries:
        offsets.append(position)
        position += len(entry.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [dict(e.top) for e in entries],
        "text_offset": offsets,
    }


__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "OpenAIRequest",
    "chat_logprobs",
    "completion_logprobs",
    "envelope",
    "new_id",
    "usage",
]
