"""Version pins: a pinned version cannot be deleted until every holder lets go."""

from __future__ import annotations

from pathlib import Path

import pytest

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.registry.service import open_registry


def make_model_dir(path: Path, payload: bytes = b"weights") -> Path:
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(payload)
    (path / "config.json").write_text('{"model_type": "qwen2"}')
    return path


def test_pinned_version_refuses_delete_until_unpinned(database_url: str, tmp_path: Path) -> None:
    with open_registry() as registry:
        registry.register(make_model_dir(tmp_path / "a", b"one"), name="tiny")
        registry.register(make_model_dir(tmp_path / "b", b"two"), name="tiny")
        registry.set_alias("tiny", "production", "1")
        # Pinning through an alias pins the version it points at now, not the alias.
        registry.pin("tiny@production", "deployment:d1")
        registry.pin("tiny:1", "deployment:d1")  # idempotent per holder
        registry.pin("tiny:1", "deployment:d2")
        registry.unset_alias("tiny", "production")
    with open_registry() as registry:
        assert registry.pins("tiny:1") == ["deployment:d1", "deployment:d2"]
        assert registry.pins("tiny:2") == []
        deployed_by_both = "tiny:1 cannot be deleted: it is deployed by deployment:d1, deployment:d2; stop"
        with pytest.raises(Conflict, match=deployed_by_both):
            registry.delete("tiny:1")
        assert registry.unpin("tiny:1", "deployment:d1") is True
        assert registry.unpin("tiny:1", "deployment:d1") is False
        with pytest.raises(Conflict, match="deployed by deployment:d2;"):
            registry.delete("tiny:1")
        registry.unpin("tiny:1", "deployment:d2")
        registry.delete("tiny:1")
    with open_registry() as registry:
        with pytest.raises(NotFound):
            registry.get("tiny:1")
        registry.delete("tiny:2")  # never pinned


def test_pin_needs_a_version_and_a_holder(database_url: str, tmp_path: Path) -> None:
    with open_registry() as registry:
        registry.register(make_model_dir(tmp_path / "a"), name="tiny")
        with pytest.raises(NotFound, match="tiny:7 does not exist"):
            registry.pin("tiny:7", "deployment:x")
        with pytest.raises(InvalidInput, match="holder"):
            registry.pin("tiny:1", "")
