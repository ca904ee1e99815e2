"""Server-sent events of one job, read from ``job_events`` (so any API replica can serve any job).

The stream sends the stored events after a sequence number, then polls for new ones until the job
reaches a terminal state and every event before it has been sent; it ends with an ``end`` event
carrying that state. Each event's ``id`` is its ``seq``: a client that reconnects with
``Last-Event-ID`` (or ``?after=``) continues where it stopped, without gaps or repeats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from sqlalchemy.orm import Session, sessionmaker

from largeforge.platform.jobs.orm import TERMINAL_STATES, JobEvent
from largeforge.platform.jobs.repository import JobRepository

KEEPALIVE_SECONDS = 15.0


def format_event(event: JobEvent) -> str:
    data = {"seq": event.seq, "time": event.time.isoformat(), "type": event.type, "data": event.data}
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(data, default=str)}\n\n"


def follow_job_events(
    session_factory: sessionmaker[Session], job_id: str, after: int, *, poll_seconds: float = 0.5
) -> Iterator[str]:
    """SSE frames of ``job_id``'s events with ``seq > after``, following the job until it ends."""
    last_sent = time.monotonic()
    while True:
        with session_factory() as session:
            repo = JobRepository(session)
            # The state first: a terminal state is committed with its own (last) event, so once it is
            # seen, reading events until none are left sends everything.
            state = repo.state_of(job_id)
            events = repo.events_after(job_id, after)
        for event in events:
            after = event.seq
            yield format_event(event)
        if events:
            last_sent = time.monotonic()
            continue
        if state is None or state in TERMINAL_STATES:
            yield f"event: end\ndata: {json.dumps({'state': state, 'last_seq': after})}\n\n"
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"  # also how a vanished client is noticed
            last_sent = time.monotonic()
        time.sleep(poll_seconds)


__all__ = ["follow_job_events", "format_event"]
