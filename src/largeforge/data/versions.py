"""Content-addressed dataset versions.

Importing stores the normalised rows once, as canonical JSON lines under the sha256 of their bytes,
plus a manifest (format, kind, row count, token-length statistics, source, created time). The version
id is a prefix of that hash, so importing the same content twice gives the same id, whatever the file
was called or which name it was imported under. Names are labels that point at versions, newest last.

Layout under ``<home>/datasets``::

    blobs/<sha256>.jsonl         the rows, one canonical JSON object per line
    versions/<id>.json           the manifest
    names/<name>.json            {"name": ..., "versions": [id, ...]}

Every file is written to a temporary name and renamed into place, so a crash never leaves a
half-written version behind. This store knows nothing about databases; the registry of a later
layer may index it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from largeforge.atomic import write_bytes_atomic
from largeforge.errors import Conflict, InvalidInput, NotFound

ID_LENGTH = 16
MIN_PREFIX = 4
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class DatasetVersion:
    """The manifest of one stored dataset version."""

    id: str
    sha256: str
    kind: str
    format: str
    row_count: int
    names: list[str]
    source: dict[str, Any]
    created_at: str
    columns: list[str] = field(default_factory=list)
    token_stats: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImportResult:
    version: DatasetVersion
    created: bool  # False when the same content was already stored


def canonical_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    """The exact bytes that are hashed: sorted keys, no spaces, UTF-8, one row per line."""
    lines = (json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for row in rows)
    return ("\n".join(lines) + "\n").encode("utf-8")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"dataset name {name!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class DatasetStore:
    """Dataset versions on a local directory (``Settings.datasets_dir`` by default)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def _blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def _versions(self) -> Path:
        return self.root / "versions"

    @property
    def _names(self) -> Path:
        return self.root / "names"

    def add(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        name: str,
        kind: str,
        format: str,
        source: dict[str, Any],
        token_stats: dict[str, dict[str, float]] | None = None,
    ) -> ImportResult:
        """Store normalised ``rows`` under ``name``; a no-op apart from naming if the content exists.

        Raises:
            InvalidInput: bad name, or no rows.
        """
        check_name(name)
        if not rows:
            raise InvalidInput("there are no valid rows to import; fix the file and import again")
        blob = canonical_jsonl(rows)
        sha = hashlib.sha256(blob + kind.encode()).hexdigest()
        version_id = sha[:ID_LENGTH]
        existing = self._read_manifest(version_id)
        created = existing is None
        if existing is None:
            blob_path = self._blobs / f"{sha}.jsonl"
            if not blob_path.exists():
                write_bytes_atomic(blob_path, blob)
            columns = sorted({key for row in rows for key in row})
            version = DatasetVersion(
                id=version_id,
                sha256=sha,
                kind=kind,
                format=format,
                row_count=len(rows),
                names=[name],
                source=source,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                columns=columns,
                token_stats=dict(token_stats or {}),
            )
        else:
            version = existing
            if name not in version.names:
                version.names.append(name)
            version.token_stats.update(token_stats or {})
        self._write_manifest(version)
        self._point_name(name, version_id)
        return ImportResult(version=version, created=created)

    def get(self, ref: str) -> DatasetVersion:
        """Find a version by id, unique id prefix, ``name`` (its newest version) or ``name@N`` (1-based).

        Raises:
            NotFound: nothing matches. Conflict: a prefix matches several versions.
        """
        ref = ref.strip()
        name, _, index = ref.partition("@")
        names_file = self._names / f"{name}.json"
        if _NAME.match(name) and names_file.exists():
            ids = json.loads(names_file.read_text())["versions"]
            if not index:
                return self._manifest_or_raise(ids[-1])
            if not index.isdigit() or not 1 <= int(index) <= len(ids):
                raise NotFound(f"dataset {name!r} has versions @1..@{len(ids)}; {ref!r} is not one of them")
            return self._manifest_or_raise(ids[int(index) - 1])
        if len(ref) >= MIN_PREFIX and re.fullmatch(r"[0-9a-f]+", ref):
            matches = sorted(p.stem for p in self._versions.glob(f"{ref}*.json"))
            if len(matches) == 1:
                return self._manifest_or_raise(matches[0])
            if len(matches) > 1:
                raise Conflict(
                    f"{ref!r} matches {len(matches)} versions ({', '.join(matches[:5])}); give more characters"
                )
        raise NotFound(
            f"no dataset version or name {ref!r}; run `largeforge data list` to see what is stored"
        )

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        """All versions, oldest first (or those of one name, in the order they were imported)."""
        if name is not None:
            names_file = self._names / f"{check_name(name)}.json"
            if not names_file.exists():
                raise NotFound(f"no dataset named {name!r}; run `largeforge data list` to see the names")
            return [self._manifest_or_raise(i) for i in json.loads(names_file.read_text())["versions"]]
        manifests = [self._manifest_or_raise(p.stem) for p in self._versions.glob("*.json")]
        return sorted(manifests, key=lambda v: (v.created_at, v.id))

    def iter_rows(self, ref: str) -> Iterator[dict[str, Any]]:
        version = self.get(ref)
        with (self._blobs / f"{version.sha256}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def rows(self, ref: str) -> builtins.list[dict[str, Any]]:
        return list(self.iter_rows(ref))

    def to_hf_dataset(self, ref: str) -> Any:
        """The version as a ``datasets.Dataset`` (for trainers)."""
        from datasets import Dataset

        return Dataset.from_list(self.rows(ref))

    def _point_name(self, name: str, version_id: str) -> None:
        path = self._names / f"{name}.json"
        ids: list[str] = json.loads(path.read_text())["versions"] if path.exists() else []
        if not ids or ids[-1] != version_id:
            ids = [i for i in ids if i != version_id] + [version_id]
            write_bytes_atomic(path, json.dumps({"name": name, "versions": ids}, indent=2).encode())

    def _read_manifest(self, version_id: str) -> DatasetVersion | None:
        path = self._versions / f"{version_id}.json"
        if not path.exists():
            return None
        return DatasetVersion(**json.loads(path.read_text()))

    def _manifest_or_raise(self, version_id: str) -> DatasetVersion:
        version = self._read_manifest(version_id)
        if version is None:
            raise NotFound(
                f"dataset version {version_id} is named but its manifest is missing from {self.root}"
            )
        return version

    def _write_manifest(self, version: DatasetVersion) -> None:
        body = json.dumps(version.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")
        write_bytes_atomic(self._versions / f"{version.id}.json", body)


def open_dataset_store() -> DatasetStore:
    """The store under the configured home (``LARGEFORGE_HOME``)."""
    from largeforge.settings import get_settings

    return DatasetStore(get_settings().datasets_dir)


__all__ = [
    "DatasetStore",
    "DatasetVersion",
    "ImportResult",
    "canonical_jsonl",
    "check_name",
    "open_dataset_store",
]
