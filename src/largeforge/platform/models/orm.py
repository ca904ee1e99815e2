"""Which registered models belong to which project.

The registry (``largeforge.registry``) has one global namespace and knows nothing of projects; a
project's models are filed there as ``<project name>.<name>`` and claimed here, so listing, reading
and changing them goes through one ownership check instead of a name-prefix convention alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from largeforge.db import Base, UTCDateTime, utcnow


class ProjectModel(Base):
    __tablename__ = "project_models"

    registry_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


__all__ = ["ProjectModel"]
