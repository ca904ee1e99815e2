"""/api/v1/projects/{project_id}/deployments: serve model versions, watch them, stop them; the metered
OpenAI-compatible gateway under .../deployments/{deployment_id}/v1; the router config generated from
the running deployments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from largeforge.platform.deployments.gateway import GatewayTarget, gateway_of, resolve_target
from largeforge.platform.deployments.schemas import (
    DeploymentCreate,
    DeploymentList,
    DeploymentRead,
    RouterConfigRead,
)
from largeforge.platform.deployments.service import DeploymentService
from largeforge.platform.deps import ProjectAccess, db_session, project_role
from largeforge.platform.projects.roles import Role

router = APIRouter(prefix="/api/v1", tags=["deployments"])
BASE = "/projects/{project_id}/deployments"


def _service(request: Request, db: Session) -> DeploymentService:
    return DeploymentService(db, getattr(request.app.state, "deployment_supervisor", None))


@router.post(BASE, status_code=status.HTTP_201_CREATED, response_model=DeploymentRead)
def create_deployment(
    body: DeploymentCreate,
    request: Request,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> DeploymentRead:
    """Serve a model version of the project (+ adapters); poll GET .../{id} until status is running."""
    service = _service(request, db)
    options = body.model_dump(exclude={"model", "adapters", "replicas", "engine"})
    deployment = service.create(
        access.project, access.principal, body.model, body.adapters, body.replicas, body.engine, **options
    )
    db.commit()
    service.notify()
    request.state.audit_resource = f"deployment:{deployment.id}"
    return service.to_read(access.project, deployment)


@router.get(BASE, response_model=DeploymentList)
def list_deployments(
    request: Request,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> DeploymentList:
    rows = _service(request, db).list_read(access.project)
    return DeploymentList(data=rows, count=len(rows))


@router.get(BASE + "/{deployment_id}", response_model=DeploymentRead)
def read_deployment(
    deployment_id: str,
    request: Request,
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> DeploymentRead:
    service = _service(request, db)
    return service.to_read(access.project, service.get(access.project, deployment_id))


@router.post(BASE + "/{deployment_id}/stop", response_model=DeploymentRead)
def stop_deployment(
    deployment_id: str,
    request: Request,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> DeploymentRead:
    """Stop the replicas and unpin the versions; the deployment can be started again."""
    service = _service(request, db)
    deployment = service.stop(access.project, deployment_id)
    db.commit()
    service.notify()
    return service.to_read(access.project, deployment)


@router.post(BASE + "/{deployment_id}/start", response_model=DeploymentRead)
def start_deployment(
    deployment_id: str,
    request: Request,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> DeploymentRead:
    """Serve a stopped deployment again (same versions)."""
    service = _service(request, db)
    deployment = service.start(access.project, deployment_id)
    db.commit()
    service.notify()
    return service.to_read(access.project, deployment)


@router.delete(BASE + "/{deployment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_deployment(
    deployment_id: str,
    request: Request,
    access: ProjectAccess = Depends(project_role(Role.developer)),
    db: Session = Depends(db_session),
) -> Response:
    """Stop (if running) and forget the deployment; its usage stays."""
    service = _service(request, db)
    service.delete(access.project, deployment_id)
    db.commit()
    service.notify()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/projects/{project_id}/router-config", response_model=RouterConfigRead)
def read_router_config(
    request: Request,
    classifier: Literal["keyword", "embedding", "hybrid"] = Query(
        "keyword", description="The router's classifier (embedding and hybrid need the routing extra)."
    ),
    access: ProjectAccess = Depends(project_role(Role.viewer)),
    db: Session = Depends(db_session),
) -> RouterConfigRead:
    """The expert router's config for the running deployments. The replicas' internal keys (the
    ``environment`` the router needs) are shown to developers and up only."""
    with_keys = access.role.allows(Role.developer)
    return _service(request, db).router_config(access.project, classifier, with_keys=with_keys)


# The gateway. Async routes: answers stream, and a slow generation must not hold a worker thread.
def _gateway_target(role: Role) -> Callable[..., GatewayTarget]:
    """A dependency: the deployment's running replicas, for a caller with ``role`` (sync, so the
    database is read in a worker thread, not on the event loop)."""

    def dependency(
        deployment_id: str,
        access: ProjectAccess = Depends(project_role(role)),
        db: Session = Depends(db_session),
    ) -> GatewayTarget:
        target = resolve_target(db, access, deployment_id)
        db.commit()  # hand the connection back before the (long, maybe streamed) upstream call
        return target

    return dependency


_caller_target = _gateway_target(Role.developer)
_reader_target = _gateway_target(Role.viewer)
GATEWAY = BASE + "/{deployment_id}/v1"


@router.post(GATEWAY + "/chat/completions", tags=["gateway"])
async def gateway_chat_completions(
    request: Request, target: GatewayTarget = Depends(_caller_target)
) -> Response:
    """OpenAI chat completions (streamed or not) on the deployment; metered per API key."""
    return await gateway_of(request.app).complete(request, target, "/chat/completions")


@router.post(GATEWAY + "/completions", tags=["gateway"])
async def gateway_completions(request: Request, target: GatewayTarget = Depends(_caller_target)) -> Response:
    """OpenAI text completions (streamed or not) on the deployment; metered per API key."""
    return await gateway_of(request.app).complete(request, target, "/completions")


@router.get(GATEWAY + "/models", tags=["gateway"])
async def gateway_models(request: Request, target: GatewayTarget = Depends(_reader_target)) -> Response:
    """The models the deployment answers to (its base and adapters)."""
    return await gateway_of(request.app).models(target)
