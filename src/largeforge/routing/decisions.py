"""The decision log: one JSON line per routed request, and one per piece of feedback.

Owns the record shapes and the append-only file (``<home>/router/decisions.jsonl`` by default). The
log is the learned classifier's training data (:mod:`.learning` joins feedback to decisions by
response id) and the audit trail of who was routed where. A decision line holds the time, request
and response ids, a hash of the prompt (the text too unless ``decisions.log_prompts`` is false), the
scores, the chosen expert and why, the upstream, latency, tokens and the outcome.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DecisionLog:
    """Appends records to a JSON-lines file (line-buffered, so a crash loses at most the line being written)."""

    def __init__(self, path: Path, *, log_prompts: bool) -> None:
        self.path = path
        self.log_prompts = log_prompts
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def decision(self, **fields: Any) -> None:
        """Record a routed request; ``prompt`` is replaced by its hash unless prompts are logged."""
        prompt = fields.pop("prompt", "")
        record = {"event": "decision", "time": round(time.time(), 3), "prompt_hash": prompt_hash(prompt)}
        if self.log_prompts:
            record["prompt"] = prompt
        self._write({**record, **fields})

    def feedback(
        self, response_id: str, *, rating: float | None, expert: str | None, comment: str | None
    ) -> None:
        self._write(
            {
                "event": "feedback",
                "time": round(time.time(), 3),
                "response_id": response_id,
                "rating": rating,
                "expert": expert,
                "comment": comment,
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        self._file.close()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed record of a log; a torn last line (a crash mid-write) is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except ValueError:
                continue


__all__ = ["DecisionLog", "prompt_hash", "read_records"]
