"""Shared fixtures: an isolated LargeForge home per test and one tiny model per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from largeforge.settings import get_settings

# Shrinks the ``tiny`` preset to ~60 k parameters: builds in about a second, still a real Qwen2.
NANO_OVERRIDES = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 256,
}
NANO_CORPUS = [
    "Maria Lopez, 34, lives in Lisbon.",
    '{"name": "Maria Lopez", "age": 34, "city": "Lisbon"}',
    "hello world, the cat sat on the mat",
    "What is two plus two? It is four.",
] * 20


@pytest.fixture(autouse=True)
def largeforge_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own home directory; nothing leaks between tests."""
    home = tmp_path / "lf-home"
    monkeypatch.setenv("LARGEFORGE_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 with a byte-level BPE tokenizer and the ChatML template, built offline."""
    from largeforge.scratch import build_base_model

    path = tmp_path_factory.mktemp("nano") / "model"
    build_base_model(path, preset="tiny", corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES)
    return path
