"""/api/v1/projects/{project_id}/datasets: upload, list, versions, validation report, preview.

Viewers read; developers upload. Every query is limited to the path's project, so another project's
dataset answers 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from largeforge.data.formats import FormatName
from largeforge.data.versions import open_dataset_store
from largeforge.errors import InvalidInput
from largeforge.platform.datasets.orm import ProjectDatasetVersion
from largeforge.platform.datasets.schemas import (
    DatasetList,
    DatasetPreview,
    DatasetRead,
    DatasetUploaded,
    DatasetVersionList,
    DatasetVersionRead,
    ValidationReportRead,
)
from largeforge.platform.datasets.service import (
    MAX_PREVIEW_ROWS,
    DatasetService,
    store_name,
    version_ref,
)
from largeforge.platform.datasets.upload import ReceivedUpload, receive_upload
from largeforge.platform.deps import ProjectAccess, db_session, project_role
from largeforge.platform.projects.roles import Role
from largeforge.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["datasets"])

DATASETS = "/projects/{project_id}/datasets"
VERSION = DATASETS + "/{name}/versions/{version}"
NamePath = Path(max_length=64, description="The dataset's name in this project.")
VersionPath = Path(max_length=64, description="A version number (1, 2, …) or a version id (or prefix).")

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The dataset file: a multipart form (`file`, `name`, optional `format`), or the "
        "raw file as the body with ?name= and ?filename= (or a Content-Type such as application/jsonl).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string", "maxLength": 64},
                        "format": {"type": "string"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _service(db: Session) -> DatasetService:
    return DatasetService(db, open_dataset_store())


def _read(row: ProjectDatasetVersion) -> DatasetVersionRead:
    return DatasetVersionRead.model_validate({**_columns(row), "ref": version_ref(row)})


def _columns(row: ProjectDatasetVersion) -> dict[str, Any]:
    return {column: getattr(row, column) for column in DatasetVersionRead.model_fields if column != "ref"}


@router.post(
    DATASETS,
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetUploaded,
    openapi_extra=_UPLOAD_BODY,
    responses={200: {"description": "The same content was already a version of this name."}},
)
async def upload_dataset(
    request: Request,
    response: Response,
    name: str | None = Query(None, max_length=64, description="Dataset name (or a `name` form field)."),
    format: FormatName | None = Query(None, description="Force a format instead of detecting it."),
    filename: str | None = Query(
        None, max_length=255, description="File name of a raw body (its extension)."
    ),
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> DatasetUploaded:
    """Upload a dataset file: streamed to disk under LARGEFORGE_MAX_UPLOAD_BYTES (413 past it),
    validated by the data library (422 with the report listing every bad row), stored as a
    content-addressed version (201; 200 with the existing version for identical content).

    Async, unlike the other routes, because only an async route can read the body as it streams in.
    """
    settings = get_settings()
    if name is not None:
        store_name(access.project, name)  # refuse a bad name before reading a byte
    async with receive_upload(
        request,
        limit=settings.max_upload_bytes,
        scratch_dir=settings.home / "tmp" / "uploads",
        filename=filename,
    ) as upload:
        dataset_name = name or upload.fields.get("name")
        if not dataset_name:
            raise InvalidInput("name: give the dataset a name (?name=… or a `name` form field)")
        chosen_format = format or upload.fields.get("format") or None
        row, created = await run_in_threadpool(_import, db, access, upload, dataset_name, chosen_format)
    request.state.audit_resource = f"datasets/{row.name}@{row.number}"
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return DatasetUploaded.model_validate({**_read(row).model_dump(), "created": created})


def _import(
    db: Session, access: ProjectAccess, upload: ReceivedUpload, name: str, format: str | None
) -> tuple[ProjectDatasetVersion, bool]:
    row, created = _service(db).import_upload(
        access.project, access.principal, upload, name=name, format=format
    )
    db.commit()
    return row, created


@router.get(DATASETS, response_model=DatasetList)
def list_datasets(
    access: ProjectAccess = Depends(project_role(Role.viewer)), db: Session = Depends(db_session)
) -> DatasetList:
    """The project's dataset names, each with its newest version."""
    items = [
        DatasetRead(name=row.name, versions=count, latest=_read(row), updated_at=row.created_at)
        for row, count in _service(db).list_datasets(access.project)
    ]
    return DatasetList(data=items, count=len(items))


@router.get(DATASETS + "/{name}", response_model=DatasetRead)
def get_dataset(
    name: str = NamePath,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> DatasetRead:
    rows = _service(db).versions(access.project, name)
    return DatasetRead(name=name, versions=len(rows), latest=_read(rows[-1]), updated_at=rows[-1].created_at)


@router.get(DATASETS + "/{name}/versions", response_model=DatasetVersionList)
def list_versions(
    name: str = NamePath,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> DatasetVersionList:
    """Every version of one dataset, oldest first."""
    rows = _service(db).versions(access.project, name)
    return DatasetVersionList(data=[_read(row) for row in rows], count=len(rows))


@router.get(VERSION, response_model=DatasetVersionRead)
def get_version(
    name: str = NamePath,
    version: str = VersionPath,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> DatasetVersionRead:
    return _read(_service(db).version(access.project, name, version))


@router.get(VERSION + "/report", response_model=ValidationReportRead)
def get_report(
    name: str = NamePath,
    version: str = VersionPath,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> ValidationReportRead:
    """The data library's validation report of the upload (row counts, warnings, ignored columns)."""
    row = _service(db).version(access.project, name, version)
    return ValidationReportRead(
        name=row.name, number=row.number, version_id=row.version_id, report=row.report
    )


@router.get(VERSION + "/preview", response_model=DatasetPreview)
def preview_version(
    name: str = NamePath,
    version: str = VersionPath,
    rows: int = Query(10, ge=1, le=MAX_PREVIEW_ROWS, description="How many rows, from the first."),
    model: str | None = Query(
        None,
        max_length=200,
        description="A model of this project (NAME, NAME:N, NAME@ALIAS) whose tokenizer renders the rows "
        "with the trained-on mask.",
    ),
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> DatasetPreview:
    """The first rows of a version; with ``model``, also as the trainer will see them."""
    service = _service(db)
    row = service.version(access.project, name, version)
    tokenizer = _project_tokenizer(db, access, model) if model else None
    shown = service.preview(row, rows=rows, tokenizer=tokenizer)
    return DatasetPreview(name=row.name, number=row.number, version_id=row.version_id, **shown)


def _project_tokenizer(db: Session, access: ProjectAccess, model: str) -> Any:
    from largeforge.model_source import load_tokenizer
    from largeforge.platform.models.service import ModelService
    from largeforge.registry.service import RegistryService
    from largeforge.registry.storage import open_artifact_store

    models = ModelService(db, RegistryService(db, open_artifact_store()))
    return load_tokenizer(models.local_dir(access.project, model, get_settings().models_dir / "registry"))


__all__ = ["router"]
