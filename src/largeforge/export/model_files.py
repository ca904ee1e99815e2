"""Reading model directories safely and writing export outputs atomically.

Owns the rules every exporter shares: weights are read from safetensors only (a pickle can run
code when loaded, so a directory with only ``*.bin``/``*.pt`` weights is refused, never opened),
outputs are built in a temporary sibling and renamed into place (a crash leaves the old output or
none, never half of one), and the provenance file ``export.json`` has one shape. It does not
load models into transformers; each exporter does that the way it needs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from largeforge.errors import Conflict, InvalidInput, NotFound

EXPORT_METADATA_FILE = "export.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def require_model_dir(path: str | Path, *, what: str = "model") -> Path:
    """Return ``path`` resolved, after checking it is a directory with safetensors weights.

    Raises:
        NotFound: nothing at ``path``.
        InvalidInput: not a directory, no ``config.json``, or only pickle weights.
    """
    directory = Path(path).expanduser().resolve()
    if not directory.exists():
        raise NotFound(f"{what} directory {directory} does not exist")
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is a file; give the {what} directory (with config.json)")
    if not (directory / "config.json").exists():
        raise InvalidInput(f"{directory} has no config.json; give a Hugging Face {what} directory")
    refuse_pickle_only(directory, pattern="*.safetensors", what=what)
    return directory


def refuse_pickle_only(directory: Path, *, pattern: str, what: str) -> None:
    """Raise unless ``directory`` holds a file matching ``pattern`` (the safetensors weights)."""
    if any(directory.glob(pattern)):
        return
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise InvalidInput(
            f"{directory} only has pickle weights ({', '.join(pickles)}); LargeForge never loads pickles "
            "because they can run code. Convert them to safetensors where you trust the source, e.g. "
            "`AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out)` with transformers"
        )
    raise InvalidInput(
        f"{directory} has no {pattern} weights; give a {what} directory saved with safetensors"
    )


def safetensors_files(directory: Path) -> list[Path]:
    """The weight files of a model directory, in shard order."""
    return sorted(p for p in directory.glob("*.safetensors") if not p.name.startswith("."))


def read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInput(f"{path} must hold a JSON object")
    return document


def read_gguf_pre_tokenizer(directory: Path) -> str | None:
    """The llama.cpp pre-tokenizer name recorded by ``model init`` (largeforge.json) or an export."""
    from largeforge.scratch.build import METADATA_FILE

    for name in (METADATA_FILE, EXPORT_METADATA_FILE):
        path = directory / name
        if path.exists():
            value = read_json(path).get("gguf_pre_tokenizer")
            if isinstance(value, str) and value:
                return value
    return None


def export_metadata(kind: str, **fields: Any) -> dict[str, Any]:
    """The ``export.json`` document: what was made, from what, when, and with which check."""
    from largeforge import __version__

    return {
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "largeforge_version": __version__,
        **fields,
    }


def check_output_target(target: Path, *, overwrite: bool) -> None:
    """Refuse to replace existing files unless asked; make the parent directory."""
    if target.exists() and not overwrite and (target.is_file() or any(target.iterdir())):
        raise Conflict(f"{target} already exists; pass overwrite=True (--overwrite) or choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def staged_directory(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target``; on success it replaces ``target``.

    On an exception the staging directory is removed and ``target`` is untouched.
    """
    check_output_target(target, overwrite=overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


@contextmanager
def staged_file(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path of ``target``; on success it is renamed over ``target``."""
    check_output_target(target, overwrite=overwrite)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


__all__ = [
    "EXPORT_METADATA_FILE",
    "check_output_target",
    "export_metadata",
    "read_gguf_pre_tokenizer",
    "read_json",
    "refuse_pickle_only",
    "require_model_dir",
    "safetensors_files",
    "staged_directory",
    "staged_file",
]
