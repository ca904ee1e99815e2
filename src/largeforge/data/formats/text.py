"""Pretraining text: one ``text`` column."""

from __future__ import annotations

from typing import Any

from largeforge.data.formats._spec import FormatSpec, NormalizeResult, missing_columns, non_empty_text


def normalize(data: dict[str, Any]) -> NormalizeResult:
    problems = missing_columns(data, ("text",), "text") or non_empty_text(data["text"], "text")
    extra = sorted(set(data) - {"text"})
    return NormalizeResult(None if problems else {"text": data["text"]}, problems, extra)


SPEC = FormatSpec("text", "text", "raw text for pretraining", ("text",), normalize)
