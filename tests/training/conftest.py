"""Training fixtures: the example task files and a recipe builder pointing at the session's tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"
DATA = {
    "sft": EXAMPLES / "extraction-sft.jsonl",
    "pretrain": EXAMPLES / "extraction-text.jsonl",
    "dpo": EXAMPLES / "extraction-preference.jsonl",
    "orpo": EXAMPLES / "extraction-preference.jsonl",
    "kto": EXAMPLES / "extraction-kto.jsonl",
    "grpo": EXAMPLES / "extraction-prompts.jsonl",
    "distill": EXAMPLES / "extraction-prompts.jsonl",
    "custom": EXAMPLES / "extraction-sft.jsonl",
}


@pytest.fixture
def make_recipe(tiny_model_dir: Path) -> Any:
    """``make_recipe("sft", lora={"r": 4})`` → a validated recipe that trains a few steps."""
    from largeforge.training import validate_recipe

    def build(method: str, **fields: Any) -> Any:
        document: dict[str, Any] = {
            "method": method,
            "model": str(tiny_model_dir),
            "data": {"train": str(DATA[method])},
            "training": {"max_steps": 3, "batch_size": 4, "learning_rate": 1e-2, "max_length": 96},
            "checkpoints": {"save_steps": 2},
        }
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(document.get(key), dict):
                document[key] = {**document[key], **value}
            else:
                document[key] = value
        return validate_recipe(document)

    return build
