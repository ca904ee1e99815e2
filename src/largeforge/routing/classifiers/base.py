"""The one interface every routing classifier implements, and the abstention rule they share.

A classifier turns a prompt (and, when it asks for one, the prompt's embedding) into calibrated
probabilities per expert plus the evidence behind them. :meth:`Classifier.decide` applies the
threshold: below it the router abstains and the request goes to the abstention expert (the default,
or a stronger one) instead of to a guess. Building classifiers from a config is
:mod:`largeforge.routing.classifiers` (the registry); this module knows no concrete classifier.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Classification:
    """What a classifier concluded about one prompt.

    Attributes:
        expert: the expert chosen (the abstention expert when ``abstained``).
        scores: probability per expert (sums to ≤ 1; 0 for experts with no evidence).
        confidence: the highest probability.
        abstained: the confidence was below the threshold.
        reason: a short human-readable account (sent in the ``x-largeforge-reason`` header).
    """

    expert: str
    scores: dict[str, float]
    confidence: float
    abstained: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expert": self.expert,
            "scores": {name: round(value, 4) for name, value in self.scores.items()},
            "confidence": round(self.confidence, 4),
            "abstained": self.abstained,
            "reason": self.reason,
        }


class Classifier(ABC):
    """Shared decision logic; subclasses supply :meth:`probabilities` only."""

    kind: ClassVar[str]
    needs_embedding: ClassVar[bool] = False

    def __init__(self, experts: list[str], *, threshold: float, abstain_to: str) -> None:
        self.experts = list(experts)
        self.threshold = threshold
        self.abstain_to = abstain_to

    @abstractmethod
    def probabilities(self, text: str, vector: np.ndarray | None) -> tuple[dict[str, float], str]:
        """Probability per expert and the evidence, e.g. ``"keywords sum, equation"``.

        Args:
            text: the prompt (the last user message of a chat).
            vector: the prompt's unit embedding, shape ``(384,)``; None unless ``needs_embedding``.
        """

    def decide(self, text: str, vector: np.ndarray | None = None) -> Classification:
        """Classify ``text``; abstain below the threshold."""
        scores, evidence = self.probabilities(text, vector)
        best = max(scores, key=lambda name: scores[name]) if scores else self.abstain_to
        confidence = scores.get(best, 0.0)
        if confidence < self.threshold or confidence == 0.0:
            reason = f"abstained ({self.kind} confidence {confidence:.2f} < {self.threshold:.2f})"
            return Classification(self.abstain_to, scores, confidence, True, reason)
        reason = f"{self.kind} {confidence:.2f}: {evidence}" if evidence else f"{self.kind} {confidence:.2f}"
        return Classification(best, scores, confidence, False, reason)


def softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax over the last axis at ``temperature`` (smaller = sharper)."""
    scaled = values / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True))


__all__ = ["Classification", "Classifier", "softmax"]
