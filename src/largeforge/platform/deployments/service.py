"""Deployment use cases: validate and record what should serve, pin the versions, answer status, and
generate the router's experts config.

The service only writes desired state (``desired_state``, pins); the supervisor
(:mod:`.supervisor`) makes processes match it, which is why a deployment created by a job in another
process (a pipeline's deploy step) starts as soon as a server's supervisor sees it. Nothing here commits:
the route or the job that calls it owns the transaction, and wakes the supervisor after committing.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.platform.auth.principal import Principal
from largeforge.platform.deployments.orm import Deployment, DeploymentReplica
from largeforge.platform.deployments.repository import DeploymentRepository
from largeforge.platform.deployments.schemas import (
    DeploymentCreate,
    DeploymentRead,
    ReplicaRead,
    RouterConfigRead,
)
from largeforge.platform.models.service import ModelService, public_name
from largeforge.platform.projects.orm import Project
from largeforge.registry.orm import ModelVersion
from largeforge.registry.service import RegistryService

if TYPE_CHECKING:
    from largeforge.platform.deployments.supervisor import Supervisor

GATEWAY_PATH = "/api/v1/projects/{project_id}/deployments/{deployment_id}/v1"


def pin_holder(deployment_id: str) -> str:
    """How a deployment appears in the registry's pins (and in its refusal to delete a version)."""
    return f"deployment:{deployment_id}"


def key_variable(deployment_id: str) -> str:
    """The environment variable the router config names for a deployment's internal key."""
    return f"LARGEFORGE_DEPLOYMENT_{deployment_id[:12].upper()}_KEY"


class DeploymentService:
    """Deployments of one database session; ``supervisor`` is the local one, if this process runs one."""

    def __init__(self, session: Session, supervisor: Supervisor | None = None) -> None:
        from largeforge.registry.storage import open_artifact_store

        self.session = session
        self.supervisor = supervisor
        self.repo = DeploymentRepository(session)
        self.registry = RegistryService(session, open_artifact_store())
        self.models = ModelService(session, self.registry)

    def create(
        self,
        project: Project,
        principal: Principal | None,
        model_ref: str,
        adapters: dict[str, str] | None = None,
        replicas: int = 1,
        engine: str = "hf",
        **options: Any,
    ) -> Deployment:
        """Record a deployment of the project's ``model_ref`` (+ ``adapters``) and pin its versions.

        ``options``: ``served_model_name``, ``max_num_seqs``, ``max_model_len``, ``dtype`` (see
        :class:`DeploymentCreate`). The replicas start once the transaction is committed and a supervisor
        sees it (call :meth:`notify` after the commit to start them at once).

        Raises:
            InvalidInput: bad arguments, or an engine that cannot load that kind of version.
            NotFound: a reference the project does not own (or that does not exist).
        """
        try:
            spec = DeploymentCreate.model_validate(
                {"model": model_ref, "adapters": adapters or {}, "replicas": replicas, "engine": engine}
                | options
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'deployment'}: {e['msg']}" for e in error.errors()
            )
            raise InvalidInput(f"invalid deployment: {problems}") from None
        base = self.models.resolve(project, spec.model)
        _check_engine(spec.engine, base)
        adapter_versions = {name: self.models.resolve(project, ref) for name, ref in spec.adapters.items()}
        for name, version in adapter_versions.items():
            if version.kind != "adapter":
                raise InvalidInput(
                    f"adapters.{name}: {spec.adapters[name]} is a {version.kind} model, not a LoRA adapter"
                )
        deployment = self.repo.add(
            Deployment(
                project_id=project.id,
                model_ref=spec.model,
                version_ref=base.ref,
                served_model_name=spec.served_model_name or public_name(project, base.model.name),
                adapters={
                    name: {"ref": spec.adapters[name], "version": version.ref}
                    for name, version in adapter_versions.items()
                },
                engine=spec.engine,
                replicas=spec.replicas,
                options=_engine_options(spec),
                desired_state="running",
                status="pending",
                internal_key=secrets.token_urlsafe(32),
                created_by=principal.user_id if principal else None,
            )
        )
        if deployment.served_model_name in deployment.adapters:
            raise InvalidInput(
                f"adapters: {deployment.served_model_name!r} is also the base model's served name; "
                "rename the adapter or set served_model_name"
            )
        self._pin(deployment)
        return deployment

    def get(self, project: Project, deployment_id: str) -> Deployment:
        return self.repo.get_or_raise(project.id, deployment_id)

    def list_in(self, project: Project) -> list[Deployment]:
        return self.repo.list_in(project.id)

    def stop(self, project: Project, deployment_id: str) -> Deployment:
        """Ask for the replicas to stop and release the pins (the versions may be deleted again)."""
        deployment = self.get(project, deployment_id)
        if deployment.desired_state == "stopped":
            return deployment
        deployment.desired_state = "stopped"
        # Nobody runs it (never picked up, or its server is down): it is stopped right away.
        deployment.status = "stopping" if deployment.supervisor_id else "stopped"
        self.repo.touch(deployment)
        self._unpin(deployment)
        return deployment

    def start(self, project: Project, deployment_id: str) -> Deployment:
        """Serve a stopped deployment again (the same versions; refused if one was deleted meanwhile)."""
        deployment = self.get(project, deployment_id)
        if deployment.desired_state == "running":
            return deployment
        try:
            self._pin(deployment)
        except NotFound as error:
            raise Conflict(
                f"deployment {deployment.id} cannot start again: {error.message}; create a new deployment"
            ) from None
        deployment.desired_state, deployment.status = "running", "pending"
        self.repo.touch(deployment)
        return deployment

    def delete(self, project: Project, deployment_id: str) -> None:
        """Forget the deployment; its supervisor stops the replicas on its next pass."""
        deployment = self.get(project, deployment_id)
        if deployment.desired_state == "running":
            self._unpin(deployment)
        self.repo.delete(deployment)

    def notify(self) -> None:
        """Wake the local supervisor (after the commit) so that changes take effect at once."""
        if self.supervisor is not None:
            self.supervisor.wake()

    def to_read(self, project: Project, deployment: Deployment) -> DeploymentRead:
        replicas = self.repo.replicas_of(deployment.id)
        return _read(project, deployment, replicas)

    def list_read(self, project: Project) -> list[DeploymentRead]:
        deployments = self.list_in(project)
        replicas = self.repo.replicas_of_many([d.id for d in deployments])
        return [_read(project, d, replicas[d.id]) for d in deployments]

    def router_config(
        self, project: Project, classifier: str = "keyword", *, with_keys: bool = True
    ) -> RouterConfigRead:
        """The router's experts config for the project's running deployments.

        One expert per served model (the base and each adapter) of each deployment, its running
        replicas as upstreams; names that clash between deployments get the deployment id appended.

        Raises:
            Conflict: no deployment of the project has a running replica.
        """
        deployments = self.repo.running_in(project.id)
        replicas = self.repo.replicas_of_many([d.id for d in deployments])
        served = [
            (
                deployment,
                name,
                [r.endpoint for r in replicas[deployment.id] if r.status == "running" and r.endpoint],
            )
            for deployment in deployments
            for name in [deployment.served_model_name, *deployment.adapters]
        ]
        served = [(deployment, name, urls) for deployment, name, urls in served if urls]
        if not served:
            raise Conflict(
                f"project {project.name} has no running deployment; deploy a model (POST .../deployments) "
                "and wait for status running"
            )
        names = [name for _, name, _ in served]
        experts, environment = [], {}
        for deployment, name, urls in served:
            variable = key_variable(deployment.id)
            environment[variable] = deployment.internal_key
            expert = name if names.count(name) == 1 else f"{name}-{deployment.id[:8]}"
            experts.append(
                {
                    "name": expert,
                    "description": f"{name} of deployment {deployment.id} ({_public_ref(project, deployment.version_ref)})",
                    "upstreams": [
                        {"url": f"{url}/v1", "model": name, "api_key_env": variable} for url in urls
                    ],
                }
            )
        config = {"default": experts[0]["name"], "classifier": {"type": classifier}, "experts": experts}
        return RouterConfigRead(config=config, environment=environment if with_keys else None)

    def _pin(self, deployment: Deployment) -> None:
        holder = pin_holder(deployment.id)
        for ref in _version_refs(deployment):
            self.registry.pin(ref, holder)

    def _unpin(self, deployment: Deployment) -> None:
        holder = pin_holder(deployment.id)
        for ref in _version_refs(deployment):
            try:
                self.registry.unpin(ref, holder)
            except NotFound:
                continue  # the version is gone already: nothing left to hold


