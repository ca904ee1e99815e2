"""Projects and memberships: creation, membership changes, and the rule that a project keeps an owner."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.platform.auth.orm import User
from largeforge.platform.projects.orm import Membership, Project
from largeforge.platform.projects.roles import Role

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ProjectService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self, name: str, owner: User, *, description: str | None = None, max_running_jobs: int = 2
    ) -> Project:
        if not _NAME.match(name):
            raise InvalidInput(
                f"project name {name!r}: use 1-63 lowercase letters, digits and dashes, starting with a letter or digit"
            )
        if self.session.scalar(select(Project).where(Project.name == name)) is not None:
            raise Conflict(f"a project named {name} already exists")
        project = Project(name=name, description=description, max_running_jobs=max_running_jobs)
        self.session.add(project)
        self.session.flush()
        self.session.add(Membership(project_id=project.id, user_id=owner.id, role=Role.owner.value))
        self.session.flush()
        return project

    def projects_of(self, user_id: str, *, is_admin: bool, only: str | None = None) -> list[Project]:
        query = select(Project).order_by(Project.name)
        if only is not None:
            query = query.where(Project.id == only)
        if not is_admin:
            query = query.join(Membership, Membership.project_id == Project.id).where(
                Membership.user_id == user_id
            )
        return list(self.session.scalars(query))

    def members(self, project: Project) -> list[tuple[Membership, User]]:
        rows = self.session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.project_id == project.id)
            .order_by(User.email)
        )
        return [(membership, user) for membership, user in rows]

    def set_member(self, project: Project, user: User, role: Role, *, acting_role: Role) -> Membership:
        """Add or change a member. Only an owner may grant or take away ownership."""
        membership = self.session.get(Membership, (project.id, user.id))
        touches_owner = role is Role.owner or (membership is not None and membership.role == Role.owner.value)
        if touches_owner and acting_role is not Role.owner:
            raise InvalidInput("only an owner may make or unmake owners")
        if membership is None:
            membership = Membership(project_id=project.id, user_id=user.id, role=role.value)
            self.session.add(membership)
        else:
            if membership.role == Role.owner.value and role is not Role.owner:
                self._keep_an_owner(project)
            membership.role = role.value
        self.session.flush()
        return membership

    def remove_member(self, project: Project, user_id: str, *, acting_role: Role) -> None:
        membership = self.session.get(Membership, (project.id, user_id))
        if membership is None:
            raise NotFound(f"user {user_id} is not a member of {project.name}")
        if membership.role == Role.owner.value:
            if acting_role is not Role.owner:
                raise InvalidInput("only an owner may remove an owner")
            self._keep_an_owner(project)
        self.session.delete(membership)
        self.session.flush()

    def _keep_an_owner(self, project: Project) -> None:
        owners = self.session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.project_id == project.id, Membership.role == Role.owner.value)
        )
        if (owners or 0) <= 1:
            raise Conflict(f"{project.name} would have no owner left; make someone else owner first")


__all__ = ["ProjectService"]
