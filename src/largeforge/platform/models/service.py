"""A project's view of the model registry: its namespace, ownership, and the registry use cases behind
the models API (read, lineage, eval results, aliases, delete).

The registry (``largeforge.registry``) stays project-agnostic: a project's model ``NAME`` is filed there
as ``<project name>.NAME`` (project names have no dots, so the split is unambiguous) and claimed in
``project_models``. Everything the API returns is translated back to project-local names, and a
reference to a model the project does not own is answered exactly like one that does not exist (404),
so names never leak between projects. Nothing here commits: the route or worker owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.platform.models.repository import ProjectModelRepository
from largeforge.platform.projects.orm import Project
from largeforge.registry.orm import ModelVersion, RegisteredModel
from largeforge.registry.service import RegistryService, version_to_dict

SEPARATOR = "."
REGISTRY_NAME_LENGTH = 128
_PUBLIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PUBLIC_REF = re.compile(r"^(?P<name>[^:@]+)(?P<suffix>(?::\d+|@[^:@]+))?$")
HIDDEN = "(a model of another project)"


def registry_name(project: Project, name: str) -> str:
    """The registry's name for the project's model ``name``.

    Raises:
        InvalidInput: ``name`` breaks the registry's name rules or is too long with the project prefix.
    """
    limit = REGISTRY_NAME_LENGTH - len(project.name) - len(SEPARATOR)
    if not _PUBLIC_NAME.match(name) or len(name) > limit:
        raise InvalidInput(
            f"model name {name!r} is not allowed; use 1-{limit} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return f"{project.name}{SEPARATOR}{name}"


def public_name(project: Project, registry_name: str) -> str:
    """The project-local name of a registry name in the project's namespace.

    Raises:
        InvalidInput: ``registry_name`` is outside the project's namespace.
    """
    prefix = f"{project.name}{SEPARATOR}"
    if not registry_name.startswith(prefix) or len(registry_name) == len(prefix):
        raise InvalidInput(f"{registry_name!r} is not a model name of project {project.name}")
    return registry_name[len(prefix) :]


def claim_model(session: Session, project: Project, registry_name: str) -> None:
    """Record that ``project`` owns the registry model ``registry_name`` (idempotent).

    Jobs that register models call this in the transaction that registers them; claiming before the
    first version exists reserves the name.

    Raises:
        InvalidInput: the name is outside the project's namespace (see :func:`registry_name`).
        Conflict: another project already owns it.
    """
    public_name(project, registry_name)
    repo = ProjectModelRepository(session)
    owner = repo.get(registry_name)
    if owner is None:
        repo.add(project.id, registry_name)
    elif owner.project_id != project.id:
        raise Conflict(f"the registry model {registry_name!r} belongs to another project")


def model_belongs(session: Session, project: Project, registry_name: str) -> bool:
    """True when ``project`` has claimed the registry model ``registry_name``."""
    owner = ProjectModelRepository(session).get(registry_name)
    return owner is not None and owner.project_id == project.id


def registry_ref(project: Project, ref: str) -> str:
    """A project-local reference (``NAME``, ``NAME:N``, ``NAME@ALIAS``) as the registry's reference."""
    match = _PUBLIC_REF.match(ref.strip())
    if match is None:
        raise InvalidInput(f"{ref!r} is not a model reference; use NAME, NAME:VERSION or NAME@ALIAS")
    return registry_name(project, match["name"]) + (match["suffix"] or "")


@dataclass(frozen=True)
class ModelSummary:
    model: RegisteredModel
    versions: list[ModelVersion]
    aliases: dict[str, int]


