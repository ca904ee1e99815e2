"""Learned routing: logistic regression on prompt embeddings, fitted from labelled prompts and feedback.

Owns the classifier artifact — ``classifier.json`` (classes, metrics, provenance) plus
``weights.safetensors`` (the ``(classes, 384)`` weight matrix and bias) — its fitting with
scikit-learn, and inference in plain numpy (one matrix-vector product, no scikit-learn at request
time, no pickles: the registry refuses them). Where the training data comes from and when a new
artifact replaces the current router is :mod:`largeforge.routing.learning`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from largeforge.errors import InvalidInput
from largeforge.routing.classifiers.base import Classifier, softmax

ARTIFACT_FILE = "classifier.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class LearnedArtifact:
    """A fitted classifier: ``probabilities = softmax(weights @ vector + bias)``."""

    classes: list[str]
    weights: np.ndarray  # (len(classes), dimension)
    bias: np.ndarray  # (len(classes),)
    metadata: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        from safetensors.numpy import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {"weights": self.weights.astype(np.float32), "bias": self.bias.astype(np.float32)},
            str(directory / WEIGHTS_FILE),
        )
        document = {"format": "largeforge-router-classifier/1", "classes": self.classes, **self.metadata}
        (directory / ARTIFACT_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path) -> LearnedArtifact:
        """Raises: InvalidInput when ``directory`` is not a classifier written by :meth:`save`."""
        from safetensors.numpy import load_file

        meta_file, weights_file = directory / ARTIFACT_FILE, directory / WEIGHTS_FILE
        if not meta_file.is_file() or not weights_file.is_file():
            raise InvalidInput(
                f"{directory} is not a router classifier (needs {ARTIFACT_FILE} and {WEIGHTS_FILE}); "
                "write one with `largeforge router train`"
            )
        document = json.loads(meta_file.read_text())
        tensors = load_file(str(weights_file))
        classes = list(document.pop("classes"))
        document.pop("format", None)
        return cls(classes, tensors["weights"], tensors["bias"], document)


def fit_artifact(vectors: np.ndarray, labels: list[str], *, regularization: float = 4.0) -> LearnedArtifact:
    """Fit multinomial logistic regression on unit embeddings.

    Args:
        vectors: shape ``(n, dimension)``.
        labels: the expert of each row; at least two distinct experts.
        regularization: scikit-learn's ``C`` (inverse strength).

    Raises:
        InvalidInput: fewer than two experts among the labels.
    """
    from sklearn.linear_model import LogisticRegression

    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InvalidInput(f"training needs prompts of at least two experts; got only {classes}")
    model = LogisticRegression(C=regularization, max_iter=2000)
    model.fit(vectors, labels)
    weights, bias = np.asarray(model.coef_), np.asarray(model.intercept_)
    if len(model.classes_) == 2:
        # scikit-learn keeps one row for two classes: p(class 1) = sigmoid(w·x + b) = softmax([0, w·x + b]).
        weights = np.vstack([np.zeros_like(weights[0]), weights[0]])
        bias = np.array([0.0, bias[0]])
    return LearnedArtifact([str(c) for c in model.classes_], weights, bias)


class LearnedClassifier(Classifier):
    kind = "learned"
    needs_embedding = True

    def __init__(
        self, artifact: LearnedArtifact, experts: list[str], *, threshold: float, abstain_to: str
    ) -> None:
        unknown = sorted(set(artifact.classes) - set(experts))
        if unknown:
            raise InvalidInput(
                f"classifier.artifact predicts experts the config lacks: {', '.join(unknown)}; "
                "retrain with `largeforge router train` or add those experts"
            )
        super().__init__(experts, threshold=threshold, abstain_to=abstain_to)
        self.artifact = artifact

    def probabilities(self, text: str, vector: np.ndarray | None) -> tuple[dict[str, float], str]:
        if vector is None:
            raise ValueError("the learned classifier needs the prompt's embedding")
        logits = self.artifact.weights @ vector + self.artifact.bias
        probabilities = softmax(logits, 1.0)
        scores = {name: 0.0 for name in self.experts}
        scores.update({name: float(p) for name, p in zip(self.artifact.classes, probabilities, strict=True)})
        return scores, "logistic regression"


__all__ = ["ARTIFACT_FILE", "WEIGHTS_FILE", "LearnedArtifact", "LearnedClassifier", "fit_artifact"]
