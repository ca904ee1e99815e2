"""The artifact store: files addressed by their sha256, over any fsspec filesystem.

A local directory by default (``<home>/artifacts``); ``s3://bucket/prefix``, ``gs://…`` or any other
fsspec URL for scale-out, with the same code. A model version is a manifest ``{relative path: {sha256,
size}}``; identical files are stored once, whatever version or client they came from. Pickled weights
are refused at the door: nothing this store holds is ever unpickled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, JobFailed, NotFound

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_digest(manifest: dict[str, dict[str, Any]]) -> str:
    """One hash for a whole version: over the sorted (path, sha256) pairs."""
    digest = hashlib.sha256()
    for name in sorted(manifest):
        digest.update(f"{name}\0{manifest[name]['sha256']}\n".encode())
    return digest.hexdigest()


def collect_files(path: Path) -> dict[str, Path]:
    """Relative name → file for a model directory or a single file (e.g. a GGUF); refuses pickles."""
    if not path.exists():
        raise NotFound(f"{path} does not exist")
    files = (
        {path.name: path}
        if path.is_file()
        else {
            str(p.relative_to(path)): p
            for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        }
    )
    pickles = sorted(name for name in files if Path(name).suffix in PICKLE_SUFFIXES)
    if pickles:
        raise InvalidInput(
            f"{path} holds pickle files ({', '.join(pickles[:5])}); the registry stores safetensors only — "
            "convert the weights with save_pretrained(safe_serialization=True) and remove the pickles"
        )
    if not files:
        raise InvalidInput(f"{path} holds no files to register")
    return files


class ArtifactStore:
    """Content-addressed blobs under ``<root>/blobs/sha256/<aa>/<digest>``."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url
        self._fs, root = fsspec.core.url_to_fs(url)
        self._root = root.rstrip("/")

    def _blob(self, sha: str) -> str:
        return f"{self._root}/blobs/sha256/{sha[:2]}/{sha}"

    def has(self, sha: str) -> bool:
        return bool(self._fs.exists(self._blob(sha)))

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store ``path`` (once) and return its sha256 and size."""
        sha = file_sha256(path)
        if not self.has(sha):
            target = self._blob(sha)
            self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            staging = f"{target}.partial"
            self._fs.put_file(str(path), staging)
            self._fs.mv(staging, target)  # a blob exists only once it is complete
        return sha, path.stat().st_size

    def put(self, path: Path) -> dict[str, dict[str, Any]]:
        """Store a directory (or one file) and return its manifest."""
        manifest = {}
        for name, file in collect_files(path).items():
            sha, size = self.put_file(file)
            manifest[name] = {"sha256": sha, "size": size}
        return manifest

    def materialize(self, manifest: dict[str, dict[str, Any]], out_dir: Path) -> Path:
        """Write a version's files into ``out_dir``, checking every hash on the way."""
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, entry in manifest.items():
            target = out_dir / name
            if target.exists() and file_sha256(target) == entry["sha256"]:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if not self.has(entry["sha256"]):
                raise NotFound(
                    f"blob {entry['sha256']} of {name} is missing from the artifact store {self.url}"
                )
            self._fs.get_file(self._blob(entry["sha256"]), str(target))
            if file_sha256(target) != entry["sha256"]:
                target.unlink()
                raise JobFailed(f"{name} from {self.url} does not match its sha256; the store is corrupted")
        return out_dir


def open_artifact_store() -> ArtifactStore:
    from largeforge.settings import get_settings

    settings = get_settings()
    return ArtifactStore(settings.artifact_store_url or str(settings.artifacts_dir))


__all__ = [
    "PICKLE_SUFFIXES",
    "ArtifactStore",
    "collect_files",
    "file_sha256",
    "manifest_digest",
    "open_artifact_store",
]
