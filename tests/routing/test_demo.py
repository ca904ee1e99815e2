"""The quickstart's routing stage on two real adapters of the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from largeforge.routing.demo import DemoExpert, run_router_demo
from tests.conftest import make_sharp_copy
from tests.serving.conftest import make_adapter


@pytest.mark.slow
def test_router_demo_routes_each_prompt_to_its_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = make_sharp_copy(tiny_model_dir, tmp_path / "model")
    experts = [
        DemoExpert(
            "extract",
            make_adapter(model, tmp_path / "a", 1),
            "pull name, age, city out of a sentence as JSON",
            keywords=("json", "extract"),
            prompt="Extract the JSON: Maria Lopez, 34, lives in Lisbon.",
        ),
        DemoExpert(
            "chat",
            make_adapter(model, tmp_path / "b", 2),
            "small talk and greetings",
            keywords=("hello", "weather"),
            prompt="Hello, how is the weather?",
        ),
    ]
    rows = run_router_demo(model, experts, tmp_path / "demo", classifier="keyword", max_tokens=4)
    assert [(r.expected, r.expert, r.decision) for r in rows] == [
        ("extract", "extract", "auto"),
        ("chat", "chat", "auto"),
    ]
    assert (tmp_path / "demo" / "decisions.jsonl").read_text().count('"event": "decision"') == 2
