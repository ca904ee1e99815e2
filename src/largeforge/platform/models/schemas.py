"""Wire shapes of the models API: a project's registered models in project-local names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelVersionSummary(BaseModel):
    version: int = Field(description="Version number, from 1.")
    ref: str = Field(description="NAME:VERSION, what jobs and deployments of this project may name.")
    kind: str = Field(description="base, full, adapter, merged, quantized or gguf.")
    digest: str = Field(description="Content digest of the version's files.")
    size_bytes: int
    metrics: dict[str, Any]
    tags: dict[str, Any]
    created_at: datetime


class ModelRead(BaseModel):
    name: str = Field(description="The model's name in this project.")
    description: str | None
    created_at: datetime
    aliases: dict[str, int] = Field(description="alias → the version number it points at.")
    versions: list[ModelVersionSummary] = Field(description="Oldest first.")


class ModelList(BaseModel):
    data: list[ModelRead]
    count: int


class EvalResultSummary(BaseModel):
    id: str
    suite: str
    suite_digest: str
    summary: dict[str, Any]
    created_at: datetime


class ModelVersionRead(ModelVersionSummary):
    """One version: files, metrics, tags, lineage and evaluation results."""

    name: str
    chat_template_hash: str | None
    source: dict[str, Any] = Field(description="How it was made (run, recipe, job…).")
    files: dict[str, dict[str, Any]] = Field(description="path → {sha256, size}: the manifest.")
    aliases: list[str] = Field(description="Aliases pointing at this version.")
    lineage: dict[str, Any] = Field(
        description="Upstream versions (parents, recursively, with their inputs) and direct children."
    )
    eval_results: list[EvalResultSummary] = Field(description="Newest first.")


class AliasSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str = Field(
        min_length=1,
        max_length=200,
        description="The version to point at: a number (3) or a reference of the same model (NAME:3, NAME@staging).",
    )
    reason: str | None = Field(None, max_length=500, description="Why, kept in the alias history.")


class AliasRead(BaseModel):
    name: str
    alias: str
    version: int | None = Field(description="The version it points at now; null after an unset.")


__all__ = [
    "AliasRead",
    "AliasSet",
    "EvalResultSummary",
    "ModelList",
    "ModelRead",
    "ModelVersionRead",
    "ModelVersionSummary",
]
