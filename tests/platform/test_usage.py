"""The usage API: sums of what the gateway metered, per key, deployment, model and UTC day, in a window
(SQLite and PostgreSQL). The gateway's own metering runs against a real replica in test_deployments.py."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from largeforge.platform.auth.orm import ApiKey
from largeforge.platform.deps import make_session_factory
from largeforge.platform.usage.orm import UsageRecord
from largeforge.platform.usage.service import UsageEntry, record_usage
from tests.platform.conftest import Cast


def _record(
    url: str, project: str, key: str | None, deployment: str, tokens: tuple[int, int], at: datetime
) -> None:
    factory = make_session_factory(url)
    record_usage(
        factory,
        UsageEntry(
            project_id=project,
            deployment_id=deployment,
            api_key_id=key,
            user_id=None,
            model="tiny",
            endpoint="chat/completions",
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            status_code=200,
            streamed=False,
            duration_ms=5,
        ),
    )
    with factory() as session:  # the recorder stamps "now"; move the row to the time under test
        newest = session.scalar(select(UsageRecord.id).order_by(UsageRecord.id.desc()).limit(1))
        session.execute(update(UsageRecord).where(UsageRecord.id == newest).values(time=at))
        session.commit()


def _key_id(url: str, name: str) -> str:
    with make_session_factory(url)() as session:
        return session.scalars(select(ApiKey.id).where(ApiKey.name == name)).one()


def test_usage_sums_per_key_deployment_and_day(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    alpha, beta = cast.projects["alpha"], cast.projects["beta"]
    dev, viewer = _key_id(platform_db, "developer-key"), _key_id(platform_db, "viewer-key")
    day1, late1, day2 = (
        datetime(2026, 3, 1, 9, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, tzinfo=UTC),
        datetime(2026, 3, 2, 0, 1, tzinfo=UTC),
    )
    _record(platform_db, alpha, dev, "d1", (10, 5), day1)
    _record(platform_db, alpha, dev, "d2", (7, 3), late1)
    _record(platform_db, alpha, viewer, "d1", (1, 1), day2)
    _record(platform_db, alpha, None, "d1", (2, 0), day2)  # a browser session: no key
    _record(platform_db, beta, None, "d9", (100, 100), day1)  # another project's: never counted here
    url, headers = f"/api/v1/projects/{alpha}/usage", cast.auth("viewer")

    by_key = platform_client.get(url, params={"group_by": "key"}, headers=headers).json()
    sums = {
        g["group"]: (g["requests"], g["prompt_tokens"], g["completion_tokens"], g["total_tokens"])
        for g in by_key["data"]
    }
    assert sums == {dev: (2, 17, 8, 25), None: (1, 2, 0, 2), viewer: (1, 1, 1, 2)}
    assert by_key["data"][0]["group"] == dev  # biggest first
    assert by_key["totals"]["total_tokens"] == 29 and by_key["totals"]["requests"] == 4
    labels = {g["group"]: g["label"] for g in by_key["data"]}
    assert labels[dev].endswith(" developer-key") and labels[None] is None

    by_day = platform_client.get(url, params={"group_by": "day"}, headers=headers).json()
    assert [(g["group"], g["requests"], g["total_tokens"]) for g in by_day["data"]] == [
        ("2026-03-01", 2, 25),
        ("2026-03-02", 2, 4),
    ]
    window = platform_client.get(
        url,
        params={"group_by": "deployment", "since": "2026-03-01T12:00:00Z", "until": "2026-03-02T00:01:00Z"},
        headers=headers,
    ).json()
    assert [(g["group"], g["requests"], g["total_tokens"]) for g in window["data"]] == [("d2", 1, 10)]
    naive = platform_client.get(
        url, params={"group_by": "model", "since": "2026-03-02T00:00:00"}, headers=headers
    ).json()
    assert [(g["group"], g["total_tokens"]) for g in naive["data"]] == [("tiny", 4)]


def test_usage_is_the_projects_and_bad_queries_say_why(platform_client: TestClient, cast: Cast) -> None:
    alpha = cast.projects["alpha"]
    url = f"/api/v1/projects/{alpha}/usage"
    assert platform_client.get(url, headers=cast.auth("outsider")).status_code == 404
    assert platform_client.get(url).status_code == 401
    wrong = platform_client.get(url, params={"group_by": "colour"}, headers=cast.auth("viewer"))
    assert wrong.status_code == 422 and "group_by" in wrong.json()["error"]["message"]
    backwards = platform_client.get(
        url,
        params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        headers=cast.auth("viewer"),
    )
    assert backwards.status_code == 422 and "must be after since" in backwards.json()["error"]["message"]
    empty = platform_client.get(url, headers=cast.auth("viewer")).json()
    assert (empty["count"], empty["totals"]["requests"]) == (0, 0)


def test_a_stream_read_to_done_is_metered_as_complete_even_if_the_client_hangs_up_at_once() -> None:
    """The client may close the connection the moment it reads [DONE], before the gateway's generator
    resumes; that is a complete answer (200), while hanging up earlier is a 499."""
    import asyncio
    from collections.abc import AsyncIterator
    from typing import Any

    from largeforge.platform.deployments.gateway import CLIENT_CLOSED, _metered

    class Meter:
        def __init__(self) -> None:
            self.finished: list[tuple[int, Any]] = []

        async def finish(self, app: Any, status: int, usage: Any = None) -> None:
            self.finished.append((status, usage))

    async def upstream() -> AsyncIterator[bytes]:
        yield b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
        yield b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}\n\n'
        yield b"data: [DONE]\n\n"

    async def read(until: bytes) -> Meter:
        meter = Meter()
        stream = _metered(upstream(), False, meter, app=None)  # type: ignore[arg-type]
        async for piece in stream:
            if until in piece:
                break
        await stream.aclose()  # what Starlette does when the client disconnects
        return meter

    complete = asyncio.run(read(b"[DONE]"))
    assert complete.finished == [(200, {"prompt_tokens": 3, "completion_tokens": 1})]
    early = asyncio.run(read(b"hi"))
    assert early.finished[0][0] == CLIENT_CLOSED
