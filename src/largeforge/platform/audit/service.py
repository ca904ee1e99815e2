"""Appending to and verifying the hash-chained audit log.

Appends take the chain's write lock by updating the single ``audit_head`` row *before* reading it,
which serializes appenders on SQLite (the write lock) and PostgreSQL (the row lock) alike, so the
chain never forks. Entries are never updated or deleted by LargeForge.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from largeforge.db import utcnow
from largeforge.platform.audit.orm import AuditEntry, AuditHead

GENESIS = "0" * 64


def entry_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """The chain hash of one entry: SHA-256 over the previous hash and the entry's canonical JSON."""
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def _hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "time": entry.time.astimezone(UTC).isoformat(),
        "actor_id": entry.actor_id,
        "actor": entry.actor,
        "api_key_id": entry.api_key_id,
        "action": entry.action,
        "resource": entry.resource,
        "project_id": entry.project_id,
        "source_ip": entry.source_ip,
        "result": entry.result,
        "request_id": entry.request_id,
        "details": entry.details or {},
    }


def append_entry(
    session: Session,
    *,
    action: str,
    result: str,
    actor_id: str | None = None,
    actor: str | None = None,
    api_key_id: str | None = None,
    resource: str | None = None,
    project_id: str | None = None,
    source_ip: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry in ``session``'s transaction (committed with whatever it records)."""
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    session.refresh(head)
    entry = AuditEntry(
        seq=head.seq,
        time=utcnow(),
        actor_id=actor_id,
        actor=actor,
        api_key_id=api_key_id,
        action=action,
        resource=resource,
        project_id=project_id,
        source_ip=source_ip,
        result=result,
        request_id=request_id,
        details=details or {},
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = entry_digest(head.hash, _hashed_fields(entry))
    head.hash = entry.hash
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    first_bad_seq: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None and self.problem is None


def verify_chain(session: Session, *, batch: int = 1000) -> VerifyReport:
    """Walk the whole chain; report the first entry whose hash, link or sequence does not hold."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
            )
        )
        if not rows:
            break
        for entry in rows:
            count += 1
            if entry.seq != expected_seq:
                return VerifyReport(
                    count, expected_seq, f"entry {expected_seq} is missing (next is {entry.seq})"
                )
            if entry.prev_hash != prev_hash:
                return VerifyReport(
                    count, entry.seq, f"entry {entry.seq} does not link to entry {entry.seq - 1}"
                )
            if entry_digest(prev_hash, _hashed_fields(entry)) != entry.hash:
                return VerifyReport(count, entry.seq, f"entry {entry.seq} was modified after it was written")
            prev_hash, expected_seq, last_seq = entry.hash, entry.seq + 1, entry.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        return VerifyReport(
            count,
            None,
            f"the chain ends at entry {last_seq} but the head says {head.seq}: entries were deleted",
        )
    return VerifyReport(count, None, None)


def query_entries(
    session: Session,
    *,
    project_id: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """Newest first; ``before_seq`` pages backwards."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if project_id is not None:
        query = query.where(AuditEntry.project_id == project_id)
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if action is not None:
        query = query.where(AuditEntry.action.contains(action))
    if since is not None:
        query = query.where(AuditEntry.time >= since)
    if until is not None:
        query = query.where(AuditEntry.time < until)
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    return list(session.scalars(query))


__all__ = ["GENESIS", "VerifyReport", "append_entry", "entry_digest", "query_entries", "verify_chain"]
