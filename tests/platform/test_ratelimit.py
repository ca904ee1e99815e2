"""Rate limits per API key: the sliding window, the policy, the 429 over HTTP, and one limit shared by
two API processes through Redis."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from largeforge.errors import Overloaded, Unavailable
from largeforge.platform.app import create_platform_app
from largeforge.platform.auth.principal import Principal
from largeforge.platform.auth.service import AuthService
from largeforge.platform.deps import make_session_factory
from largeforge.platform.ratelimit import (
    MemoryWindowCounter,
    RateLimiter,
    RedisWindowCounter,
    build_rate_limiter,
)
from largeforge.settings import Settings
from tests.conftest import _free_port
from tests.platform.conftest import PASSWORD, make_cast
from tests.platform.server_process import ServerProcess, start_server


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key_principal(prefix: str = "lf_aaaa1111", rpm: int | None = None, tpm: int | None = None) -> Principal:
    return Principal(
        user_id="u1",
        email="dev@example.com",
        is_admin=False,
        via="key",
        api_key_id="k1",
        api_key_prefix=prefix,
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
    )


# --- the window -----------------------------------------------------------------------------------


def test_window_slides_second_by_second() -> None:
    clock = FakeClock()
    counter = MemoryWindowCounter(clock)
    assert counter.hit("k", cost=2, limit=3, need=1) is None
    clock.now += 30
    assert counter.hit("k", cost=1, limit=3, need=1) is None
    clock.now += 15
    # full: the 2 from t=0 leave at t=60, i.e. 15 s from now
    assert counter.hit("k", cost=1, limit=3, need=1) == pytest.approx(15)
    clock.now += 14.5
    assert counter.hit("k", cost=1, limit=3, need=1) == pytest.approx(0.5)
    clock.now += 0.5
    assert counter.hit("k", cost=1, limit=3, need=1) is None  # t=60: the first bucket left
    assert counter.hit("k", cost=1, limit=3, need=1) is None
    # now t=30 (1) + t=60 (2) = 3: full until the t=30 bucket leaves at t=90
    assert counter.hit("k", cost=1, limit=3, need=1) == pytest.approx(30)
    assert counter.hit("other", cost=1, limit=3, need=1) is None  # keys are independent


def test_window_is_exact_under_threads() -> None:
    counter = MemoryWindowCounter()
    accepted: list[int] = []

    def hammer() -> None:
        accepted.append(sum(counter.hit("k", cost=1, limit=100, need=1) is None for _ in range(50)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(accepted) == 100


# --- the policy -----------------------------------------------------------------------------------


def test_key_limit_overrides_default_and_message_names_the_key() -> None:
    clock = FakeClock()
    limiter = RateLimiter(MemoryWindowCounter(clock), default_rpm=5, default_tpm=0)
    strict = key_principal("lf_strict00", rpm=2)
    limiter.check_request(strict)
    clock.now += 10
    limiter.check_request(strict)
    with pytest.raises(Overloaded) as refused:
        limiter.check_request(strict)
    assert refused.value.message == "rate limit of 2 requests/min for key lf_strict00; retry after 50 s"
    assert refused.value.retry_after == 50
    # the default applies to a key without its own limit, in its own budget
    loose = key_principal("lf_loose000")
    for _ in range(5):
        limiter.check_request(loose)
    with pytest.raises(Overloaded):
        limiter.check_request(loose)
    # 0 = unlimited
    unlimited = key_principal("lf_free0000", rpm=0)
    for _ in range(50):
        limiter.check_request(unlimited)


def test_sessions_are_limited_per_user() -> None:
    limiter = RateLimiter(MemoryWindowCounter(), default_rpm=1, default_tpm=0)
    alice = Principal(user_id="alice", email="alice@example.com", is_admin=False, via="session")
    limiter.check_request(alice)
    with pytest.raises(Overloaded, match=r"for user alice@example\.com"):
        limiter.check_request(alice)
    limiter.check_request(Principal(user_id="bob", email="bob@example.com", is_admin=False, via="session"))


def test_tokens_are_refused_once_the_charged_total_reaches_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(MemoryWindowCounter(clock), default_rpm=0, default_tpm=100)
    caller = key_principal()
    limiter.check_tokens(caller)
    limiter.charge_tokens(caller, 60)
    limiter.check_tokens(caller)
    clock.now += 20
    limiter.charge_tokens(caller, 70)  # a request may overshoot: its size is known only afterwards
    with pytest.raises(Overloaded) as refused:
        limiter.check_tokens(caller)
    # 130 used: the 60 from t=0 must leave (at t=60, 40 s from now) before there is room
    assert refused.value.retry_after == 40
    assert "token limit of 100 tokens/min for key lf_aaaa1111" in refused.value.message
    clock.now += 40
    limiter.check_tokens(caller)
    limiter.check_tokens(key_principal(tpm=0))  # unlimited


def test_settings_choose_the_counter(redis_url: str) -> None:
    memory = build_rate_limiter(Settings(rate_limit_rpm=7, rate_limit_tpm=9))
    assert isinstance(memory.counter, MemoryWindowCounter)
    assert (memory.default_rpm, memory.default_tpm) == (7, 9)
    shared = build_rate_limiter(Settings(redis_url=redis_url))
    try:
        assert isinstance(shared.counter, RedisWindowCounter)
        assert shared.default_rpm == 600 and shared.default_tpm == 1_000_000
    finally:
        shared.close()


# --- over HTTP ------------------------------------------------------------------------------------


def test_429_with_retry_after_per_key(platform_db: str) -> None:
    limiter = RateLimiter(MemoryWindowCounter(), default_rpm=3, default_tpm=0)
    app = create_platform_app(database_url=platform_db, rate_limiter=limiter)
    with make_session_factory(platform_db)() as session:
        cast = make_cast(session)
        user = AuthService(session).repo.user_by_email("viewer@example.com")
        assert user is not None
        own_limit = AuthService(session).create_key(user, "slow", requests_per_minute=1)
        session.commit()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        statuses = [
            client.get("/api/v1/auth/me", headers=cast.auth("developer")).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        refused = client.get("/api/v1/auth/me", headers=cast.auth("developer"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        error = refused.json()["error"]
        assert error["code"] == "overloaded" and error["request_id"] == refused.headers["x-request-id"]
        assert "rate limit of 3 requests/min for key lf_" in error["message"]
        # another key has its own budget; a key's own limit beats the default
        assert client.get("/api/v1/auth/me", headers=cast.auth("viewer")).status_code == 200
        slow = {"Authorization": f"Bearer {own_limit.secret}"}
        assert client.get("/api/v1/auth/me", headers=slow).status_code == 200
        assert client.get("/api/v1/auth/me", headers=slow).status_code == 429
        # unauthenticated endpoints are not counted against anyone
        assert all(client.get("/health").status_code == 200 for _ in range(5))
    limiter.close()


# --- Redis ----------------------------------------------------------------------------------------


def test_redis_counter_matches_the_memory_one(redis_url: str) -> None:
    counter = RedisWindowCounter(redis_url, namespace=f"test:{time.time_ns()}")
    try:
        assert [counter.hit("k", cost=1, limit=3, need=1) for _ in range(3)] == [None, None, None]
        retry = counter.hit("k", cost=1, limit=3, need=1)
        assert retry is not None and 58 < retry <= 60
        assert counter.hit("other", cost=1, limit=3, need=1) is None
        assert counter.hit("k", cost=0, limit=0, need=0) is None  # limit 0: never refused
        assert counter.hit("tokens", cost=500, limit=0, need=0) is None
        assert counter.hit("tokens", cost=0, limit=500, need=1) is not None
        assert counter.hit("tokens", cost=0, limit=501, need=1) is None
    finally:
        counter.close()


def test_unreachable_redis_is_a_clear_503_error() -> None:
    counter = RedisWindowCounter(f"redis://127.0.0.1:{_free_port()}/0")
    try:
        with pytest.raises(Unavailable, match=r"did not answer.*LARGEFORGE_REDIS_URL"):
            counter.hit("k", cost=1, limit=3, need=1)
    finally:
        counter.close()


@pytest.mark.slow
def test_two_api_processes_share_one_limit(
    database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One key (100 requests/min) hammered alternately on two server processes: about 100 pass in
    total, not 100 per process."""
    with make_session_factory(database_url)() as session:
        auth = AuthService(session)
        user = auth.create_user("burst@example.com", PASSWORD)
        secret = auth.create_key(user, "burst", requests_per_minute=100).secret
        session.commit()
    monkeypatch.setenv("LARGEFORGE_REDIS_URL", redis_url)
    servers: list[ServerProcess] = []
    try:
        for _ in range(2):
            servers.append(start_server(tmp_path, "--no-worker", "--no-supervisor"))
        headers = {"Authorization": f"Bearer {secret}"}
        accepted = {server.url: 0 for server in servers}
        refused = {server.url: 0 for server in servers}
        with httpx.Client(headers=headers, timeout=30) as client:
            for i in range(160):
                server = servers[i % 2]
                response = client.get(f"{server.url}/api/v1/auth/me")
                assert response.status_code in (200, 429), response.text
                if response.status_code == 200:
                    accepted[server.url] += 1
                else:
                    refused[server.url] += 1
                    assert int(response.headers["retry-after"]) >= 1
        total = sum(accepted.values())
        assert abs(total - 100) <= 5, (accepted, refused)
        # both processes took part on both sides of the limit
        assert all(n > 30 for n in accepted.values()) and all(n > 20 for n in refused.values())
    finally:
        for server in servers:
            assert server.stop() == 0, server.log_path.read_text()[-2000:]
