"""Embedding ("neural") routing: nearest centroid plus k-nearest examples in MiniLM space.

Each expert is represented by the embeddings of its example prompts and its description. A prompt's
score for an expert is the mean of its cosine similarity to the expert's centroid and to its k most
similar examples (the centroid is robust with few examples, kNN follows multi-modal experts). Scores
become probabilities through a softmax whose temperature is calibrated on the examples themselves
(leave-one-out negative log-likelihood), so a confidence of 0.8 means roughly what it says.
"""

from __future__ import annotations

import numpy as np

from largeforge.routing.classifiers.base import Classifier, softmax
from largeforge.routing.config import ExpertConfig

DEFAULT_TEMPERATURE = 0.05
_TEMPERATURES = np.geomspace(0.005, 0.5, 40)


class EmbeddingClassifier(Classifier):
    kind = "embedding"
    needs_embedding = True

    def __init__(
        self,
        experts: list[ExpertConfig],
        vectors: dict[str, np.ndarray],
        *,
        threshold: float,
        abstain_to: str,
        neighbours: int = 5,
    ) -> None:
        """
        Args:
            vectors: unit embeddings of each expert's examples (description included), shape ``(n_e, d)``;
                experts without any are never chosen by this classifier.
        """
        super().__init__([e.name for e in experts], threshold=threshold, abstain_to=abstain_to)
        self._names = [e.name for e in experts if len(vectors.get(e.name, ())) > 0]
        self._examples = [vectors[name] for name in self._names]
        self._centroids = np.stack([_unit(v.mean(axis=0)) for v in self._examples])
        self._neighbours = neighbours
        self.temperature = self._calibrate()

    def raw_scores(self, vector: np.ndarray) -> np.ndarray:
        """Similarity score per expert (in ``self._names`` order), shape ``(n_experts,)``."""
        centroid = self._centroids @ vector
        knn = np.array([np.sort(ex @ vector)[-self._neighbours :].mean() for ex in self._examples])
        return np.asarray((centroid + knn) / 2)

    def probabilities(self, text: str, vector: np.ndarray | None) -> tuple[dict[str, float], str]:
        if vector is None:
            raise ValueError("the embedding classifier needs the prompt's embedding")
        probabilities = softmax(self.raw_scores(vector), self.temperature)
        scores = {name: 0.0 for name in self.experts}
        scores.update({name: float(p) for name, p in zip(self._names, probabilities, strict=True)})
        return scores, "nearest examples"

    def _calibrate(self) -> float:
        """Leave-one-out temperature: each example scored against the others, NLL minimised on a grid."""
        rows, labels = [], []
        for index, examples in enumerate(self._examples):
            if len(examples) < 2:
                continue  # an expert with one example has nothing to leave out
            for held in range(len(examples)):
                rest = np.delete(examples, held, axis=0)
                saved = self._examples[index], self._centroids[index].copy()
                self._examples[index], self._centroids[index] = rest, _unit(rest.mean(axis=0))
                rows.append(self.raw_scores(examples[held]))
                self._examples[index], self._centroids[index] = saved
                labels.append(index)
        if len(set(labels)) < 2:
            return DEFAULT_TEMPERATURE
        matrix, target = np.stack(rows), np.array(labels)
        losses = [
            -np.log(softmax(matrix, t)[np.arange(len(target)), target] + 1e-12).mean() for t in _TEMPERATURES
        ]
        return float(_TEMPERATURES[int(np.argmin(losses))])


def _unit(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector / max(float(np.linalg.norm(vector)), 1e-12))


def example_texts(expert: ExpertConfig) -> list[str]:
    """What represents an expert in embedding space: its examples, and its description if it has one."""
    return [*expert.examples, *([expert.description] if expert.description else [])]


__all__ = ["DEFAULT_TEMPERATURE", "EmbeddingClassifier", "example_texts"]
