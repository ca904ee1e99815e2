"""All SQL of the datasets domain. Never commits: the service's caller owns the transaction.

Every query takes the project id, so a name or version id of another project simply is not found.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from largeforge.platform.datasets.orm import ProjectDatasetVersion


class DatasetRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, row: ProjectDatasetVersion) -> ProjectDatasetVersion:
        self._session.add(row)
        self._session.flush()
        return row

    def get(self, project_id: str, name: str, version_id: str) -> ProjectDatasetVersion | None:
        stmt = select(ProjectDatasetVersion).where(
            ProjectDatasetVersion.project_id == project_id,
            ProjectDatasetVersion.name == name,
            ProjectDatasetVersion.version_id == version_id,
        )
        return self._session.scalars(stmt).first()

    def get_number(self, project_id: str, name: str, number: int) -> ProjectDatasetVersion | None:
        stmt = select(ProjectDatasetVersion).where(
            ProjectDatasetVersion.project_id == project_id,
            ProjectDatasetVersion.name == name,
            ProjectDatasetVersion.number == number,
        )
        return self._session.scalars(stmt).first()

    def latest(self, project_id: str, name: str) -> ProjectDatasetVersion | None:
        stmt = (
            select(ProjectDatasetVersion)
            .where(ProjectDatasetVersion.project_id == project_id, ProjectDatasetVersion.name == name)
            .order_by(ProjectDatasetVersion.number.desc())
            .limit(1)
        )
        return self._session.scalars(stmt).first()

    def next_number(self, project_id: str, name: str) -> int:
        current = self._session.scalar(
            select(func.max(ProjectDatasetVersion.number)).where(
                ProjectDatasetVersion.project_id == project_id, ProjectDatasetVersion.name == name
            )
        )
        return (current or 0) + 1

    def versions(self, project_id: str, name: str) -> list[ProjectDatasetVersion]:
        stmt = (
            select(ProjectDatasetVersion)
            .where(ProjectDatasetVersion.project_id == project_id, ProjectDatasetVersion.name == name)
            .order_by(ProjectDatasetVersion.number)
        )
        return list(self._session.scalars(stmt))

    def by_version_prefix(self, project_id: str, prefix: str) -> list[ProjectDatasetVersion]:
        """The project's rows whose content address starts with ``prefix`` (any name)."""
        stmt = (
            select(ProjectDatasetVersion)
            .where(
                ProjectDatasetVersion.project_id == project_id,
                ProjectDatasetVersion.version_id.startswith(prefix, autoescape=True),
            )
            .order_by(ProjectDatasetVersion.created_at)
        )
        return list(self._session.scalars(stmt))

    def latest_per_name(self, project_id: str) -> list[tuple[ProjectDatasetVersion, int]]:
        """(newest version, version count) for every dataset name of the project, by name."""
        newest = (
            select(
                ProjectDatasetVersion.name,
                func.max(ProjectDatasetVersion.number).label("top"),
                func.count().label("versions"),
            )
            .where(ProjectDatasetVersion.project_id == project_id)
            .group_by(ProjectDatasetVersion.name)
            .subquery()
        )
        stmt = (
            select(ProjectDatasetVersion, newest.c.versions)
            .join(
                newest,
                (ProjectDatasetVersion.name == newest.c.name)
                & (ProjectDatasetVersion.number == newest.c.top),
            )
            .where(ProjectDatasetVersion.project_id == project_id)
            .order_by(ProjectDatasetVersion.name)
        )
        return [(row, int(count)) for row, count in self._session.execute(stmt)]


__all__ = ["DatasetRepository"]
