"""Server-sent events: turning the lines of a ``text/event-stream`` body into events.

Only the parsing lives here (the WHATWG rules: ``id:``, ``event:``, ``data:`` fields, a blank line
ends an event, ``:`` starts a comment such as a keep-alive); reconnecting is the caller's job
because only it knows when a stream is finished.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerEvent:
    """One event: ``id`` is the server's sequence number (for resuming), ``data`` its JSON payload
    (or the raw text when the payload is not JSON)."""

    id: str | None
    event: str
    data: Any
    time: str | None = None  # when the server recorded it, where the stream says (ISO 8601)

    @property
    def seq(self) -> int | None:
        """The id as an integer, when it is one (the jobs API numbers its events)."""
        return int(self.id) if self.id is not None and self.id.isdigit() else None


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Yield each complete event of ``lines`` (line breaks already removed); an unfinished last
    event (the connection broke mid-event) is dropped, as the spec says.

    ``id`` is the id this event carried, or None (a browser would keep the previous one as its
    ``lastEventId``; the caller keeps its own, see ``Jobs.events``)."""
    event_id: str | None = None
    event_type = ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                yield ServerEvent(id=event_id, event=event_type or "message", data=_decode(text))
            event_id, event_type, data = None, "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            event_id = value


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


__all__ = ["ServerEvent", "parse_events"]
