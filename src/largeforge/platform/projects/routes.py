"""/api/v1/projects: create, list, read, and manage members."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status
from sqlalchemy.orm import Session

from largeforge.errors import NotFound
from largeforge.platform.auth.principal import Principal
from largeforge.platform.auth.repository import AuthRepository
from largeforge.platform.auth.service import AuthService
from largeforge.platform.deps import (
    ProjectAccess,
    current_principal,
    db_session,
    effective_role,
    project_role,
)
from largeforge.platform.projects.roles import Role
from largeforge.platform.projects.schemas import (
    MemberOut,
    MemberSet,
    ProjectCreate,
    ProjectOut,
    ProjectWithRole,
)
from largeforge.platform.projects.service import ProjectService

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectWithRole)
def create_project(
    body: ProjectCreate, principal: Principal = Depends(current_principal), db: Session = Depends(db_session)
) -> ProjectWithRole:
    """Any signed-in user may create a project and becomes its owner (project-scoped keys may not)."""
    if principal.key_project_id is not None:
        from largeforge.errors import Forbidden

        raise Forbidden("a project-scoped API key cannot create projects; use an unscoped key")
    user = AuthService(db).user_or_raise(principal.user_id)
    project = ProjectService(db).create(
        body.name, user, description=body.description, max_running_jobs=body.max_running_jobs
    )
    db.commit()
    return ProjectWithRole.model_validate(
        {**ProjectOut.model_validate(project).model_dump(), "role": Role.owner}
    )


@router.get("", response_model=list[ProjectWithRole])
def list_projects(
    principal: Principal = Depends(current_principal), db: Session = Depends(db_session)
) -> list[ProjectWithRole]:
    projects = ProjectService(db).projects_of(
        principal.user_id, is_admin=principal.is_admin, only=principal.key_project_id
    )
    out = []
    for project in projects:
        role = effective_role(db, principal, project)
        if role is not None:
            out.append(
                ProjectWithRole.model_validate(
                    {**ProjectOut.model_validate(project).model_dump(), "role": role}
                )
            )
    return out


@router.get("/{project_id}", response_model=ProjectWithRole)
def get_project(access: ProjectAccess = Depends(project_role(Role.viewer))) -> ProjectWithRole:
    return ProjectWithRole.model_validate(
        {**ProjectOut.model_validate(access.project).model_dump(), "role": access.role}
    )


@router.get("/{project_id}/members", response_model=list[MemberOut])
def list_members(
    access: ProjectAccess = Depends(project_role(Role.viewer)), db: Session = Depends(db_session)
) -> list[MemberOut]:
    return [
        MemberOut(user_id=user.id, email=user.email, role=Role(membership.role))
        for membership, user in ProjectService(db).members(access.project)
    ]


@router.put("/{project_id}/members", response_model=MemberOut)
def set_member(
    body: MemberSet,
    access: ProjectAccess = Depends(project_role(Role.admin)),
    db: Session = Depends(db_session),
) -> MemberOut:
    """Add a user to the project or change their role (admins; only owners touch ownership)."""
    user = AuthRepository(db).user_by_email(body.email)
    if user is None:
        raise NotFound(f"no user with email {body.email}; a global admin creates users")
    ProjectService(db).set_member(access.project, user, body.role, acting_role=access.role)
    db.commit()
    return MemberOut(user_id=user.id, email=user.email, role=body.role)


@router.delete("/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    user_id: str, access: ProjectAccess = Depends(project_role(Role.admin)), db: Session = Depends(db_session)
) -> None:
    ProjectService(db).remove_member(access.project, user_id, acting_role=access.role)
    db.commit()
