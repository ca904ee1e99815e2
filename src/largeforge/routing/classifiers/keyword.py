"""Keyword routing: weighted terms and regexes per expert, on word boundaries, case-folded.

The cheapest classifier (microseconds, no model): it needs no embedding and is the baseline the
others are measured against. A prompt without any match has confidence 0 and is abstained on.
"""

from __future__ import annotations

import re

import numpy as np

from largeforge.routing.classifiers.base import Classifier
from largeforge.routing.config import ExpertConfig

SMOOTHING = 0.5  # one weight-1 match alone gives 1 / 1.5 = 0.67: enough to route, not certainty


class KeywordClassifier(Classifier):
    kind = "keyword"

    def __init__(self, experts: list[ExpertConfig], *, threshold: float, abstain_to: str) -> None:
        super().__init__([e.name for e in experts], threshold=threshold, abstain_to=abstain_to)
        self._rules: list[tuple[str, list[tuple[re.Pattern[str], float, str]]]] = []
        for expert in experts:
            rules = [
                (re.compile(rf"(?<!\w){re.escape(k.term.casefold())}(?!\w)"), k.weight, k.term)
                for k in expert.keyword_terms()
            ]
            rules += [
                (re.compile(p.regex, re.IGNORECASE), p.weight, p.regex) for p in expert.regex_patterns()
            ]
            self._rules.append((expert.name, rules))

    def has_terms(self, expert: str) -> bool:
        """Whether ``expert`` has any keyword or pattern (experts without any are catch-alls)."""
        return any(name == expert and rules for name, rules in self._rules)

    def raw_scores(self, text: str) -> tuple[dict[str, float], dict[str, list[str]]]:
        """Summed weights of matching terms per expert, and which terms matched."""
        folded = text.casefold()
        scores: dict[str, float] = {}
        matched: dict[str, list[str]] = {}
        for name, rules in self._rules:
            total = 0.0
            for pattern, weight, label in rules:
                if pattern.search(folded):
                    total += weight
                    matched.setdefault(name, []).append(label)
            scores[name] = total
        return scores, matched

    def probabilities(self, text: str, vector: np.ndarray | None) -> tuple[dict[str, float], str]:
        scores, matched = self.raw_scores(text)
        total = sum(scores.values())
        if total == 0:
            return {name: 0.0 for name in scores}, "no keyword matched"
        probabilities = {name: value / (total + SMOOTHING) for name, value in scores.items()}
        best = max(probabilities, key=lambda name: probabilities[name])
        return probabilities, "matched " + ", ".join(matched.get(best, [])[:5])


__all__ = ["KeywordClassifier"]
