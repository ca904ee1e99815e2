"""/api/v1/projects/{project_id}/models: the project's part of the registry.

Viewers read models, versions, lineage and eval results; developers move aliases; admins delete
versions. A model of another project answers 404 like one that does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy.orm import Session

from largeforge.platform.deps import ProjectAccess, db_session, project_role
from largeforge.platform.models.schemas import (
    AliasRead,
    AliasSet,
    ModelList,
    ModelRead,
    ModelVersionRead,
    ModelVersionSummary,
)
from largeforge.platform.models.service import ModelService, ModelSummary, public_name
from largeforge.platform.projects.orm import Project
from largeforge.platform.projects.roles import Role
from largeforge.registry.orm import ModelVersion
from largeforge.registry.service import RegistryService

router = APIRouter(prefix="/api/v1", tags=["models"])

MODELS = "/projects/{project_id}/models"
NamePath = Path(max_length=128, description="The model's name in this project.")
VersionPath = Path(ge=1, le=2**31 - 1, description="Version number.")
AliasPath = Path(max_length=64, description="Alias name, e.g. production.")


def _service(db: Session) -> ModelService:
    from largeforge.registry.storage import open_artifact_store

    return ModelService(db, RegistryService(db, open_artifact_store()))


def _version_summary(project: Project, version: ModelVersion) -> ModelVersionSummary:
    return ModelVersionSummary(
        version=version.version,
        ref=f"{public_name(project, version.model.name)}:{version.version}",
        kind=version.kind,
        digest=version.digest,
        size_bytes=version.size_bytes,
        metrics=version.metrics,
        tags=version.tags,
        created_at=version.created_at,
    )


def _model_read(project: Project, summary: ModelSummary) -> ModelRead:
    return ModelRead(
        name=public_name(project, summary.model.name),
        description=summary.model.description,
        created_at=summary.model.created_at,
        aliases=summary.aliases,
        versions=[_version_summary(project, version) for version in summary.versions],
    )


@router.get(MODELS, response_model=ModelList)
def list_models(
    access: ProjectAccess = Depends(project_role(Role.viewer)), db: Session = Depends(db_session)
) -> ModelList:
    """The project's registered models with their versions and aliases."""
    items = [_model_read(access.project, summary) for summary in _service(db).list(access.project)]
    return ModelList(data=items, count=len(items))


@router.get(MODELS + "/{name}", response_model=ModelRead)
def get_model(
    name: str = NamePath,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> ModelRead:
    return _model_read(access.project, _service(db).get(access.project, name))


@router.get(MODELS + "/{name}/versions/{version}", response_model=ModelVersionRead)
def get_model_version(
    name: str = NamePath,
    version: int = VersionPath,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> ModelVersionRead:
    """Manifest, metrics, tags, aliases, lineage (registry) and eval results (evaluation)."""
    service = _service(db)
    found = service.version_or_raise(access.project, name, version)
    return ModelVersionRead.model_validate(service.describe_version(access.project, found))


@router.put(MODELS + "/{name}/aliases/{alias}", response_model=AliasRead)
def set_alias(
    body: AliasSet,
    request: Request,
    name: str = NamePath,
    alias: str = AliasPath,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> AliasRead:
    """Point NAME@alias at a version of the same model (history kept by the registry)."""
    number = _service(db).set_alias(access.project, name, alias, body.ref, body.reason)
    db.commit()
    request.state.audit_resource = f"models/{name}@{alias}"
    return AliasRead(name=name, alias=alias, version=number)


@router.delete(MODELS + "/{name}/aliases/{alias}", response_model=AliasRead)
def unset_alias(
    request: Request,
    name: str = NamePath,
    alias: str = AliasPath,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> AliasRead:
    _service(db).unset_alias(access.project, name, alias, None)
    db.commit()
    request.state.audit_resource = f"models/{name}@{alias}"
    return AliasRead(name=name, alias=alias, version=None)


@router.delete(MODELS + "/{name}/versions/{version}", response_model=ModelVersionSummary)
def delete_model_version(
    request: Request,
    name: str = NamePath,
    version: int = VersionPath,
    access: ProjectAccess = Depends(project_role(Role.admin)),
    db: Session = Depends(db_session),
) -> ModelVersionSummary:
    """Delete one version (admin). 409 while a version made from it, an alias or a deployment needs it."""
    deleted = _service(db).delete_version(access.project, name, version)
    summary = _version_summary(access.project, deleted)
    db.commit()
    request.state.audit_resource = f"models/{name}:{version}"
    return summary


__all__ = ["router"]
