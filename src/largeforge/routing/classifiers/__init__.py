"""Routing classifiers behind one interface, and the registry that builds them from a config.

``CLASSIFIERS`` maps the config's ``classifier.type`` literal to a lazily importing factory; a test
asserts that its keys equal :data:`largeforge.routing.config.ClassifierType`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from largeforge.routing.classifiers.base import Classification, Classifier
from largeforge.routing.config import RouterConfig

if TYPE_CHECKING:
    from largeforge.routing.embeddings import Embedder

EmbedderFactory = Callable[[], "Embedder"]
ClassifierFactory = Callable[[RouterConfig, EmbedderFactory], Classifier]


def _keyword(config: RouterConfig, embedder: EmbedderFactory) -> Classifier:
    from largeforge.routing.classifiers.keyword import KeywordClassifier

    return KeywordClassifier(
        config.experts, threshold=config.classifier.threshold, abstain_to=config.abstain_expert
    )


def _embedding(config: RouterConfig, embedder: EmbedderFactory) -> Classifier:
    return build_embedding(config, embedder())


def build_embedding(config: RouterConfig, embedder: Embedder) -> Classifier:
    """The embedding classifier over each expert's examples and description."""
    from largeforge.routing.classifiers.embedding import EmbeddingClassifier, example_texts

    vectors = {e.name: embedder.encode(example_texts(e)) for e in config.experts if example_texts(e)}
    return EmbeddingClassifier(
        config.experts,
        vectors,
        threshold=config.classifier.threshold,
        abstain_to=config.abstain_expert,
        neighbours=config.classifier.neighbours,
    )


def _hybrid(config: RouterConfig, embedder: EmbedderFactory) -> Classifier:
    from largeforge.routing.classifiers.embedding import EmbeddingClassifier
    from largeforge.routing.classifiers.hybrid import HybridClassifier
    from largeforge.routing.classifiers.keyword import KeywordClassifier

    keyword, embedding = _keyword(config, embedder), _embedding(config, embedder)
    assert isinstance(keyword, KeywordClassifier) and isinstance(embedding, EmbeddingClassifier)
    return HybridClassifier(
        keyword,
        embedding,
        keyword_weight=config.classifier.keyword_weight,
        threshold=config.classifier.threshold,
        abstain_to=config.abstain_expert,
    )


def _learned(config: RouterConfig, embedder: EmbedderFactory) -> Classifier:
    from largeforge.routing.classifiers.learned import LearnedClassifier
    from largeforge.routing.learning import resolve_artifact

    assert config.classifier.artifact is not None  # the config validator requires it for learned
    return LearnedClassifier(
        resolve_artifact(config.classifier.artifact),
        [e.name for e in config.experts],
        threshold=config.classifier.threshold,
        abstain_to=config.abstain_expert,
    )


CLASSIFIERS: dict[str, ClassifierFactory] = {
    "keyword": _keyword,
    "embedding": _embedding,
    "hybrid": _hybrid,
    "learned": _learned,
}


def build_classifier(config: RouterConfig, embedder: EmbedderFactory | None = None) -> Classifier:
    """The classifier ``config.classifier.type`` names; ``embedder`` defaults to the process's shared one."""
    if embedder is None:
        from largeforge.routing.embeddings import load_embedder

        embedder = load_embedder
    return CLASSIFIERS[config.classifier.type](config, embedder)


__all__ = ["CLASSIFIERS", "Classification", "Classifier", "build_classifier", "build_embedding"]
