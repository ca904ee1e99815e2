"""Engine registry: name → factory (imported lazily, so the API never loads torch it does not need)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from largeforge.errors import InvalidInput


def _hf(model: str, adapters: dict[str, str], **options: Any) -> Any:
    from largeforge.serving.engines.hf import HFEngine

    return HFEngine(model, adapters, **options)


def _llamacpp(model: str, adapters: dict[str, str], **options: Any) -> Any:
    from largeforge.serving.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine(model, adapters, **options)


def _vllm(model: str, adapters: dict[str, str], **options: Any) -> Any:
    from largeforge.serving.engines.vllm import VllmEngine

    return VllmEngine(model, adapters, **options)


ENGINES: dict[str, Callable[..., Any]] = {"hf": _hf, "llamacpp": _llamacpp, "vllm": _vllm}


def create_engine(name: str, model: str, adapters: dict[str, str], **options: Any) -> Any:
    """Build the engine called ``name``.

    Raises:
        InvalidInput: unknown engine name.
    """
    if name not in ENGINES:
        raise InvalidInput(f"unknown engine {name!r}; available here: {', '.join(ENGINES)}")
    return ENGINES[name](model, adapters, **options)


__all__ = ["ENGINES", "create_engine"]
