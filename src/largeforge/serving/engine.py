"""The contract between the OpenAI-compatible API and whatever produces tokens.

The API layer builds a :class:`GenerationRequest` (token ids, sampling settings, the adapter to use)
and streams :class:`GenerationChunk` objects back; it never touches a model. Engines live in
``serving/engines`` behind the :data:`~largeforge.serving.engines.ENGINES` registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class GenerationRequest:
    """One completion to produce.

    ``adapter`` is a loaded adapter's name, or None for the base model.
    """

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    adapter: str | None = None


@dataclass
class GenerationChunk:
    """New text since the previous chunk; the last chunk carries ``finish_reason``."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason | None = None


class InferenceEngine(Protocol):
    """What the API needs from an engine."""

    tokenizer: Any
    context_length: int

    def model_ids(self) -> list[str]:
        """The base model's id first, then every loaded adapter's name."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream the completion; cancelling the iterator stops generation."""
        ...

    async def check_health(self) -> None:
        """Raise ``Unavailable`` when requests cannot be served."""
        ...

    async def aclose(self) -> None: ...


__all__ = ["FinishReason", "GenerationChunk", "GenerationRequest", "InferenceEngine"]
