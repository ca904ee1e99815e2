"""Reading a user's YAML file (recipe, suite, router config) with the same two errors everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from largeforge.errors import InvalidInput, LargeForgeError


def read_yaml_file(path: str | Path, missing: LargeForgeError) -> tuple[Any, Path]:
    """The parsed document and the resolved path.

    Raises:
        ``missing``: there is no such file (each caller says what the file is and where to find one).
        InvalidInput: the file is not valid YAML.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise missing
    try:
        return yaml.safe_load(source.read_text(encoding="utf-8")), source
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} is not valid YAML: {exc}") from exc


__all__ = ["read_yaml_file"]
