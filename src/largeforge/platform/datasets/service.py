"""Datasets of a project: import an upload through the data library, list, resolve, preview, and
rewrite a recipe's dataset references to exactly the versions the project owns.

The dataset store (``largeforge.data.versions``) keeps the rows, content-addressed and shared by all
projects; a project's dataset ``NAME`` is filed there as ``<project name>.NAME``, and the project's own
record of what it uploaded (``project_dataset_versions``) is the only thing the API reads to decide
what a project may see. Nothing here commits: the route or worker owns the transaction.
"""

from __future__ import annotations

import re
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from largeforge.data.versions import ID_LENGTH, MIN_PREFIX, DatasetStore, check_name
from largeforge.errors import Conflict, DataValidationError, InvalidInput, NotFound
from largeforge.platform.auth.principal import Principal
from largeforge.platform.datasets.orm import ProjectDatasetVersion
from largeforge.platform.datasets.repository import DatasetRepository
from largeforge.platform.datasets.upload import ReceivedUpload
from largeforge.platform.projects.orm import Project

SEPARATOR = "."
STORE_NAME_LENGTH = 64
MAX_PREVIEW_ROWS = 100
_HEX = re.compile(r"^[0-9a-f]+$")
# The recipe fields that name datasets (largeforge.training.specs.DataSpec).
RECIPE_DATA_FIELDS = ("train", "eval")


def store_name(project: Project, name: str) -> str:
    """The dataset store's name for the project's dataset ``name``.

    Raises:
        InvalidInput: ``name`` breaks the store's name rules or is too long with the project prefix.
    """
    limit = STORE_NAME_LENGTH - len(project.name) - len(SEPARATOR)
    if len(name) > limit:
        raise InvalidInput(
            f"dataset name {name!r} is too long; in project {project.name} use at most {limit} characters"
        )
    check_name(name)
    return f"{project.name}{SEPARATOR}{name}"


def version_ref(row: ProjectDatasetVersion) -> str:
    return f"{row.name}@{row.number}"


class DatasetService:
    def __init__(self, session: Session, store: DatasetStore) -> None:
        self.session = session
        self.repo = DatasetRepository(session)
        self.store = store

    def import_upload(
        self,
        project: Project,
        principal: Principal,
        upload: ReceivedUpload,
        *,
        name: str,
        format: str | None = None,
    ) -> tuple[ProjectDatasetVersion, bool]:
        """Validate the uploaded file with the data library and store it as a version of ``name``.

        Returns the project's version and whether it is new: identical content already uploaded under
        ``name`` gives back the existing version.

        Raises:
            DataValidationError: bad rows (the report lists them). InvalidInput: bad name or format,
            unreadable file. Conflict: another upload to ``name`` won the race; upload again.
        """
        qualified = store_name(project, name)
        dataset = _read_upload(upload, format)
        result = self.store.add(
            dataset.rows,
            name=qualified,
            kind=dataset.kind,
            format=dataset.format,
            # The manifest is shared by every project that uploads the same rows: nothing project-specific.
            source={"loader": dataset.loader, "via": "control plane upload"},
        )
        existing = self.repo.get(project.id, name, result.version.id)
        if existing is not None:
            return existing, False
        row = ProjectDatasetVersion(
            project_id=project.id,
            name=name,
            number=self.repo.next_number(project.id, name),
            version_id=result.version.id,
            kind=dataset.kind,
            format=dataset.format,
            row_count=len(dataset.rows),
            columns=result.version.columns,
            filename=upload.filename,
            size_bytes=upload.size_bytes,
            file_sha256=upload.sha256,
            report=dataset.report.to_dict(),
            created_by=principal.user_id,
        )
        try:
            return self.repo.add(row), True
        except IntegrityError as exc:
            # Two uploads to the same name at once: the upload is this request's only write, so
            # rolling back loses nothing; identical content then finds the winner's row.
            self.session.rollback()
            winner = self.repo.get(project.id, name, result.version.id)
            if winner is not None:
                return winner, False
            raise Conflict(
                f"another version of dataset {name!r} was uploaded at the same moment; upload again"
            ) from exc

    def list_datasets(self, project: Project) -> list[tuple[ProjectDatasetVersion, int]]:
        """(newest version, number of versions) per dataset name."""
        return self.repo.latest_per_name(project.id)

    def versions(self, project: Project, name: str) -> list[ProjectDatasetVersion]:
        rows = self.repo.versions(project.id, name)
        if not rows:
            raise NotFound(_no_dataset(project, name))
        return rows

    def version(self, project: Project, name: str, version: str) -> ProjectDatasetVersion:
        """One version of ``name``: its number (``3``) or its version id (or a unique prefix of it)."""
        version = version.strip().removeprefix("@")
        found = self._by_prefix(project, version, name=name)
        if found is None and version.isdigit() and len(version) <= 9:
            found = self.repo.get_number(project.id, name, int(version))
        if found is None:
            if not self.repo.versions(project.id, name):
                raise NotFound(_no_dataset(project, name))
            raise NotFound(
                f"dataset {name} has no version {version!r}; GET .../datasets/{name}/versions lists them"
            )
        return found

    def resolve(self, project: Project, ref: str) -> ProjectDatasetVersion:
        """A project-local reference: ``NAME`` (newest), ``NAME@N``, or a version id (prefix).

        Raises:
            NotFound: the project has no such dataset or version. Conflict: an ambiguous id prefix.
        """
        ref = ref.strip()
        name, at, number = ref.partition("@")
        if at:
            if not number.isdigit():
                raise InvalidInput(f"{ref!r}: the part after @ is a version number, e.g. {name}@1")
            found = self.repo.get_number(project.id, name, int(number))
            if found is None:
                raise NotFound(f"project {project.name} has no dataset version {ref!r}")
            return found
        found = self.repo.latest(project.id, ref)
        if found is None and len(ref) >= MIN_PREFIX and _HEX.match(ref):
            found = self._by_prefix(project, ref)
        if found is None:
            raise NotFound(_no_dataset(project, ref))
        return found

    def preview(
        self, row: ProjectDatasetVersion, *, rows: int, tokenizer: Any | None = None
    ) -> dict[str, Any]:
        """The first ``rows`` normalised rows; with a tokenizer, also rendered by the data library's
        preview (tokens and the trained-on mask)."""
        from largeforge.data.preview import preview_rows

        if not 1 <= rows <= MAX_PREVIEW_ROWS:
            raise InvalidInput(f"rows must be between 1 and {MAX_PREVIEW_ROWS}, not {rows}")
        first = list(islice(self.store.iter_rows(row.version_id), rows))
        rendered = preview_rows(first, row.kind, tokenizer, limit=rows).to_dict() if tokenizer else None
        return {"kind": row.kind, "rows": first, "rendered": rendered}

    def _by_prefix(
        self, project: Project, prefix: str, *, name: str | None = None
    ) -> ProjectDatasetVersion | None:
        if len(prefix) < MIN_PREFIX or len(prefix) > ID_LENGTH or not _HEX.match(prefix):
            return None
        rows = [r for r in self.repo.by_version_prefix(project.id, prefix) if name is None or r.name == name]
        ids = sorted({r.version_id for r in rows})
        if len(ids) > 1:
            raise Conflict(
                f"{prefix!r} matches {len(ids)} dataset versions ({', '.join(ids[:5])}); give more characters"
            )
        return rows[-1] if rows else None


