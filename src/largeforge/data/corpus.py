"""Turn a file into plain texts for tokenizer training.

A ``.txt`` file gives one text per non-blank line; any dataset file the loaders read gives every
string found in its rows (message contents included), so a tokenizer can be trained on the very
data the model will see.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound


def iter_corpus_texts(path: str | Path) -> Iterator[str]:
    """Yield the texts of ``path``.

    Raises:
        NotFound: the file does not exist. InvalidInput: it holds no text.
    """
    from largeforge.data.loaders import load_file

    source = Path(path).expanduser()
    if not source.exists():
        raise NotFound(f"corpus {source} does not exist")
    found = 0
    if source.suffix in {".txt", ".text", ".md"}:
        try:
            text = source.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"corpus {source} is not UTF-8 ({exc}); re-encode it as UTF-8") from exc
        for line in text.splitlines():
            if line.strip():
                found += 1
                yield line
    else:
        for row in load_file(source).rows:
            for text in _strings(row.data):
                found += 1
                yield text
    if not found:
        raise InvalidInput(f"corpus {source} holds no text")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


__all__ = ["iter_corpus_texts"]