class ModelService:
    """Registry use cases limited to one project's models."""

    def __init__(self, session: Session, registry: RegistryService) -> None:
        self.session = session
        self.registry = registry

    def list(self, project: Project) -> list[ModelSummary]:
        models = ProjectModelRepository(self.session).models_of(project.id)
        return [self._summary(model) for model in models]

    def get(self, project: Project, name: str) -> ModelSummary:
        return self._summary(self.model_or_raise(project, name))

    def model_or_raise(self, project: Project, name: str) -> RegisteredModel:
        """The project's model ``name``; another project's model is "not found" like a missing one."""
        try:
            full_name = registry_name(project, name)
        except InvalidInput:
            full_name = None
        model = self.registry.repo.get_model(full_name) if full_name else None
        if model is None or not model_belongs(self.session, project, model.name):
            raise NotFound(f"project {project.name} has no model {name!r}; GET .../models lists them")
        return model

    def version_or_raise(self, project: Project, name: str, number: int) -> ModelVersion:
        model = self.model_or_raise(project, name)
        version = self.registry.repo.get_version(model, number)
        if version is None:
            raise NotFound(f"model {name} has no version {number}; GET .../models/{name} lists them")
        return version

    def resolve(self, project: Project, ref: str) -> ModelVersion:
        """A project-local reference (``NAME``, ``NAME:N``, ``NAME@ALIAS``) → the registry version.

        Raises:
            NotFound: the project has no such model, version or alias. InvalidInput: a malformed ref.
        """
        match = _PUBLIC_REF.match(ref.strip())
        if match is None:
            raise InvalidInput(f"{ref!r} is not a model reference; use NAME, NAME:VERSION or NAME@ALIAS")
        model = self.model_or_raise(project, match["name"])
        return self.registry.get(model.name + (match["suffix"] or ""))

    def describe_version(self, project: Project, version: ModelVersion) -> dict[str, Any]:
        """Manifest, metrics, tags, aliases, lineage and evaluation results, in project-local names."""
        from largeforge.evaluation.repository import EvalResultRepository

        document = version_to_dict(version)
        document["source"] = {k: v for k, v in document["source"].items() if k != "path"}
        document["name"] = public_name(project, version.model.name)
        document["ref"] = f"{document['name']}:{version.version}"
        document["aliases"] = sorted(a.name for a in self.registry.repo.aliases_pointing_to(version))
        document["lineage"] = self._public_lineage(project, self.registry.lineage(version.ref))
        document["eval_results"] = [
            {
                "id": row.id,
                "suite": row.suite_name,
                "suite_digest": row.suite_digest,
                "summary": row.summary,
                "created_at": row.created_at.astimezone(UTC).isoformat(timespec="seconds"),
            }
            for row in EvalResultRepository(self.session).list(version_id=version.id)
        ]
        return document

    def set_alias(self, project: Project, name: str, alias: str, ref: str, reason: str | None) -> int:
        """Point ``NAME@alias`` at a version of the same model (a number or a project-local ref);
        returns the version number it now points at."""
        model = self.model_or_raise(project, name)
        target = ref.strip()
        if not target.isdigit():
            target = self.resolve(project, target).ref
        event = self.registry.set_alias(model.name, alias, target, reason=reason)
        assert event.to_version is not None  # a move always has a destination
        return event.to_version

    def unset_alias(self, project: Project, name: str, alias: str, reason: str | None) -> None:
        model = self.model_or_raise(project, name)
        self.registry.unset_alias(model.name, alias, reason=reason)

    def delete_version(self, project: Project, name: str, number: int) -> ModelVersion:
        """Delete one version. The registry refuses (Conflict) while others depend on it, an alias
        points at it, or a deployment pins it."""
        version = self.version_or_raise(project, name, number)
        return self.registry.delete(version.ref)

    def local_dir(self, project: Project, ref: str, cache_dir: Path) -> Path:
        """A loadable directory of the project's model ``ref`` (shared materialisation cache)."""
        from largeforge.registry.materialize import materialize_version

        return materialize_version(self.registry, self.resolve(project, ref), cache_dir)

    def _summary(self, model: RegisteredModel) -> ModelSummary:
        versions = self.registry.repo.list_versions(model)
        by_id = {version.id: version.version for version in versions}
        aliases = {
            alias.name: by_id[alias.version_id]
            for alias in self.registry.repo.aliases_of(model)
            if alias.version_id in by_id
        }
        return ModelSummary(model=model, versions=versions, aliases=aliases)

    def _public_lineage(self, project: Project, node: dict[str, Any]) -> dict[str, Any]:
        """The registry's lineage tree with every ref made project-local; refs of other projects'
        models are hidden, and models no project owns (e.g. a base registered from the CLI) shown as is."""
        refs: set[str] = set()
        _collect_refs(node, refs)
        names = {ref.rpartition(":")[0] for ref in refs}
        owners = ProjectModelRepository(self.session).owners(names)

        def translate(ref: str) -> str:
            name, _, number = ref.rpartition(":")
            owner = owners.get(name)
            if owner is None:
                return ref
            if owner != project.id:
                return HIDDEN
            return f"{public_name(project, name)}:{number}"

        return _map_refs(node, translate)


def _collect_refs(node: dict[str, Any], into: set[str]) -> None:
    into.add(node["ref"])
    for child in node.get("children", []):
        into.add(child["ref"])
    for parent in node.get("parents", []):
        _collect_refs(parent, into)


def _map_refs(node: dict[str, Any], translate: Any) -> dict[str, Any]:
    out = {**node, "ref": translate(node["ref"])}
    if "parents" in node:
        out["parents"] = [_map_refs(parent, translate) for parent in node["parents"]]
    if "children" in node:
        out["children"] = [{**child, "ref": translate(child["ref"])} for child in node["children"]]
    return out


__all__ = [
    "ModelService",
    "ModelSummary",
    "claim_model",
    "model_belongs",
    "public_name",
    "registry_name",
    "registry_ref",
]
