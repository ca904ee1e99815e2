"""Deployment tables: what should serve (``deployments``) and the processes that do (``deployment_replicas``).

A deployment row is the desired state, written by the API (or a pipeline job); the supervisor that owns
it (``supervisor_id``, renewed through ``supervisor_seen_at``) makes the replicas match and writes back
their status, port and pid. Created by migration 0006.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from largeforge.db import Base, UTCDateTime, new_id, utcnow


class Deployment(Base):
    """One model version (+ adapters) served by ``replicas`` managed ``largeforge serve`` processes.

    ``model_ref`` is the project-local reference as the caller wrote it (``chat@production``);
    ``version_ref`` is the registry version it resolved to when created (``<registry name>:3``), so that
    restarts serve the same weights even after the alias moves. ``internal_key`` is the bearer key the
    replicas require; only the gateway (and the router config) use it.
    """

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model_ref: Mapped[str] = mapped_column(String(300))
    version_ref: Mapped[str] = mapped_column(String(300))
    served_model_name: Mapped[str] = mapped_column(String(128))
    adapters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    engine: Mapped[str] = mapped_column(String(16))
    replicas: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    desired_state: Mapped[str] = mapped_column(String(16), default="running")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    internal_key: Mapped[str] = mapped_column(String(64))
    supervisor_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    supervisor_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeploymentReplica(Base):
    """One serving process of a deployment, as its supervisor last saw it."""

    __tablename__ = "deployment_replicas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    endpoint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


__all__ = ["Deployment", "DeploymentReplica"]
