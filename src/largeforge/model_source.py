"""Where a model comes from: a local Hugging Face directory, or a hub id where a hub is reachable.

Every place that asks for a model (preview, training, serving …) resolves it here, so a missing path
gets the same clear error everywhere and library exceptions are translated once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_model_source(ref: str | Path) -> str:
    """Return a string transformers can load: an absolute directory path or a hub id.

    Raises:
        NotFound: ``ref`` looks like a path but nothing is there.
        InvalidInput: the directory has no ``config.json`` or ``tokenizer_config.json``.
    """
    text = str(ref)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InvalidInput(f"{path} is a file; a model is a directory with config.json and a tokenizer")
        if not (path / "config.json").exists() and not (path / "tokenizer_config.json").exists():
            raise InvalidInput(
                f"{path} holds neither config.json nor tokenizer_config.json; "
                "point at a Hugging Face model directory (e.g. one made by `largeforge model init`)"
            )
        return str(path.resolve())
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        return text
    raise NotFound(
        f"model {text!r} not found: no such directory, and it is not a hub id of the form owner/name; "
        "create one with `largeforge model init DIR`"
    )


def load_tokenizer(ref: str | Path) -> Any:
    """Load a tokenizer with transformers, translating its errors into ours."""
    from transformers import AutoTokenizer

    source = resolve_model_source(ref)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load a tokenizer from {source}: {exc}") from exc


__all__ = ["load_tokenizer", "resolve_model_source"]
