"""Offline base models: a BPE tokenizer trained here, a ChatML template, and model presets."""

from largeforge.scratch.build import METADATA_FILE, BaseModelInfo, build_base_model
from largeforge.scratch.chat_template import CHATML_TEMPLATE
from largeforge.scratch.presets import PRESETS, ModelPreset, get_preset
from largeforge.scratch.tokenizer import train_tokenizer

__all__ = [
    "CHATML_TEMPLATE",
    "METADATA_FILE",
    "PRESETS",
    "BaseModelInfo",
    "ModelPreset",
    "build_base_model",
    "get_preset",
    "train_tokenizer",
]
