"""Evaluation use cases: evaluate a target on a suite, store the result, file it on the registry version.

Owns the transactions. A model never runs inside one: the target is resolved in a short registry
transaction, the suite runs with no database session open (minutes, on a GPU or an endpoint), and
the result is written (with the registry version's metrics) in a second short transaction.

Stored results are reused only for registry versions (``reuse=True``): a version's files never change,
so the same suite digest means the same questions to the same model. A path or an endpoint can change
behind the same name, so they always run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC
from typing import Any

from sqlalchemy.orm import Session

from largeforge.errors import InvalidInput
from largeforge.evaluation.metrics import PerplexityResult
from largeforge.evaluation.orm import EvalResult
from largeforge.evaluation.repository import EvalResultRepository
from largeforge.evaluation.runner import EvalRun, flat_metrics, run_suite
from largeforge.evaluation.suites import Suite, suite_digest
from largeforge.evaluation.targets import ResolvedTarget, TargetSpec, open_target, resolve_target
from largeforge.progress import ProgressReporter
from largeforge.registry.service import RegistryService


@dataclass(frozen=True)
class EvaluationRecord:
    """A stored evaluation, as every caller (CLI, compare, gates, API) sees it."""

    id: str
    suite: str
    suite_digest: str
    target: str
    target_kind: str
    version: str | None
    summary: dict[str, Any]
    cases: list[dict[str, Any]]
    created_at: str
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def registry_metrics(suite: str, summary: dict[str, Any]) -> dict[str, float]:
    """The summary as registry metrics: ``eval/<suite>/pass_rate``, ``eval/<suite>/check/json`` …"""
    return {f"eval/{suite}/{key}": value for key, value in flat_metrics(summary).items()}


class EvaluationService:
    def __init__(self, session: Session, registry: RegistryService) -> None:
        self.repo = EvalResultRepository(session)
        self.registry = registry

    def record(self, run: EvalRun, target: ResolvedTarget) -> EvaluationRecord:
        """Store ``run``; a registry version (or a path with its exact files) also gets the metrics."""
        row = self.repo.add(
            EvalResult(
                suite_name=run.suite,
                suite_digest=run.suite_digest,
                target=target.label,
                target_kind=target.kind,
                version_id=target.version_id,
                summary=run.summary,
                cases=[case.to_dict() for case in run.cases],
            )
        )
        if target.version_ref is not None:
            self.registry.add_metrics(target.version_ref, registry_metrics(run.suite, run.summary))
        return self.to_record(row)

    def latest(self, target: ResolvedTarget, digest: str) -> EvaluationRecord | None:
        row = self.repo.latest(target.label, digest)
        return self.to_record(row, reused=True) if row is not None else None

    def to_record(self, row: EvalResult, *, reused: bool = False) -> EvaluationRecord:
        version = self.registry.repo.get_version_by_id(row.version_id) if row.version_id else None
        return EvaluationRecord(
            id=row.id,
            suite=row.suite_name,
            suite_digest=row.suite_digest,
            target=row.target,
            target_kind=row.target_kind,
            version=version.ref if version is not None else None,
            summary=row.summary,
            cases=row.cases,
            created_at=row.created_at.astimezone(UTC).isoformat(timespec="seconds"),
            reused=reused,
        )


@contextmanager
def open_evaluation(database_url: str | None = None) -> Iterator[EvaluationService]:
    """An evaluation service (with its registry) in one committed transaction."""
    from largeforge.db import session_scope
    from largeforge.registry.storage import open_artifact_store

    with session_scope(database_url) as session:
        yield EvaluationService(session, RegistryService(session, open_artifact_store()))


def resolve(spec: TargetSpec) -> ResolvedTarget:
    """Resolve a target in a short registry transaction (materialising registry versions)."""
    from largeforge.settings import get_settings

    with open_evaluation() as service:
        return resolve_target(spec, service.registry, get_settings().models_dir / "registry")


def evaluate(
    spec: TargetSpec,
    suite: Suite,
    *,
    reuse: bool = False,
    progress: ProgressReporter | None = None,
    http_client: Any | None = None,
) -> EvaluationRecord:
    """Run ``suite`` on ``spec`` (or reuse a stored result of a registry version), store and return it.

    Args:
        suite: a resolved suite (``load_suite``); its digest identifies it.
        reuse: return the newest stored result for the same registry version and suite digest.
        http_client: for endpoint targets, handed to the ``openai`` client (tests mock it).

    Raises:
        NotFound / InvalidInput / Unavailable: see ``resolve_target``, ``open_target`` and ``run_suite``.
    """
    target = resolve(spec)
    if reuse and target.kind == "registry":
        with open_evaluation() as service:
            stored = service.latest(target, suite_digest(suite))
        if stored is not None:
            return stored
    run = run_suite(suite, open_target(target, http_client=http_client), progress=progress)
    with open_evaluation() as service:
        return service.record(run, target)


def list_results(
    *, target: str | None = None, suite: str | None = None, limit: int = 50
) -> list[EvaluationRecord]:
    """Stored results, newest first; ``target`` may be a registry reference (resolved to its version)."""
    with open_evaluation() as service:
        version_id = None
        label = target
        if target is not None and service.registry.repo.get_model(target.partition(":")[0].partition("@")[0]):
            version_id, label = service.registry.get(target).id, None
        rows = service.repo.list(target=label, suite_name=suite, version_id=version_id, limit=limit)
        return [service.to_record(row) for row in rows]


def get_result(result_id: str) -> EvaluationRecord:
    """One stored result by id. Raises NotFound."""
    with open_evaluation() as service:
        return service.to_record(service.repo.get_or_raise(result_id))


def measure_perplexity(
    spec: TargetSpec, dataset: str, *, max_length: int = 1024, progress: ProgressReporter | None = None
) -> PerplexityResult:
    """Perplexity of a registry version or model directory on a dataset file or version.

    A registry version also gets ``eval/perplexity/<dataset>`` in its metrics.

    Raises:
        InvalidInput: an endpoint target (perplexity needs the weights), or unsuitable data.
    """
    from pathlib import Path

    from largeforge.evaluation.metrics import dataset_perplexity

    if spec.base_url is not None:
        raise InvalidInput(
            "perplexity needs the model's weights, not an endpoint; give a registry reference or a model directory"
        )
    target = resolve(spec)
    assert target.path is not None  # local targets always have one
    result = dataset_perplexity(
        target.path, dataset, label=target.label, max_length=max_length, progress=progress
    )
    if target.version_ref is not None:
        key = f"eval/perplexity/{Path(dataset).name if Path(dataset).exists() else dataset}"
        with open_evaluation() as service:
            service.registry.add_metrics(target.version_ref, {key: result.perplexity})
    return result


__all__ = [
    "EvaluationRecord",
    "EvaluationService",
    "evaluate",
    "get_result",
    "list_results",
    "measure_perplexity",
    "open_evaluation",
    "registry_metrics",
    "resolve",
]