def _engine_options(spec: DeploymentCreate) -> dict[str, int | str]:
    """The ``largeforge serve`` options a deployment passes on (only those that were set)."""
    options = {
        "max_num_seqs": spec.max_num_seqs,
        "max_model_len": spec.max_model_len,
        "dtype": spec.dtype if spec.engine == "hf" else None,
    }
    return {key: value for key, value in options.items() if value is not None}


def _version_refs(deployment: Deployment) -> list[str]:
    return [deployment.version_ref, *(item["version"] for item in deployment.adapters.values())]


def _check_engine(engine: str, version: ModelVersion) -> None:
    if engine == "llamacpp" and version.kind != "gguf":
        raise InvalidInput(
            f"engine llamacpp serves GGUF versions; this one is a {version.kind} model: export it to GGUF "
            "first (an export job with format gguf) or use engine hf"
        )
    if engine == "hf" and version.kind == "gguf":
        raise InvalidInput("a GGUF version needs engine llamacpp")


_REGISTRY_REF = re.compile(r"^(?P<name>.+):(?P<version>\d+)$")


def _public_ref(project: Project, registry_ref: str) -> str:
    match = _REGISTRY_REF.match(registry_ref)
    if match is None:
        return registry_ref
    return f"{public_name(project, match['name'])}:{match['version']}"


def _read(project: Project, deployment: Deployment, replicas: list[DeploymentReplica]) -> DeploymentRead:
    return DeploymentRead(
        id=deployment.id,
        project_id=deployment.project_id,
        model=deployment.model_ref,
        version=_public_ref(project, deployment.version_ref),
        served_model_name=deployment.served_model_name,
        adapters={name: _public_ref(project, item["version"]) for name, item in deployment.adapters.items()},
        models=[deployment.served_model_name, *deployment.adapters],
        engine=deployment.engine,
        replicas=deployment.replicas,
        desired_state=deployment.desired_state,
        status=deployment.status,
        endpoint=GATEWAY_PATH.format(project_id=deployment.project_id, deployment_id=deployment.id),
        instances=[
            ReplicaRead(
                number=r.number,
                status=r.status,
                healthy=r.status == "running",
                endpoint=r.endpoint,
                pid=r.pid,
                restarts=r.restarts,
                last_error=r.last_error,
                started_at=r.started_at,
            )
            for r in replicas
        ],
        options=deployment.options,
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
    )


__all__ = ["GATEWAY_PATH", "DeploymentService", "key_variable", "pin_holder"]
