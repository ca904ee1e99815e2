"""Dataset formats: an explicit registry from format name to its spec.

Each format normalises rows to the shape of its kind (``text``, ``conversation``, ``preference``,
``kto``, ``prompt``) and reports every problem it finds in a row.
"""

from __future__ import annotations

from collections.abc import Sequence

from largeforge.data.formats import conversation, kto, preference, prompt, text
from largeforge.data.formats._spec import FieldProblem, FormatName, FormatSpec, Kind, NormalizeResult
from largeforge.data.records import RawRow
from largeforge.errors import InvalidInput

FORMATS: dict[str, FormatSpec] = {
    "text": text.SPEC,
    "messages": conversation.MESSAGES,
    "sharegpt": conversation.SHAREGPT,
    "alpaca": conversation.ALPACA,
    "preference": preference.SPEC,
    "kto": kto.SPEC,
    "prompt": prompt.SPEC,
}

# Most specific first: a row with prompt+chosen+rejected also has "prompt".
_DETECTION_ORDER: tuple[tuple[str, frozenset[str]], ...] = (
    ("messages", frozenset({"messages"})),
    ("sharegpt", frozenset({"conversations"})),
    ("alpaca", frozenset({"instruction", "output"})),
    ("preference", frozenset({"chosen", "rejected"})),
    ("kto", frozenset({"completion", "label"})),
    ("text", frozenset({"text"})),
    ("prompt", frozenset({"prompt"})),
)
_SAMPLE = 20


def get_format(name: str) -> FormatSpec:
    try:
        return FORMATS[name]
    except KeyError:
        raise InvalidInput(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def detect_format(rows: Sequence[RawRow]) -> str:
    """Pick the format from the columns of the first rows (the most common match wins).

    Raises:
        InvalidInput: no format matches; the message lists what each format expects.
    """
    votes: dict[str, int] = {}
    columns: set[str] = set()
    for row in rows[:_SAMPLE]:
        # A null value (an empty CSV cell, a sparse Parquet column) is an absent column.
        present = {column for column, value in row.data.items() if value is not None}
        columns |= present
        for name, needed in _DETECTION_ORDER:
            if needed <= present:
                votes[name] = votes.get(name, 0) + 1
                break
    if not votes:
        expected = "; ".join(f"{name}: {', '.join(spec.columns)}" for name, spec in FORMATS.items())
        raise InvalidInput(
            f"cannot tell the format from the columns {', '.join(sorted(columns)) or '(none)'}; "
            f"expected one of — {expected}. Rename the columns or pass --format"
        )
    return max(votes, key=lambda name: votes[name])


__all__ = [
    "FORMATS",
    "FieldProblem",
    "FormatName",
    "FormatSpec",
    "Kind",
    "NormalizeResult",
    "detect_format",
    "get_format",
]
