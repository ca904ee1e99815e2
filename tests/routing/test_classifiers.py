"""The four classifiers on real text and the real MiniLM embeddings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from largeforge.routing.classifiers import build_classifier
from largeforge.routing.classifiers.learned import LearnedArtifact, LearnedClassifier, fit_artifact
from largeforge.routing.config import RouterConfig, parse_router_config
from largeforge.routing.learning import LabelledPrompt, accuracy_of, read_labelled, train_router
from tests.routing.conftest import ISSUE_YAML

PROMPTS = Path(__file__).resolve().parents[2] / "bench" / "data" / "router_prompts.jsonl"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "router" / "experts.yaml"


def issue_config(**classifier: Any) -> RouterConfig:
    document = yaml.safe_load(ISSUE_YAML)
    document["classifier"] = {**document["classifier"], **classifier}
    return parse_router_config(document)


def test_keywords_match_whole_words_case_folded_and_regexes() -> None:
    document = yaml.safe_load(ISSUE_YAML)
    document["experts"][0]["patterns"] = [{"regex": r"\d+\s*[x*]\s*\d+", "weight": 2}]
    keyword = build_classifier(parse_router_config({**document, "classifier": {"type": "keyword"}}))
    assert keyword.decide("What is the SUM of these?").expert == "math"
    decision = keyword.decide("give me 12 x 7")
    assert decision.expert == "math" and not decision.abstained and "\\d+" in decision.reason
    # "summary" contains "sum" but is not the word: no match, so the router abstains to the default.
    summary = keyword.decide("Write a summary of the meeting")
    assert summary.abstained and summary.expert == "general" and summary.confidence == 0.0


def test_embedding_routes_by_meaning_without_any_keyword(embedder: Any) -> None:
    classifier = build_classifier(issue_config(type="embedding", threshold=0.0))
    prompt = "How much is 15 times 3?"
    decision = classifier.decide(prompt, embedder.encode([prompt])[0])
    assert decision.expert == "math" and decision.scores["math"] > decision.scores["general"]


def test_hybrid_abstains_to_the_default_when_unsure_and_escalates_when_told(embedder: Any) -> None:
    prompt = "hmm"
    vector = embedder.encode([prompt])[0]
    strict = build_classifier(issue_config(threshold=0.99))
    decision = strict.decide(prompt, vector)
    assert decision.abstained and decision.expert == "general" and "abstained" in decision.reason
    text = "multiply 3 by the sum of 4 and 5"
    clear = build_classifier(issue_config()).decide(text, embedder.encode([text])[0])
    assert clear.expert == "math" and not clear.abstained and "sum" in clear.reason
    document = yaml.safe_load(ISSUE_YAML)
    document["classifier"] = {"type": "hybrid", "threshold": 0.99, "abstain_to": "math"}
    assert build_classifier(parse_router_config(document)).decide(prompt, vector).expert == "math"


def test_learned_artifact_round_trips_without_pickles(tmp_path: Path, embedder: Any) -> None:
    texts = ["What is 3 plus 4?", "Compute 12 times 9", "Who wrote Hamlet?", "What is the capital of Peru?"]
    artifact = fit_artifact(embedder.encode(texts), ["math", "math", "general", "general"])
    assert artifact.weights.shape == (2, 384)  # binary case expanded to one row per class
    artifact.save(tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["classifier.json", "weights.safetensors"]
    loaded = LearnedClassifier(
        LearnedArtifact.load(tmp_path / "clf"), ["math", "general"], threshold=0.0, abstain_to="general"
    )
    vector = embedder.encode(["What is 7 plus 8?"])[0]
    assert loaded.decide("", vector).expert == "math"
    original = LearnedClassifier(artifact, ["math", "general"], threshold=0.0, abstain_to="general")
    assert loaded.decide("", vector).scores == pytest.approx(original.decide("", vector).scores, abs=1e-6)


@pytest.mark.slow
def test_learned_beats_keyword_on_the_held_out_split(embedder: Any) -> None:
    config = parse_router_config(yaml.safe_load(EXAMPLES.read_text()))
    report = train_router(config, labelled=PROMPTS)
    train, test = read_labelled(PROMPTS)
    assert (
        report.test_size == len(test) >= 100 and report.train_size == len(train) + 12
    )  # + the config's examples
    assert report.accuracy["candidate"] > report.accuracy["keyword"] + 0.05
    assert report.accuracy["candidate"] >= 0.9
    # Held-out prompts come from templates never seen in training: no prompt is in both splits.
    assert not {p.text for p in train} & {p.text for p in test}
    assert report.promoted and report.artifact is not None


def test_accuracy_counts_abstentions_as_the_abstention_expert() -> None:
    keyword = build_classifier(issue_config(type="keyword"))
    prompts = [LabelledPrompt("the sum please", "math", "file"), LabelledPrompt("hello", "general", "file")]
    assert accuracy_of(keyword, prompts, np.zeros((2, 384))) == 1.0
    assert json.loads(json.dumps(keyword.decide("hello").to_dict()))["abstained"] is True
