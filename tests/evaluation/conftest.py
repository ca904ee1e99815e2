"""Evaluation fixtures: a tiny suite, a LoRA adapter trained a few steps, and a fake OpenAI endpoint.

Endpoints are faked with an httpx2 ``MockTransport`` (openai 3.x speaks httpx2): they stand for a
served model or a provider; everything behind the ``openai`` client runs for real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fake_openai import fake_chat_client

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SUITE = ROOT / "examples" / "suites" / "extraction.yaml"
SFT_DATA = ROOT / "examples" / "data" / "extraction-sft.jsonl"
PROMPT_DATA = ROOT / "examples" / "data" / "extraction-prompts.jsonl"
BASE_URL = "http://served.test/v1"


fake_chat_endpoint = fake_chat_client


def answers_by_user_text(answers: dict[str, str], default: str = "") -> Callable[[dict[str, Any]], str]:
    """A reply function that answers by the text of the last user message."""

    def reply(body: dict[str, Any]) -> str:
        return answers.get(body["messages"][-1]["content"], default)

    return reply


def write_suite(folder: Path, document: dict[str, Any], name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def nano_suite(**overrides: Any) -> dict[str, Any]:
    """Two cases, one check every completion passes and one none can pass, 4 new tokens each."""
    document: dict[str, Any] = {
        "name": "nano",
        "generation": {"max_tokens": 4},
        "cases": [
            {"id": "a", "prompt": "Maria Lopez, 34, lives in Lisbon.", "expected": "Maria"},
            {"id": "b", "prompt": "What is two plus two?", "expected": "four"},
        ],
        "checks": [
            {"type": "length", "max": 10_000},
            {"type": "regex", "pattern": "^IMPOSSIBLE-[0-9]{40}$", "fullmatch": True},
        ],
    }
    document.update(overrides)
    return document


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny model, trained 6 steps on the extraction conversations."""
    from largeforge.training import run_training, validate_recipe

    recipe = validate_recipe(
        {
            "method": "sft",
            "model": str(tiny_model_dir),
            "data": {"train": str(SFT_DATA)},
            "training": {"max_steps": 6, "batch_size": 8, "learning_rate": 3e-2, "max_length": 96},
            "lora": {"r": 8},
        }
    )
    run_dir = tmp_path_factory.mktemp("adapter") / "run"
    run_training(recipe, output_dir=run_dir)
    return run_dir / "final"
