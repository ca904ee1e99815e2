"""All SQL of the models domain (project ownership of registry models). Never commits."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from largeforge.platform.models.orm import ProjectModel
from largeforge.registry.orm import RegisteredModel


class ProjectModelRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, registry_name: str) -> ProjectModel | None:
        return self._session.get(ProjectModel, registry_name)

    def add(self, project_id: str, registry_name: str) -> ProjectModel:
        row = ProjectModel(registry_name=registry_name, project_id=project_id)
        self._session.add(row)
        self._session.flush()
        return row

    def models_of(self, project_id: str) -> list[RegisteredModel]:
        """The registry models the project has claimed (and that exist), by name."""
        stmt = (
            select(RegisteredModel)
            .join(ProjectModel, ProjectModel.registry_name == RegisteredModel.name)
            .where(ProjectModel.project_id == project_id)
            .order_by(RegisteredModel.name)
        )
        return list(self._session.scalars(stmt))

    def owners(self, registry_names: Iterable[str]) -> dict[str, str]:
        """registry name → owning project id, for the names some project has claimed."""
        stmt = select(ProjectModel.registry_name, ProjectModel.project_id).where(
            ProjectModel.registry_name.in_(list(registry_names))
        )
        return {name: project_id for name, project_id in self._session.execute(stmt)}


__all__ = ["ProjectModelRepository"]
