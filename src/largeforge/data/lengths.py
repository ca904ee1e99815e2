"""How long a normalised row is, in tokens, for a given tokenizer.

One definition shared by validation (over-long rows), dataset statistics and preview: a conversation
is measured as the chat template renders it, a preference or KTO row as prompt + the longer answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _render_ids(tokenizer: Any, value: Any) -> list[int]:
    if isinstance(value, list):
        encoded = tokenizer.apply_chat_template(value, tokenize=True, return_dict=True)
        return list(encoded["input_ids"])
    return list(tokenizer(str(value), add_special_tokens=False)["input_ids"])


def row_token_count(row: dict[str, Any], kind: str, tokenizer: Any) -> int:
    """Tokens the row occupies when a trainer sees it (the longest of its sequences)."""
    if kind == "text":
        return len(_render_ids(tokenizer, row["text"]))
    if kind == "conversation":
        return len(_render_ids(tokenizer, row["messages"]))
    if kind == "prompt":
        return len(_render_ids(tokenizer, row["prompt"]))
    answers = [row["chosen"], row["rejected"]] if kind == "preference" else [row["completion"]]
    prompt = row["prompt"]
    if isinstance(prompt, list):
        return max(len(_render_ids(tokenizer, prompt + answer)) for answer in answers)
    return len(_render_ids(tokenizer, prompt)) + max(len(_render_ids(tokenizer, a)) for a in answers)


def length_statistics(lengths: Sequence[int]) -> dict[str, float]:
    """min / mean / p50 / p95 / max / total of a list of lengths (empty list → zeros)."""
    if not lengths:
        return {"min": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0, "total": 0}
    ordered = sorted(lengths)

    def percentile(q: float) -> int:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "min": ordered[0],
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": percentile(0.50),
        "p95": percentile(0.95),
        "max": ordered[-1],
        "total": sum(ordered),
    }


__all__ = ["length_statistics", "row_token_count"]
