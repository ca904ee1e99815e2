"""Wire shapes of the datasets API. Uploads are multipart or raw bodies, not JSON, so there is no
create schema: the route's query parameters (and form fields) carry the name and format."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DatasetVersionRead(BaseModel):
    """One stored version of a project's dataset, as the project uploaded it."""

    model_config = ConfigDict(from_attributes=True)
    name: str = Field(description="The dataset's name in this project.")
    number: int = Field(description="Position among the name's versions: NAME@number, from 1.")
    version_id: str = Field(description="Content address of the rows; identical content gives the same id.")
    ref: str = Field(description="What a recipe's data.train may say to use exactly this version.")
    kind: str = Field(description="Row shape: text, conversation, preference, kto or prompt.")
    format: str = Field(description="Detected (or forced) file format: messages, alpaca, sharegpt, …")
    row_count: int = Field(description="Valid rows stored.")
    columns: list[str] = Field(description="Columns of the normalised rows.")
    filename: str = Field(description="The uploaded file's name.")
    size_bytes: int = Field(description="Size of the uploaded file.")
    file_sha256: str = Field(description="SHA-256 of the uploaded file's bytes.")
    created_by: str | None = Field(description="Id of the user who uploaded it.")
    created_at: datetime


class DatasetUploaded(DatasetVersionRead):
    created: bool = Field(description="False when the project already had this content under this name.")


class DatasetVersionList(BaseModel):
    data: list[DatasetVersionRead]
    count: int


class DatasetRead(BaseModel):
    """A dataset name of the project and its newest version."""

    name: str
    versions: int = Field(description="How many versions the name has.")
    latest: DatasetVersionRead
    updated_at: datetime = Field(description="When the newest version was uploaded.")


class DatasetList(BaseModel):
    data: list[DatasetRead]
    count: int


class ValidationReportRead(BaseModel):
    """The data library's validation report of the upload (``largeforge.data.validation``)."""

    name: str
    number: int
    version_id: str
    report: dict[str, Any] = Field(
        description="source, format, kind, ok, rows_total, rows_valid, errors_total, errors, warnings."
    )


class DatasetPreview(BaseModel):
    """The first rows of a version; with ``model``, also rendered through its tokenizer."""

    name: str
    number: int
    version_id: str
    kind: str
    rows: list[dict[str, Any]] = Field(description="The first normalised rows.")
    rendered: dict[str, Any] | None = Field(
        description="Rows as tokens with the trained-on mask (largeforge.data.preview), when a model was given."
    )


__all__ = [
    "DatasetList",
    "DatasetPreview",
    "DatasetRead",
    "DatasetUploaded",
    "DatasetVersionList",
    "DatasetVersionRead",
    "ValidationReportRead",
]
