"""Which dataset versions a project owns, under which of its names.

The rows themselves live in the content-addressed dataset store (``largeforge.data.versions``), which
has one global namespace and deduplicates identical content across projects. This table is the
project's view of it: a project sees, lists and trains on only the versions it uploaded, numbered per
name (``NAME@1``, ``NAME@2`` …), with the upload's own metadata and validation report — nothing that
another project's upload of the same content wrote into the shared manifest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from largeforge.db import Base, UTCDateTime, new_id, utcnow


class ProjectDatasetVersion(Base):
    __tablename__ = "project_dataset_versions"
    __table_args__ = (
        UniqueConstraint("project_id", "name", "number", name="uq_project_dataset_versions_number"),
        UniqueConstraint("project_id", "name", "version_id", name="uq_project_dataset_versions_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(16))
    row_count: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[str]] = mapped_column(JSON)
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_sha256: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


__all__ = ["ProjectDatasetVersion"]
