"""All SQL of deployments. Never commits: the service, the route or the supervisor owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from largeforge.db import utcnow
from largeforge.errors import NotFound
from largeforge.platform.deployments.orm import Deployment, DeploymentReplica


class DeploymentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, deployment: Deployment) -> Deployment:
        self._session.add(deployment)
        self._session.flush()
        return deployment

    def get_or_raise(self, project_id: str, deployment_id: str) -> Deployment:
        """A deployment of ``project_id``; another project's id is "not found" like a missing one."""
        stmt = select(Deployment).where(Deployment.id == deployment_id, Deployment.project_id == project_id)
        deployment = self._session.scalars(stmt).first()
        if deployment is None:
            raise NotFound(f"no deployment {deployment_id!r} in this project; GET .../deployments lists them")
        return deployment

    def list_in(self, project_id: str) -> list[Deployment]:
        stmt = select(Deployment).where(Deployment.project_id == project_id).order_by(Deployment.created_at)
        return list(self._session.scalars(stmt))

    def running_in(self, project_id: str) -> list[Deployment]:
        stmt = (
            select(Deployment)
            .where(Deployment.project_id == project_id, Deployment.desired_state == "running")
            .order_by(Deployment.created_at)
        )
        return list(self._session.scalars(stmt))

    def delete(self, deployment: Deployment) -> None:
        self._session.delete(deployment)
        self._session.flush()

    def touch(self, deployment: Deployment) -> None:
        deployment.updated_at = utcnow()

    # replicas
    def replicas_of(self, deployment_id: str) -> list[DeploymentReplica]:
        stmt = (
            select(DeploymentReplica)
            .where(DeploymentReplica.deployment_id == deployment_id)
            .order_by(DeploymentReplica.number)
        )
        return list(self._session.scalars(stmt))

    def replicas_of_many(self, deployment_ids: list[str]) -> dict[str, list[DeploymentReplica]]:
        found: dict[str, list[DeploymentReplica]] = {key: [] for key in deployment_ids}
        if not deployment_ids:
            return found
        stmt = (
            select(DeploymentReplica)
            .where(DeploymentReplica.deployment_id.in_(deployment_ids))
            .order_by(DeploymentReplica.number)
        )
        for replica in self._session.scalars(stmt):
            found[replica.deployment_id].append(replica)
        return found

    def add_replica(self, deployment_id: str, number: int) -> DeploymentReplica:
        replica = DeploymentReplica(deployment_id=deployment_id, number=number, status="pending", restarts=0)
        self._session.add(replica)
        self._session.flush()
        return replica

    def delete_replica(self, replica: DeploymentReplica) -> None:
        self._session.delete(replica)

    def get_replica(self, replica_id: str) -> DeploymentReplica | None:
        return self._session.get(DeploymentReplica, replica_id)

    # supervision
    def claim(self, supervisor_id: str, now: datetime, stale_before: datetime) -> list[Deployment]:
        """Take every deployment that should run and that no live supervisor holds; return all held.

        A supervisor renews its hold on each pass; one that died stops renewing and, after
        ``stale_before``, another supervisor (a restarted server) takes its deployments over.
        """
        self._session.execute(
            update(Deployment)
            .where(
                Deployment.desired_state == "running",
                or_(
                    Deployment.supervisor_id.is_(None),
                    Deployment.supervisor_id == supervisor_id,
                    Deployment.supervisor_seen_at < stale_before,
                ),
            )
            .values(supervisor_id=supervisor_id, supervisor_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        self._settle_orphans(stale_before)
        return self.held_by(supervisor_id)

    def _settle_orphans(self, stale_before: datetime) -> None:
        """Stopped deployments whose supervisor died before it could record the stop: they are down."""
        orphans = select(Deployment.id).where(
            Deployment.desired_state == "stopped", Deployment.supervisor_seen_at < stale_before
        )
        self._session.execute(
            update(DeploymentReplica)
            .where(DeploymentReplica.deployment_id.in_(orphans))
            .values(status="stopped", pid=None, endpoint=None)
            .execution_options(synchronize_session=False)
        )
        self._session.execute(
            update(Deployment)
            .where(Deployment.id.in_(orphans))
            .values(status="stopped", supervisor_id=None, supervisor_seen_at=None)
            .execution_options(synchronize_session=False)
        )

    def held_by(self, supervisor_id: str) -> list[Deployment]:
        stmt = select(Deployment).where(Deployment.supervisor_id == supervisor_id).order_by(Deployment.id)
        return list(self._session.scalars(stmt))

    def release(self, supervisor_id: str) -> None:
        """Let go of every deployment (server shutdown): the next supervisor starts them again."""
        self._session.execute(
            update(Deployment)
            .where(Deployment.supervisor_id == supervisor_id)
            .values(supervisor_id=None, supervisor_seen_at=None)
            .execution_options(synchronize_session=False)
        )


__all__ = ["DeploymentRepository"]
