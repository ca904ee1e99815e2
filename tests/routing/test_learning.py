"""The closed loop: feedback in the log → `largeforge router train` → registry → a router using it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from largeforge.cli.main import app
from largeforge.routing.classifiers import build_classifier
from largeforge.routing.config import parse_router_config
from largeforge.routing.decisions import DecisionLog
from largeforge.routing.learning import feedback_examples

UPSTREAM = [{"url": "http://127.0.0.1:9/v1", "model": "m"}]


def config_document(**classifier: Any) -> dict[str, Any]:
    return {
        "default": "general",
        "classifier": {"type": "keyword", **classifier},
        "experts": [
            {
                "name": "math",
                "keywords": ["times"],
                "examples": ["What is 3 times 4?", "Solve 2x + 1 = 7"],
                "upstreams": UPSTREAM,
            },
            {
                "name": "general",
                "examples": ["Who painted the Mona Lisa?", "Why is the sky blue?"],
                "upstreams": UPSTREAM,
            },
        ],
    }


def test_feedback_turns_logged_decisions_into_labels(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl", log_prompts=True)
    log.decision(
        request_id="r1",
        response_id="c1",
        prompt="integrate x squared",
        expert="general",
        answered_by="general",
    )
    log.decision(
        request_id="r2", response_id="c2", prompt="what is 5 times 6", expert="math", answered_by="math"
    )
    log.decision(
        request_id="r3", response_id="c3", prompt="tell me a joke", expert="general", answered_by="general"
    )
    log.decision(request_id="r4", response_id=None, prompt="never rated", expert="math", answered_by="math")
    log.feedback("c1", rating=-1, expert="math", comment=None)  # a correction
    log.feedback("c2", rating=1, expert=None, comment=None)  # a confirmation
    log.feedback("r3", rating=1, expert=None, comment=None)  # by request id works too …
    log.feedback("c3", rating=-1, expert=None, comment=None)  # … and a later bad rating withdraws it
    log.close()
    labels = {(p.text, p.expert) for p in feedback_examples(tmp_path / "d.jsonl")}
    assert labels == {("integrate x squared", "math"), ("what is 5 times 6", "math")}


@pytest.mark.slow
def test_train_promotes_registers_and_a_learned_router_loads_it_from_the_registry(
    tmp_path: Path, largeforge_home: Path, embedder: Any
) -> None:
    config_file = tmp_path / "experts.yaml"
    config_file.write_text(yaml.safe_dump(config_document()))
    data = tmp_path / "labelled.jsonl"
    rows = [
        *({"prompt": f"What is {a} plus {a + 3}?", "expert": "math"} for a in range(2, 12)),
        *(
            {"prompt": q, "expert": "general"}
            for q in [
                "Who was Napoleon?",
                "How do magnets work?",
                "Best time to visit Rome?",
                "What do pandas eat?",
                "How tall is Everest?",
                "Why do we dream?",
            ]
        ),
        {"prompt": "Compute the derivative of x cubed", "expert": "math", "split": "test"},
        {"prompt": "What is 17 minus 9?", "expert": "math", "split": "test"},
        {"prompt": "Who invented the telephone?", "expert": "general", "split": "test"},
        {"prompt": "Where do penguins live?", "expert": "general", "split": "test"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(
        app, ["router", "train", "--config", str(config_file), "--data", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # Keyword routing only knows "times": it misses the derivative and the subtraction.
    assert report["accuracy"]["current"] == report["accuracy"]["keyword"] == 0.5
    assert report["accuracy"]["candidate"] >= 0.75 and report["promoted"] is True
    assert report["registered_as"] == "router-classifier:1 (@production)"
    learned = parse_router_config(config_document(type="learned", artifact="router-classifier@production"))
    classifier = build_classifier(learned)
    text = "What is 40 minus 2?"
    assert classifier.decide(text, embedder.encode([text])[0]).expert == "math"
    # Training again on the same data does not beat the (now learned) current router: nothing is promoted.
    learned_file = tmp_path / "learned.yaml"
    learned_file.write_text(
        yaml.safe_dump(config_document(type="learned", artifact="router-classifier@production"))
    )
    again = CliRunner().invoke(
        app, ["router", "train", "--config", str(learned_file), "--data", str(data), "--json"]
    )
    assert again.exit_code == 0 and json.loads(again.output)["promoted"] is False