def qualify_recipe(session: Session, project: Project, recipe_document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a recipe document whose dataset references name exactly the project's versions.

    ``data.train`` and ``data.eval`` may say ``NAME``, ``NAME@N`` or a version id (prefix) of a dataset
    the project uploaded; each becomes the full version id in the dataset store, so the job trains on
    the same rows however the name moves later, and on nothing another project (or the server's disk)
    holds. Other fields are left for the recipe's own validation.

    Raises:
        InvalidInput: ``data`` is missing or malformed, or a reference is a file path.
        NotFound: the project has no such dataset or version.
    """
    from largeforge.data.versions import open_dataset_store

    data = recipe_document.get("data") if isinstance(recipe_document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("train"), str):
        raise InvalidInput("data.train: the recipe needs a data section naming a dataset of the project")
    service = DatasetService(session, open_dataset_store())
    qualified = dict(data)
    for field in RECIPE_DATA_FIELDS:
        ref = data.get(field)
        if ref is None:
            continue
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput(f"data.{field}: must be a dataset name, NAME@N or a version id")
        if "/" in ref or "\\" in ref or Path(ref).suffix.lower() in {".jsonl", ".json", ".csv", ".parquet"}:
            raise InvalidInput(
                f"data.{field}: {ref!r} looks like a file path; through the control plane, upload the "
                "file as a dataset first and name the dataset here"
            )
        try:
            qualified[field] = service.resolve(project, ref).version_id
        except NotFound as exc:
            raise NotFound(f"data.{field}: {exc.message}") from exc
    return {**recipe_document, "data": qualified}


def _no_dataset(project: Project, name: str) -> str:
    return f"project {project.name} has no dataset {name!r}; GET .../datasets lists them, POST uploads one"


def _read_upload(upload: ReceivedUpload, format: str | None) -> Any:
    """Read and validate the file with the data library; messages name the upload, not the temp file.

    Raises:
        DataValidationError: with the full report. InvalidInput: unreadable file, unknown format.
    """
    from largeforge.data.reading import read_dataset

    try:
        dataset = read_dataset(upload.path, format=format)
    except DataValidationError as exc:
        exc.report.source = upload.filename
        raise DataValidationError(exc.report) from exc
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace(str(upload.path), upload.filename)) from exc
    dataset.report.source = upload.filename
    if not dataset.report.ok:
        raise DataValidationError(dataset.report)
    return dataset


__all__ = ["DatasetService", "qualify_recipe", "store_name", "version_ref"]
