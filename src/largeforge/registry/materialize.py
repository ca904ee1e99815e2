"""Registered versions as loadable directories — an adapter's as a view whose config names its
registered base's local copy, so transformers/PEFT can load it offline. Evaluation, serving and the
CLI all load registry references through here."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from largeforge.errors import InvalidInput

if TYPE_CHECKING:
    from largeforge.registry.orm import ModelVersion
    from largeforge.registry.service import RegistryService

ADAPTER_CONFIG = "adapter_config.json"
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


def materialize_version(registry: RegistryService, version: ModelVersion, cache_dir: Path) -> Path:
    """A loadable directory for ``version``; for an adapter, one whose config names a local base."""
    target = cache_dir / version.digest
    registry.store.materialize(version.manifest, target)
    if version.kind != "adapter":
        return target
    config = json.loads((target / ADAPTER_CONFIG).read_text())
    named_base = str(config.get("base_model_name_or_path") or "")
    base = next((parent for parent, relation in registry.repo.parents(version) if relation == "base"), None)
    if base is None:
        if named_base and Path(named_base).exists():
            return target
        raise InvalidInput(
            f"{version.ref} is an adapter without a registered base and its base {named_base!r} is not "
            f"here; register it with its base: `largeforge models register DIR --parent base=REF`"
        )
    base_dir = materialize_version(registry, base, cache_dir)
    has_tokenizer = (target / "tokenizer_config.json").exists()
    if named_base == str(base_dir) and has_tokenizer:
        return target
    return adapter_view(target, base_dir, cache_dir / f"{version.digest}-on-{base.digest[:16]}")


def adapter_view(adapter_dir: Path, base_dir: Path, view_dir: Path) -> Path:
    """``view_dir``: links to the adapter's files, a config naming ``base_dir``, and the base's
    tokenizer files when the adapter has none. Built under a temporary name, then renamed into place,
    so a half-built view is never loaded."""
    if (view_dir / ADAPTER_CONFIG).exists():
        return view_dir
    staging = view_dir.with_name(f".{view_dir.name}.{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        for file in adapter_dir.iterdir():
            if file.is_file() and file.name != ADAPTER_CONFIG:
                os.symlink(file.resolve(), staging / file.name)
        if not (adapter_dir / "tokenizer_config.json").exists():
            for name in _TOKENIZER_FILES:
                if (base_dir / name).exists():
                    os.symlink((base_dir / name).resolve(), staging / name)
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
        config["base_model_name_or_path"] = str(base_dir)
        (staging / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2))
        try:
            os.rename(staging, view_dir)
        except OSError:
            if not (view_dir / ADAPTER_CONFIG).exists():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return view_dir


__all__ = ["ADAPTER_CONFIG", "adapter_view", "materialize_version"]
