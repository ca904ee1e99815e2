"""Named model sizes for models built from scratch.

Sizes are chosen for what runs on a 2-core laptop CPU:

- ``tiny`` (≈0.9 M parameters with a 1 k vocabulary) learns a small extraction task in a few minutes
  on two CPU cores; the tests shrink it further with overrides.
- ``small`` (≈6 M) is a better student when there is more time or a GPU.
- ``mid`` (≈60 M) is for benchmarks.

Any ``transformers`` config (a ``config.json`` path) can replace a preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from largeforge.errors import InvalidInput

PresetName = Literal["tiny", "small", "mid"]
Architecture = Literal["qwen2", "llama"]


@dataclass(frozen=True)
class ModelPreset:
    """Shape of a decoder-only transformer; vocabulary size comes from the trained tokenizer."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int

    def with_overrides(self, overrides: dict[str, Any]) -> ModelPreset:
        known = set(asdict(self))
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidInput(
                f"unknown model preset field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}"
            )
        return replace(self, **overrides)


PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        vocab_size=1024,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    ),
    "small": ModelPreset(
        vocab_size=4096,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=1024,
    ),
    "mid": ModelPreset(
        vocab_size=8192,
        hidden_size=640,
        intermediate_size=1792,
        num_hidden_layers=12,
        num_attention_heads=10,
        num_key_value_heads=5,
        max_position_embeddings=2048,
    ),
}


def get_preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInput(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def build_config(
    preset: ModelPreset, architecture: str, *, vocab_size: int, special_ids: dict[str, int]
) -> Any:
    """The transformers config for ``preset`` with the real vocabulary size and special token ids."""
    from transformers import LlamaConfig, Qwen2Config

    config_classes = {"qwen2": Qwen2Config, "llama": LlamaConfig}
    if architecture not in config_classes:
        raise InvalidInput(
            f"unknown architecture {architecture!r}; choose one of {', '.join(config_classes)}"
        )
    fields = asdict(preset) | {"vocab_size": vocab_size}
    return config_classes[architecture](
        **fields,
        tie_word_embeddings=True,
        bos_token_id=special_ids["bos"],
        eos_token_id=special_ids["eos"],
        pad_token_id=special_ids["pad"],
    )


__all__ = ["PRESETS", "Architecture", "ModelPreset", "PresetName", "build_config", "get_preset"]
