"""All SQL of evaluation results. Never commits: the service owns the transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from largeforge.errors import NotFound
from largeforge.evaluation.orm import EvalResult


class EvalResultRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, result: EvalResult) -> EvalResult:
        self._session.add(result)
        self._session.flush()
        return result

    def get(self, result_id: str) -> EvalResult | None:
        return self._session.get(EvalResult, result_id)

    def get_or_raise(self, result_id: str) -> EvalResult:
        if (result := self.get(result_id)) is None:
            raise NotFound(f"evaluation result {result_id} does not exist; `largeforge eval list` shows them")
        return result

    def latest(self, target: str, suite_digest: str) -> EvalResult | None:
        """The newest result of ``target`` on exactly this suite (same digest), if any."""
        stmt = (
            select(EvalResult)
            .where(EvalResult.target == target, EvalResult.suite_digest == suite_digest)
            .order_by(EvalResult.created_at.desc())
            .limit(1)
        )
        return self._session.scalars(stmt).first()

    def list(
        self,
        *,
        target: str | None = None,
        suite_name: str | None = None,
        version_id: str | None = None,
        limit: int = 50,
    ) -> list[EvalResult]:
        """Newest first, optionally filtered."""
        stmt = select(EvalResult).order_by(EvalResult.created_at.desc()).limit(limit)
        if target is not None:
            stmt = stmt.where(EvalResult.target == target)
        if suite_name is not None:
            stmt = stmt.where(EvalResult.suite_name == suite_name)
        if version_id is not None:
            stmt = stmt.where(EvalResult.version_id == version_id)
        return list(self._session.scalars(stmt))


__all__ = ["EvalResultRepository"]
