from __future__ import annotations

import json
from pathlib import Path

import pytest

from largeforge.data.versions import DatasetStore, canonical_jsonl
from largeforge.errors import Conflict, InvalidInput, NotFound

ROWS = [{"text": "alpha"}, {"text": "beta"}]
SOURCE = {"path": "/tmp/x.jsonl"}


def add(store: DatasetStore, rows: list[dict], name: str = "demo", kind: str = "text"):  # type: ignore[no-untyped-def]
    return store.add(rows, name=name, kind=kind, format=kind, source=SOURCE)


def test_same_content_gives_same_id_and_is_stored_once(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    first = add(store, ROWS)
    again = add(store, [dict(r) for r in ROWS], name="other-name")
    assert first.created and not again.created
    assert first.version.id == again.version.id
    assert again.version.names == ["demo", "other-name"]
    assert len(list((tmp_path / "blobs").iterdir())) == 1
    assert store.rows(first.version.id) == ROWS


def test_changed_content_or_kind_gives_a_new_id(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    base = add(store, ROWS).version.id
    assert add(store, [{"text": "alpha"}, {"text": "beta!"}]).version.id != base
    assert add(store, [{"text": "beta"}, {"text": "alpha"}]).version.id != base  # order matters
    assert add(store, ROWS, kind="pretrain-text").version.id != base


def test_key_order_does_not_change_the_id() -> None:
    assert canonical_jsonl([{"a": 1, "b": "é"}]) == canonical_jsonl([{"b": "é", "a": 1}])
    assert canonical_jsonl([{"b": "é"}]).decode("utf-8") == '{"b":"é"}\n'


def test_lookup_by_prefix_name_and_index(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    v1 = add(store, ROWS).version
    v2 = add(store, [{"text": "gamma"}]).version
    assert store.get(v1.id[:6]).id == v1.id
    assert store.get("demo").id == v2.id
    assert store.get("demo@1").id == v1.id
    assert [v.id for v in store.list("demo")] == [v1.id, v2.id]
    with pytest.raises(NotFound, match=r"@1\.\.@2"):
        store.get("demo@3")
    with pytest.raises(NotFound, match="data list"):
        store.get("nope")


def test_ambiguous_prefix_is_a_conflict(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    version = add(store, ROWS).version
    # A second manifest sharing the first 4 hex digits (a real collision is too rare to wait for).
    twin = json.loads((tmp_path / "versions" / f"{version.id}.json").read_text())
    twin["id"] = version.id[:4] + ("0" if version.id[4] != "0" else "1") * 12
    (tmp_path / "versions" / f"{twin['id']}.json").write_text(json.dumps(twin))
    with pytest.raises(Conflict, match="give more characters"):
        store.get(version.id[:4])
    assert store.get(version.id[:5]).id == version.id


def test_bad_names_and_empty_imports_are_refused(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    with pytest.raises(InvalidInput, match="not allowed"):
        add(store, ROWS, name="../escape")
    with pytest.raises(InvalidInput, match="no valid rows"):
        add(store, [])
    assert not (tmp_path / "versions").exists()


def test_manifest_records_kind_format_count_and_columns(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    version = store.add(
        [{"prompt": "p", "answer": "a"}],
        name="p",
        kind="prompt",
        format="prompt",
        source=SOURCE,
        token_stats={"tok": {"max": 3}},
    ).version
    stored = json.loads((tmp_path / "versions" / f"{version.id}.json").read_text())
    assert stored["kind"] == "prompt" and stored["row_count"] == 1
    assert stored["columns"] == ["answer", "prompt"]
    assert stored["token_stats"] == {"tok": {"max": 3}}
    assert stored["sha256"].startswith(version.id)
