"""The ``eval_results`` table: one row per finished evaluation of a target on a suite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from largeforge.db import Base, UTCDateTime, new_id, utcnow
from largeforge.registry import orm as registry_orm  # noqa: F401  (model_versions, the FK's table)


class EvalResult(Base):
    """A stored evaluation. ``target`` is the resolved label (``tiny:3`` for a registry version, an
    absolute path, or ``model @ url``); ``version_id`` links registry versions and is cleared, not
    cascaded, when the version is deleted, so the history of what was measured survives."""

    __tablename__ = "eval_results"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    suite_name: Mapped[str] = mapped_column(String(128), index=True)
    suite_digest: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(512), index=True)
    target_kind: Mapped[str] = mapped_column(String(16))
    version_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    cases: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


__all__ = ["EvalResult"]
