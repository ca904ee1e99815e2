"""Job use cases of the API: submit (with the spec validated by the libraries that will run it),
cancel, retry and resume. Claiming and outcomes belong to the worker (worker.py, repository.py).

A job's stored ``spec`` is what the worker runs: project-local names (datasets, models) are rewritten
to the store's and registry's names at submission, so a job never reaches another project's data and
re-running it later means the same inputs. The route that calls these methods commits.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from largeforge.errors import Conflict, InvalidInput, NotFound, Unavailable
from largeforge.platform.auth.principal import Principal
from largeforge.platform.datasets.service import qualify_recipe
from largeforge.platform.jobs.orm import Job
from largeforge.platform.jobs.repository import JobRepository
from largeforge.platform.jobs.schemas import (
    SPEC_MODELS,
    ExportJobSpec,
    PipelineJobSpec,
)
from largeforge.platform.models.service import model_belongs, registry_name, registry_ref
from largeforge.platform.projects.orm import Project

RESUMABLE_KINDS = frozenset({"train", "pipeline"})


def _spec_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in ("spec", *item["loc"]))
        message = item["msg"] if item["type"] != "extra_forbidden" else "is not a field of this job kind"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


class JobService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = JobRepository(session)

    # -- submission ---------------------------------------------------------------------------------

    def submit(
        self,
        project: Project,
        principal: Principal,
        kind: str,
        spec: dict[str, Any],
        priority: int = 0,
        max_attempts: int = 3,
        name: str | None = None,
    ) -> Job:
        """Validate ``spec`` for ``kind`` and queue the job.

        Raises:
            InvalidInput: unknown kind or a bad spec (every problem listed with its path).
            NotFound: a dataset or model the project does not own.
            Unavailable: the spec asks for something this installation lacks (deployments).
        """
        resolved = self.resolve_spec(project, kind, spec)
        job = self.repo.add(
            Job(
                project_id=project.id,
                name=name,
                kind=kind,
                spec=resolved,
                state="queued",
                priority=priority,
                max_attempts=max_attempts,
                attempts=0,
                cancel_requested=False,
                restart_requested=False,
                event_seq=0,
                created_by=principal.user_id,
                api_key_id=principal.api_key_id,
            )
        )
        self.repo.record_state(job, audit=False, details={"submitted_by": principal.label})
        return job

    def resolve_spec(self, project: Project, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec as the worker will run it: validated, with project names made global."""
        model = SPEC_MODELS.get(kind)
        if model is None:
            raise InvalidInput(f"kind: {kind!r} is not a job kind; use one of {', '.join(SPEC_MODELS)}")
        try:
            parsed = model.model_validate(spec)
        except ValidationError as exc:
            raise InvalidInput(
                f"the {kind} spec has {exc.error_count()} problem(s):\n{_spec_errors(exc)}"
            ) from exc
        document = parsed.model_dump(mode="json", exclude_none=True, by_alias=True)
        if kind == "train":
            document["recipe"] = self._resolve_recipe(project, document["recipe"])
        elif kind == "evaluate":
            document["suite"] = _check_suite(self.session, project, document["suite"])
            document["model"] = self.resolve_model(project, document["model"])
        elif kind == "export":
            self._resolve_export(project, document, ExportJobSpec.model_validate(spec))
        else:
            self._resolve_pipeline(project, document, PipelineJobSpec.model_validate(spec))
        return document

    def _resolve_recipe(self, project: Project, recipe: dict[str, Any]) -> dict[str, Any]:
        from largeforge.training.recipe import validate_recipe

        document = qualify_recipe(self.session, project, copy.deepcopy(recipe))
        try:
            validate_recipe(document)
        except InvalidInput as exc:
            raise InvalidInput(f"spec.recipe: {exc.message}") from exc
        document["model"] = self.resolve_model(project, str(document["model"]))
        register = document.get("register_as")
        if isinstance(register, dict) and isinstance(register.get("name"), str):
            register["name"] = registry_name(project, register["name"])
        return document

    def _resolve_export(self, project: Project, document: dict[str, Any], spec: ExportJobSpec) -> None:
        document["model"] = self.resolve_model(project, spec.model)
        base = spec.model.split(":")[0].split("@")[0]
        document["name"] = registry_name(project, spec.name or f"{base}-{spec.format}")

    def _resolve_pipeline(self, project: Project, document: dict[str, Any], spec: PipelineJobSpec) -> None:
        if spec.gate is not None and spec.suite is None:
            raise InvalidInput("spec.gate: a gate holds an evaluation to minimums; add spec.suite")
        if spec.deploy is not None:
            _require_deployments()
        recipe = dict(document["recipe"])
        recipe.pop("register_as", None)  # the pipeline's register step decides the name
        document["recipe"] = self._resolve_recipe(project, recipe)
        document["register"]["name"] = registry_name(project, spec.register_step.name)
        document["register"]["public_name"] = spec.register_step.name
        document["recipe"]["register_as"] = {"name": document["register"]["name"]}
        if spec.suite is not None:
            document["suite"] = _check_suite(self.session, project, document["suite"])

    def resolve_model(self, project: Project, reference: str) -> str:
        """This project's model reference (``NAME``, ``NAME:N``, ``NAME@ALIAS``) as a registry reference.

        A hub id (``org/name``) is kept as is. A directory is kept only inside the allowed model roots
        (``LARGEFORGE_JOB_MODEL_ROOTS``, default ``<home>/base-models``): base models live there, and no
        job may read another project's files by path. Another project's model is as unknown as a
        missing one.

        Raises:
            NotFound: not one of the project's models. InvalidInput: not a model reference at all, or a
                path outside the allowed roots.
        """
        if "\x00" in reference:
            raise InvalidInput("model: a model reference cannot contain NUL characters")
        if _looks_like_path(reference):
            return _allowed_model_path(reference)
        if _HUB_ID.match(reference):
            return reference
        qualified = registry_ref(project, reference)
        name = qualified.split("@")[0].split(":")[0]
        if not model_belongs(self.session, project, name):
            raise NotFound(
                f"model {reference!r}: project {project.name} has no such model; register one first "
                "(a train job with register_as, or a pipeline)"
            )
        return qualified

    # -- state changes by people --------------------------------------------------------------------

    def cancel(self, project: Project, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one is flagged and its worker kills it."""
        job = self.repo.lock_or_raise(project.id, job_id)
        if job.state == "queued":
            job.state = "cancelled"
            job.finished_at = _now()
            self.session.flush()
            self.repo.record_state(job, audit=False)
        elif job.state == "running":
            if not job.cancel_requested:
                job.cancel_requested = True
                self.session.flush()
                self.repo.add_events(job.id, [("log", {"message": "cancel requested"})])
        else:
            raise Conflict(f"job {job.id} already {job.state}; only queued or running jobs can be cancelled")
        return job

    def retry(self, project: Project, job_id: str) -> Job:
        """Run a failed or cancelled job again from the start (a new run; attempts start over)."""
        job = self._requeue(project, job_id, "retry")
        job.restart_requested = True
        self.session.flush()
        self.repo.record_state(job, audit=False, details={"requeued_by": "retry"})
        return job

    def resume(self, project: Project, job_id: str) -> Job:
        """Continue a failed or cancelled train or pipeline job from its run's last checkpoint."""
        job = self._requeue(project, job_id, "resume")
        if job.kind not in RESUMABLE_KINDS:
            raise InvalidInput(
                f"job {job.id} is a {job.kind} job, which keeps no checkpoints; use retry to run it again"
            )
        job.restart_requested = False
        self.session.flush()
        self.repo.record_state(job, audit=False, details={"requeued_by": "resume"})
        return job

    def _requeue(self, project: Project, job_id: str, verb: str) -> Job:
        job = self.repo.lock_or_raise(project.id, job_id)
        if job.state not in ("failed", "cancelled"):
            raise Conflict(f"job {job.id} is {job.state}; only failed or cancelled jobs can be {verb}d")
        job.state = "queued"
        job.attempts = 0
        job.cancel_requested = False
        job.not_before = None
        job.error = None
        job.result = None
        job.finished_at = None
        return job


def _now() -> Any:
    from largeforge.db import utcnow

    return utcnow()


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def _looks_like_path(reference: str) -> bool:
    """Paths start with /, . or ~, or have a slash and exist; ``org/name`` that does not exist is a hub id."""
    return reference.startswith(("/", ".", "~", "\\")) or ("/" in reference and Path(reference).exists())


def _allowed_model_path(reference: str) -> str:
    """``reference`` resolved, when it lies inside an allowed model root."""
    from largeforge.settings import get_settings

    roots = get_settings().allowed_model_roots()
    path = Path(reference).expanduser().resolve()
    if not any(path == root or path.is_relative_to(root) for root in roots):
        shown = ", ".join(str(root) for root in roots)
        raise InvalidInput(
            f"model: {reference!r} is a path outside the directories jobs may load models from ({shown}); "
            "use one of the project's models (NAME, NAME:N, NAME@ALIAS), put the base model under one of "
            "those directories, or have the operator add its directory to LARGEFORGE_JOB_MODEL_ROOTS"
        )
    return str(path)


def _check_suite(session: Session, project: Project, document: dict[str, Any]) -> dict[str, Any]:
    """The suite validated by the evaluation library, its ``cases_from`` dataset made the project's
    stored version (never a file on the server)."""
    from largeforge.data.versions import open_dataset_store
    from largeforge.evaluation.suites import validate_suite
    from largeforge.platform.datasets.service import DatasetService

    try:
        suite = validate_suite(document)
    except InvalidInput as exc:
        raise InvalidInput(f"spec.suite: {exc.message}") from exc
    if suite.cases_from is None:
        return document
    reference = suite.cases_from.dataset
    if "/" in reference or "\\" in reference:
        raise InvalidInput(
            f"spec.suite.cases_from.dataset: {reference!r} looks like a file path; upload the file as a "
            "dataset of the project and name it here"
        )
    try:
        version = DatasetService(session, open_dataset_store()).resolve(project, reference)
    except NotFound as exc:
        raise NotFound(f"spec.suite.cases_from.dataset: {exc.message}") from exc
    cases_from = suite.cases_from.model_dump(mode="json") | {"dataset": version.version_id}
    return {**document, "cases_from": cases_from}


def _require_deployments() -> None:
    try:
        from largeforge.platform.deployments.service import DeploymentService  # noqa: F401
    except ImportError as exc:
        raise Unavailable(
            "spec.deploy: this installation has no deployments service; submit the pipeline without "
            "deploy and deploy the registered version later"
        ) from exc


__all__ = ["RESUMABLE_KINDS", "JobService"]
