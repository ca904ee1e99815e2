"""A built-in text corpus for training a tokenizer when the user gives none.

It mixes plain English sentences, numbers, JSON and chat-formatted lines so that the resulting
vocabulary covers what our examples and tests feed a model. For a real task, train the tokenizer on
the task's own data instead (``largeforge model init --corpus FILE``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

_SUBJECTS = ["the model", "a user", "the teacher", "our team", "the router", "a student", "the server"]
_VERBS = ["reads", "writes", "learns", "answers", "checks", "routes", "trains on", "evaluates"]
_OBJECTS = ["the data", "a question", "the answer", "a long document", "the json", "many prompts", "numbers"]
_WORDS = [
    "name",
    "age",
    "city",
    "country",
    "email",
    "date",
    "time",
    "price",
    "total",
    "count",
    "list",
    "item",
    "value",
    "key",
    "model",
    "data",
    "train",
    "test",
    "question",
    "answer",
    "user",
    "assistant",
    "system",
    "hello",
    "thanks",
    "please",
    "yes",
    "no",
    "true",
    "false",
    "null",
    "one",
    "two",
    "three",
]


def default_corpus(lines: int = 4000, seed: int = 0) -> Iterator[str]:
    """Yield ``lines`` deterministic lines of mixed text for tokenizer training."""
    rng = random.Random(seed)
    for index in range(lines):
        shape = index % 4
        if shape == 0:
            yield f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}."
        elif shape == 1:
            record = {rng.choice(_WORDS): rng.choice([rng.randint(0, 999), rng.choice(_WORDS), True, None])}
            yield json.dumps(record)
        elif shape == 2:
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
            yield f"<|im_start|>user\n{words}?<|im_end|>\n<|im_start|>assistant\n{words}.<|im_end|>"
        else:
            yield f"{rng.randint(0, 10_000)} + {rng.randint(0, 10_000)} = {rng.randint(0, 20_000)}"


__all__ = ["default_corpus"]
