"""Tables of this domain (filled in by its owner)."""

from __future__ import annotations
