"""Registry use cases: register versions with lineage, resolve references, move aliases, delete safely.

References: ``NAME`` (newest version), ``NAME:3`` (version 3), ``NAME@production`` (an alias).
Every method runs inside the caller's session; :func:`open_registry` gives a committed scope.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.registry.orm import Alias, AliasEvent, ModelVersion, RegisteredModel, VersionPin
from largeforge.registry.repository import RegistryRepository
from largeforge.registry.storage import ArtifactStore, manifest_digest

KINDS = ("base", "full", "adapter", "merged", "quantized", "gguf")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_REF = re.compile(r"^(?P<name>[^:@]+)(?::(?P<version>\d+)|@(?P<alias>[^:@]+))?$")


def detect_kind(path: Path) -> str:
    """What a path holds, from the files in it."""
    if path.is_file():
        return "gguf" if path.suffix == ".gguf" else "full"
    if (path / "adapter_config.json").exists():
        return "adapter"
    export = path / "export.json"
    if export.exists():
        kind = json.loads(export.read_text()).get("kind")
        if kind in KINDS:
            return str(kind)
    return "base" if (path / "largeforge.json").exists() else "full"


def chat_template_hash(path: Path) -> str | None:
    template = path / "chat_template.jinja" if path.is_dir() else None
    if template is not None and template.exists():
        return hashlib.sha256(template.read_bytes()).hexdigest()
    config = path / "tokenizer_config.json" if path.is_dir() else None
    if config is not None and config.exists():
        value = json.loads(config.read_text()).get("chat_template")
        if isinstance(value, str):
            return hashlib.sha256(value.encode()).hexdigest()
    return None


class RegistryService:
    def __init__(self, session: Session, store: ArtifactStore) -> None:
        self.repo = RegistryRepository(session)
        self.store = store

    def register(
        self,
        path: str | Path,
        *,
        name: str,
        kind: str | None = None,
        parents: Sequence[tuple[str, str]] = (),
        inputs: Sequence[tuple[str, str]] = (),
        metrics: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
        description: str | None = None,
        reuse_identical: bool = False,
    ) -> ModelVersion:
        """Store the files of ``path`` and record a new version of ``name``.

        Args:
            parents: ``(reference, relation)`` pairs, e.g. ``("tiny:1", "base")``.
            inputs: ``(kind, ref)`` pairs for things outside the registry: ``("dataset", id)``, ``("run", dir)``.
            reuse_identical: return the newest version instead of adding one when its files and kind are
                the same (re-runnable pipelines such as the quickstart).

        Raises:
            InvalidInput: bad name or kind, pickles in the directory. NotFound: a parent does not exist.
        """
        if not _NAME.match(name):
            raise InvalidInput(f"model name {name!r} is not allowed; use letters, digits, '.', '_' or '-'")
        source_path = Path(path).expanduser().resolve()
        if not source_path.exists():
            raise NotFound(f"{source_path} does not exist; give a model directory or a .gguf file")
        kind = kind or detect_kind(source_path)
        if kind not in KINDS:
            raise InvalidInput(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        parent_versions = [(self.get(ref), relation) for ref, relation in parents]
        manifest = self.store.put(source_path)
        model = self.repo.get_model(name) or self.repo.add_model(name, description)
        latest = self.repo.latest_version(model) if reuse_identical else None
        if latest is not None and latest.digest == manifest_digest(manifest) and latest.kind == kind:
            return latest
        version = self.repo.add_version(
            ModelVersion(
                model_id=model.id,
                version=self.repo.next_version(model),
                kind=kind,
                digest=manifest_digest(manifest),
                manifest=manifest,
                size_bytes=sum(entry["size"] for entry in manifest.values()),
                chat_template_hash=chat_template_hash(source_path),
                metrics=metrics or {},
                tags=tags or {},
                source={"path": str(source_path), **(source or {})},
            )
        )
        for parent, relation in parent_versions:
            self.repo.add_parent(version, parent, relation)
        for input_kind, ref in inputs:
            self.repo.add_input(version, input_kind, ref)
        return version

    def model_or_raise(self, name: str) -> RegisteredModel:
        model = self.repo.get_model(name)
        if model is None:
            raise NotFound(f"no registered model {name!r}; `largeforge models list` shows them")
        return model

    def get(self, ref: str) -> ModelVersion:
        """Resolve ``NAME``, ``NAME:N`` or ``NAME@ALIAS``."""
        match = _REF.match(ref.strip())
        if match is None:
            raise InvalidInput(f"{ref!r} is not a model reference; use NAME, NAME:VERSION or NAME@ALIAS")
        model = self.model_or_raise(match["name"])
        if match["alias"]:
            alias = self.repo.get_alias(model, match["alias"])
            if alias is None:
                raise NotFound(f"{model.name} has no alias @{match['alias']}")
            found = self.repo.get_version_by_id(alias.version_id)
        elif match["version"]:
            found = self.repo.get_version(model, int(match["version"]))
        else:
            found = self.repo.latest_version(model)
        if found is None:
            raise NotFound(f"{ref} does not exist; `largeforge models show {model.name}` lists its versions")
        return found

    def set_alias(self, name: str, alias: str, ref: str, *, reason: str | None = None) -> AliasEvent:
        """Point ``NAME@alias`` at a version; the move and its history are written in one transaction."""
        if not _ALIAS.match(alias):
            raise InvalidInput(
                f"alias {alias!r} is not allowed; use a letter, then letters, digits, '_' or '-'"
            )
        model = self.model_or_raise(name)
        version = self.get(ref if ":" in ref or "@" in ref else f"{name}:{ref}" if ref.isdigit() else ref)
        if version.model_id != model.id:
            raise InvalidInput(
                f"{ref} is a version of another model; an alias of {name} must point at {name}"
            )
        current = self.repo.lock_alias(model, alias)
        previous = None
        if current is None:
            current = Alias(model_id=model.id, name=alias, version_id=version.id)
        else:
            previous = self.repo.get_version_by_id(current.version_id)
            current.version_id = version.id
        from largeforge.db import utcnow

        current.updated_at = utcnow()
        self.repo.save_alias(current)
        event = AliasEvent(
            model_id=model.id,
            alias=alias,
            from_version=previous.version if previous else None,
            to_version=version.version,
            reason=reason,
        )
        self.repo.add_alias_event(event)
        return event

    def unset_alias(self, name: str, alias: str, *, reason: str | None = None) -> AliasEvent:
        model = self.model_or_raise(name)
        current = self.repo.lock_alias(model, alias)
        if current is None:
            raise NotFound(f"{name} has no alias @{alias}")
        previous = self.repo.get_version_by_id(current.version_id)
        self.repo.delete_alias(current)
        event = AliasEvent(
            model_id=model.id,
            alias=alias,
            from_version=previous.version if previous else None,
            to_version=None,
            reason=reason,
        )
        self.repo.add_alias_event(event)
        return event

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        return self.repo.alias_events(self.model_or_raise(name), alias)

    def lineage(self, ref: str) -> dict[str, Any]:
        """Everything upstream (parents, recursively, with their inputs) and the direct children."""
        version = self.get(ref)
        return {
            **self._upstream(version, set()),
            "children": [
                {"ref": child.ref, "relation": relation} for child, relation in self.repo.children(version)
            ],
        }

    def _upstream(self, version: ModelVersion, seen: set[str]) -> dict[str, Any]:
        seen.add(version.id)
        return {
            "ref": version.ref,
            "kind": version.kind,
            "inputs": [{"kind": item.kind, "ref": item.ref} for item in self.repo.inputs(version)],
            "parents": [
                {"relation": relation, **self._upstream(parent, seen)}
                for parent, relation in self.repo.parents(version)
                if parent.id not in seen
            ],
        }

    def pin(self, ref: str, holder: str) -> VersionPin:
        """Hold ``ref`` (resolved now: an alias that moves later does not move the pin) for ``holder``.

        Idempotent per holder. While any pin exists, :meth:`delete` refuses the version.

        Raises:
            NotFound: the reference does not resolve. InvalidInput: an empty or overlong holder.
        """
        if not holder or len(holder) > 200:
            raise InvalidInput("a pin's holder must be 1 to 200 characters, e.g. 'deployment:<id>'")
        version = self.get(ref)
        return self.repo.get_pin(version, holder) or self.repo.add_pin(version, holder)

    def unpin(self, ref: str, holder: str) -> bool:
        """Release ``holder``'s pin on ``ref``; False when there was none (releasing twice is harmless)."""
        version = self.get(ref)
        pin = self.repo.get_pin(version, holder)
        if pin is None:
            return False
        self.repo.delete_pin(pin)
        return True

    def pins(self, ref: str) -> list[str]:
        """The holders of ``ref``, oldest first."""
        return [pin.holder for pin in self.repo.pins_of(self.get(ref))]

    def delete(self, ref: str) -> ModelVersion:
        """Delete a version; refused while it is pinned, another version was made from it or an alias
        points at it."""
        version = self.get(ref)
        holders = [pin.holder for pin in self.repo.pins_of(version)]
        if holders:
            raise Conflict(
                f"{version.ref} cannot be deleted: it is deployed by {', '.join(holders)}; "
                "stop the deployment first"
            )
        dependants = [f"{child.ref} ({relation})" for child, relation in self.repo.children(version)]
        if dependants:
            raise Conflict(
                f"{version.ref} cannot be deleted: {', '.join(dependants)} depend on it; delete those first"
            )
        aliases = [f"{version.model.name}@{alias.name}" for alias in self.repo.aliases_pointing_to(version)]
        if aliases:
            raise Conflict(
                f"{version.ref} cannot be deleted: {', '.join(aliases)} point at it; move or unset them first"
            )
        self.repo.delete_version(version)
        return version

    def add_metrics(self, ref: str, metrics: dict[str, Any]) -> ModelVersion:
        version = self.get(ref)
        version.metrics = {**version.metrics, **metrics}
        return version

    def materialize(self, ref: str, out_dir: Path) -> Path:
        version = self.get(ref)
        return self.store.materialize(version.manifest, out_dir)


def version_to_dict(version: ModelVersion) -> dict[str, Any]:
    return {
        "ref": version.ref,
        "name": version.model.name,
        "version": version.version,
        "kind": version.kind,
        "digest": version.digest,
        "size_bytes": version.size_bytes,
        "chat_template_hash": version.chat_template_hash,
        "metrics": version.metrics,
        "tags": version.tags,
        "source": version.source,
        "files": version.manifest,
        "created_at": version.created_at.astimezone(UTC).isoformat(timespec="seconds"),
    }


@contextmanager
def open_registry(database_url: str | None = None) -> Iterator[RegistryService]:
    """A registry service in a committed transaction, on the configured database and artifact store."""
    from largeforge.db import session_scope
    from largeforge.registry.storage import open_artifact_store

    with session_scope(database_url) as session:
        yield RegistryService(session, open_artifact_store())


__all__ = [
    "KINDS",
    "RegistryService",
    "chat_template_hash",
    "detect_kind",
    "open_registry",
    "version_to_dict",
]
