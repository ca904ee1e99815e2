"""Incremental detokenisation with stop strings, shared by the engines that decode token by token."""

from __future__ import annotations

from typing import Any


class TextStream:
    """Turns a growing list of token ids into text deltas.

    Text that could still turn into a stop string is held back, so a stream never shows part of one;
    an incomplete UTF-8 character (decoded as U+FFFD) is held back too.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...]) -> None:
        self._tokenizer, self._stop = tokenizer, stop
        self._ids: list[int] = []
        self._sent = 0

    def _text(self) -> str:
        return str(self._tokenizer.decode(self._ids, skip_special_tokens=True))

    def push(self, token: int) -> tuple[str, bool]:
        """Add one token; returns the text that is now safe to show and whether a stop string ended it."""
        self._ids.append(token)
        text = self._text()
        hits = [text.find(s, max(0, self._sent - len(s))) for s in self._stop]
        found = [h for h in hits if h >= 0]
        if found:
            cut = min(found)
            delta = text[self._sent : cut]
            self._sent = cut
            return delta, True
        safe = len(text)
        if text.endswith("\ufffd"):
            safe -= 1
        for s in self._stop:
            for size in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:size]):
                    safe = min(safe, len(text) - size)
                    break
        delta = text[self._sent : max(safe, self._sent)]
        self._sent = max(safe, self._sent)
        return delta, False

    def flush(self) -> str:
        """Everything not yet shown (the stream ended without a stop string)."""
        text = self._text()
        delta = text[self._sent :]
        self._sent = len(text)
        return delta


__all__ = ["TextStream"]
