"""The row type loaders produce and validation consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawRow:
    """One record as read from a file, before normalisation.

    ``number`` is the 1-based record index; ``line`` the 1-based physical line where the format has
    lines (JSONL, CSV counting its header), else None.
    """

    number: int
    line: int | None
    data: dict[str, Any]


__all__ = ["RawRow"]
