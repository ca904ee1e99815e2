"""The contract between the OpenAI-compatible API and whatever produces tokens.

The API layer builds a :class:`GenerationRequest` (token ids, sampling settings, the adapter to use,
an optional grammar) and streams :class:`GenerationChunk` objects back; it never touches a model.
Engines live in ``serving/engines`` behind the :data:`~largeforge.serving.engines.ENGINES` registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Grammar:
    """A constraint on the output, as an llguidance Lark grammar (which may embed ``%json {schema}``).

    One engine-neutral form: the hf and llamacpp engines both enforce it token by token with
    llguidance; a proxying engine translates it for its backend.
    """

    lark: str


@dataclass(frozen=True)
class GenerationRequest:
    """One completion to produce.

    ``adapter`` is a loaded adapter's name, or None for the base model. ``logprobs`` is None for no
    log-probabilities, otherwise how many alternatives (0–20) to report next to each sampled token.
    """

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    adapter: str | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None
    grammar: Grammar | None = None
    ignore_eos: bool = False  # keep going past the end-of-sequence token (benchmarks; vLLM has it too)


@dataclass(frozen=True)
class TokenLogprob:
    """One sampled token with its log-probability and the ``top`` most likely alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class GenerationChunk:
    """New text since the previous chunk; the last chunk carries ``finish_reason``.

    ``logprobs`` (when asked for) has one entry per id in ``token_ids``.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True)
class EngineStats:
    """What /metrics and admission need to know about an engine right now."""

    running: int = 0
    waiting: int = 0
    kv_cache_usage: float = 0.0  # fraction of the engine's KV cache in use, 0–1


class InferenceEngine(Protocol):
    """What the API needs from an engine."""

    tokenizer: Any
    context_length: int

    def model_ids(self) -> list[str]:
        """The base model's id first, then every loaded adapter's name."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream the completion; closing the iterator cancels generation and frees its resources.

        Raises:
            Overloaded: the engine's queue is full (the API answers 429 with Retry-After).
        """
        ...

    def stats(self) -> EngineStats: ...

    async def load_adapter(self, name: str, path: str) -> None:
        """Serve a LoRA adapter under ``name`` from now on (Conflict if the name is taken)."""
        ...

    async def unload_adapter(self, name: str) -> None:
        """Stop serving ``name`` (NotFound if it is not loaded)."""
        ...

    async def check_health(self) -> None:
        """Raise ``Unavailable`` when requests cannot be served."""
        ...

    async def aclose(self) -> None: ...


__all__ = [
    "EngineStats",
    "FinishReason",
    "GenerationChunk",
    "GenerationRequest",
    "Grammar",
    "InferenceEngine",
    "TokenLogprob",
]
