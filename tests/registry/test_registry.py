"""The registry on SQLite and PostgreSQL: versions, content hashes, references, aliases, lineage, deletes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.registry.service import open_registry, version_to_dict
from largeforge.registry.storage import ArtifactStore


def make_model_dir(path: Path, payload: bytes = b"weights-1") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.safetensors").write_bytes(payload)
    (path / "config.json").write_text('{"model_type": "qwen2"}')
    (path / "chat_template.jinja").write_text("{{ messages }}")
    return path


def make_adapter_dir(path: Path, payload: bytes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_model.safetensors").write_bytes(payload)
    (path / "adapter_config.json").write_text("{}")
    return path


def test_register_hashes_every_file_and_numbers_versions(database_url: str, tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "m")
    with open_registry() as registry:
        first = version_to_dict(registry.register(model, name="tiny"))
        second = version_to_dict(registry.register(model, name="tiny"))
    assert (first["version"], second["version"]) == (1, 2)
    assert first["files"]["model.safetensors"]["sha256"] == hashlib.sha256(b"weights-1").hexdigest()
    assert first["digest"] == second["digest"] and first["kind"] == "full"
    assert first["chat_template_hash"] == hashlib.sha256(b"{{ messages }}").hexdigest()
    blobs = list((tmp_path / "lf-home" / "artifacts" / "blobs").rglob("*"))
    assert len([b for b in blobs if b.is_file()]) == 3, "identical files must be stored once"


def test_references_resolve_by_latest_number_and_alias(database_url: str, tmp_path: Path) -> None:
    with open_registry() as registry:
        registry.register(make_model_dir(tmp_path / "a", b"one"), name="tiny")
        registry.register(make_model_dir(tmp_path / "b", b"two"), name="tiny")
        registry.set_alias("tiny", "production", "1")
        assert registry.get("tiny").version == 2
        assert registry.get("tiny:1").version == 1
        assert registry.get("tiny@production").version == 1
        with pytest.raises(NotFound, match="no alias @staging"):
            registry.get("tiny@staging")
        with pytest.raises(NotFound, match="tiny:9 does not exist"):
            registry.get("tiny:9")
        with pytest.raises(NotFound, match="no registered model 'huge'"):
            registry.get("huge")


def test_alias_moves_keep_their_history(database_url: str, tmp_path: Path) -> None:
    with open_registry() as registry:
        for payload in (b"one", b"two", b"three"):
            registry.register(make_model_dir(tmp_path / payload.decode(), payload), name="tiny")
        registry.set_alias("tiny", "production", "1", reason="first release")
        registry.set_alias("tiny", "production", "3", reason="gate passed")
        registry.set_alias("tiny", "candidate", "2")
        registry.unset_alias("tiny", "candidate")
    with open_registry() as registry:
        history = [(e.alias, e.from_version, e.to_version, e.reason) for e in registry.alias_history("tiny")]
        assert history == [
            ("production", None, 1, "first release"),
            ("production", 1, 3, "gate passed"),
            ("candidate", None, 2, None),
            ("candidate", 2, None, None),
        ]
        assert registry.get("tiny@production").version == 3
        with pytest.raises(InvalidInput, match="alias"):
            registry.set_alias("tiny", "9bad", "1")


def test_lineage_from_dataset_to_quantized(database_url: str, tmp_path: Path) -> None:
    with open_registry() as registry:
        registry.register(make_model_dir(tmp_path / "base", b"base"), name="tiny", kind="base")
        registry.register(
            make_adapter_dir(tmp_path / "adapter", b"lora"),
            name="tiny-sft",
            parents=[("tiny:1", "base")],
            inputs=[("dataset", "a8afe7c1a41cbf60"), ("run", "/runs/sft-1")],
        )
        registry.register(
            make_model_dir(tmp_path / "merged", b"merged"),
            name="tiny-merged",
            kind="merged",
            parents=[("tiny-sft:1", "adapter")],
        )
        registry.register(
            make_model_dir(tmp_path / "q", b"q8"),
            name="tiny-q8",
            kind="quantized",
            parents=[("tiny-merged:1", "quantized-from")],
        )
        lineage = registry.lineage("tiny-q8")
        merged = lineage["parents"][0]
        adapter = merged["parents"][0]
        assert (merged["ref"], adapter["ref"], adapter["parents"][0]["ref"]) == (
            "tiny-merged:1",
            "tiny-sft:1",
            "tiny:1",
        )
        assert (
            adapter["kind"] == "adapter"
            and {"kind": "dataset", "ref": "a8afe7c1a41cbf60"} in adapter["inputs"]
        )
        assert registry.lineage("tiny:1")["children"] == [{"ref": "tiny-sft:1", "relation": "base"}]


def test_delete_is_refused_while_something_depends_on_the_version(database_url: str, tmp_path: Path) -> None:
    with open_registry() as registry:
        registry.register(make_model_dir(tmp_path / "base", b"base"), name="tiny")
        registry.register(
            make_adapter_dir(tmp_path / "ad", b"lora"), name="tiny-sft", parents=[("tiny:1", "base")]
        )
        registry.set_alias("tiny-sft", "production", "1")
        with pytest.raises(Conflict, match=r"tiny-sft:1 \(base\) depend on it"):
            registry.delete("tiny:1")
        with pytest.raises(Conflict, match="tiny-sft@production point at it"):
            registry.delete("tiny-sft:1")
        registry.unset_alias("tiny-sft", "production")
        registry.delete("tiny-sft:1")
        registry.delete("tiny:1")
        with pytest.raises(NotFound):
            registry.get("tiny:1")


def test_pickles_are_refused(database_url: str, tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "m")
    (model / "pytorch_model.bin").write_bytes(b"pickle")
    with open_registry() as registry, pytest.raises(InvalidInput, match=r"pytorch_model\.bin"):
        registry.register(model, name="tiny")


def test_materialize_round_trip_checks_hashes(database_url: str, tmp_path: Path) -> None:
    with open_registry() as registry:
        registry.register(make_model_dir(tmp_path / "m", b"payload"), name="tiny")
        out = registry.materialize("tiny:1", tmp_path / "out")
    assert (out / "model.safetensors").read_bytes() == b"payload"


def test_fsspec_store_by_url(tmp_path: Path) -> None:
    store = ArtifactStore("memory://lf-test-store")
    manifest = store.put(make_model_dir(tmp_path / "m", b"in-memory"))
    assert store.has(manifest["model.safetensors"]["sha256"])
    out = store.materialize(manifest, tmp_path / "out")
    assert (out / "model.safetensors").read_bytes() == b"in-memory"
