"""Program-generated tasks with known answers, for the quickstart, tests and benchmarks.

The extraction task turns a sentence about a person into ``{"name", "age", "city"}`` JSON. A model
of about a million parameters learns it on a laptop CPU in minutes, and a program can check every
answer exactly, so later stages (evaluation, gates) can show a real gain over the untrained base.
"""

from __future__ import annotations

import json
import random
from typing import Any

FIRST_NAMES = [
    "Maria",
    "Ana",
    "Lucas",
    "Sofia",
    "Omar",
    "Lena",
    "Pedro",
    "Yuki",
    "Amir",
    "Clara",
    "Noah",
    "Emma",
    "Ivan",
    "Zoe",
    "Ravi",
    "Nina",
    "Tom",
    "Lea",
    "Hugo",
    "Mia",
    "Kofi",
    "Aisha",
    "Paul",
    "Ines",
    "Leo",
    "Sara",
    "Jonas",
    "Eva",
    "Marco",
    "Julia",
]
LAST_NAMES = [
    "Lopez",
    "Silva",
    "Novak",
    "Tanaka",
    "Haddad",
    "Weber",
    "Rossi",
    "Kim",
    "Okafor",
    "Dubois",
    "Smith",
    "Garcia",
    "Petrov",
    "Jensen",
    "Costa",
    "Moreau",
    "Brown",
    "Ito",
    "Fischer",
    "Khan",
]
CITIES = [
    "Lisbon",
    "Paris",
    "Berlin",
    "Madrid",
    "Rome",
    "Oslo",
    "Vienna",
    "Prague",
    "Dublin",
    "Athens",
    "Tokyo",
    "Lima",
    "Cairo",
    "Seoul",
    "Quito",
    "Nairobi",
    "Boston",
    "Denver",
    "Austin",
    "Porto",
]
TEMPLATES = (
    "{name}, {age}, lives in {city}.",
    "{name} is {age} years old and lives in {city}.",
    "Meet {name} from {city}, aged {age}.",
    "{name} ({age}) moved to {city}.",
    "In {city} lives {name}, who is {age}.",
    "{name}, age {age}, city: {city}.",
)
INSTRUCTION = "Extract name, age and city as JSON."


def extraction_answer(name: str, age: int, city: str) -> str:
    """The exact JSON string a correct model produces (key order and spacing fixed)."""
    return json.dumps({"name": name, "age": age, "city": city})


def make_extraction_examples(count: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` deterministic examples: ``{"sentence", "answer", "fields"}``."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        age, city = rng.randint(18, 90), rng.choice(CITIES)
        sentence = rng.choice(TEMPLATES).format(name=name, age=age, city=city)
        examples.append(
            {
                "sentence": sentence,
                "answer": extraction_answer(name, age, city),
                "fields": {"name": name, "age": age, "city": city},
            }
        )
    return examples


def as_conversation(example: dict[str, Any]) -> dict[str, Any]:
    """A supervised row: the user gives the sentence, the assistant answers with the JSON."""
    return {
        "messages": [
            {"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": example["sentence"]},
            {"role": "assistant", "content": example["answer"]},
        ]
    }


def as_prompt(example: dict[str, Any]) -> dict[str, Any]:
    """A prompt-only row with the expected answer, for evaluation and reward functions."""
    return {
        "prompt": [
            {"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": example["sentence"]},
        ],
        "answer": example["answer"],
    }


def corrupt_answer(example: dict[str, Any], seed: int = 0) -> str:
    """A plausible wrong answer: one field changed, so a preference pair differs in content, not format."""
    rng = random.Random(f"{seed}:{example['sentence']}")
    fields = dict(example["fields"])
    choice = rng.choice(["age", "city", "name"])
    if choice == "age":
        fields["age"] = fields["age"] + rng.choice([-3, -1, 1, 7])
    elif choice == "city":
        fields["city"] = rng.choice([c for c in CITIES if c != fields["city"]])
    else:
        fields["name"] = fields["name"].split()[0]
    return extraction_answer(fields["name"], fields["age"], fields["city"])


def as_preference(example: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """A DPO/ORPO pair: the exact JSON is chosen over a version with one wrong field."""
    prompt = as_prompt(example)["prompt"]
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": example["answer"]}],
        "rejected": [{"role": "assistant", "content": corrupt_answer(example, seed)}],
    }


def as_kto(example: dict[str, Any], index: int) -> dict[str, Any]:
    """A KTO row: even rows carry the right answer (desirable), odd rows a wrong one."""
    good = index % 2 == 0
    answer = example["answer"] if good else corrupt_answer(example, index)
    return {
        "prompt": as_prompt(example)["prompt"],
        "completion": [{"role": "assistant", "content": answer}],
        "label": good,
    }


def as_text(example: dict[str, Any]) -> dict[str, Any]:
    """A pretraining document: the sentence followed by its JSON."""
    return {"text": f"{example['sentence']}\n{example['answer']}"}


__all__ = [
    "INSTRUCTION",
    "as_conversation",
    "as_kto",
    "as_preference",
    "as_prompt",
    "as_text",
    "corrupt_answer",
    "extraction_answer",
    "make_extraction_examples",
]
