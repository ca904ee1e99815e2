"""The response cache through a real router: exact and semantic hits, TTL, never across API keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.routing.conftest import Process, expert, fast_config


def ask(router: Process, key: str, content: str, **fields: Any) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], "temperature": 0, **fields}
    return httpx.post(
        f"{router.v1}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


@pytest.mark.parametrize("backend", ["in-process", "redis"])
def test_exact_hits_stay_within_one_api_key_and_expire(
    backend: str,
    fake_upstream: Callable[..., Process],
    router_process: Callable[..., Process],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if backend == "redis":
        monkeypatch.setenv("LARGEFORGE_REDIS_URL", request.getfixturevalue("redis_url"))
    upstream = fake_upstream("cached")
    cache = {"exact": True, "ttl_seconds": 1.5}
    router = router_process(fast_config(expert("general", upstream, cache=cache)))
    first = ask(router, "key-a", "what is a cache?")
    again = ask(router, "key-a", "what is a cache?")
    assert "x-largeforge-cache" not in first.headers
    assert again.headers["x-largeforge-cache"] == "exact" and again.json()["id"] == first.json()["id"]
    # Another key with the same request, and the same key with a project header, never see that answer.
    other_key = ask(router, "key-b", "what is a cache?")
    other_project = httpx.post(
        f"{router.v1}/chat/completions",
        json={
            "model": "auto",
            "messages": [{"role": "user", "content": "what is a cache?"}],
            "temperature": 0,
        },
        headers={"authorization": "Bearer key-a", "x-largeforge-project": "p2"},
    )
    assert "x-largeforge-cache" not in other_key.headers and "x-largeforge-cache" not in other_project.headers
    assert len({first.json()["id"], other_key.json()["id"], other_project.json()["id"]}) == 3
    # Sampled requests are not deterministic: never answered from the exact cache.
    sampled = [ask(router, "key-a", "what is a cache?", temperature=0.8) for _ in range(2)]
    assert all("x-largeforge-cache" not in r.headers for r in sampled)
    time.sleep(1.6)
    assert "x-largeforge-cache" not in ask(router, "key-a", "what is a cache?").headers  # the TTL passed
    assert (
        'largeforge_router_cache_hits_total{expert="general",kind="exact"} 1'
        in httpx.get(f"{router.url}/metrics").text
    )


@pytest.mark.slow
def test_semantic_hits_for_a_paraphrase_but_not_for_another_question_or_key(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process], embedder: Any
) -> None:
    upstream = fake_upstream("semantic")
    cache = {"exact": False, "semantic_threshold": 0.85, "ttl_seconds": 60}
    router = router_process(fast_config(expert("general", upstream, cache=cache)))
    first = ask(router, "key-a", "How do I boil an egg?")
    paraphrase = ask(router, "key-a", "how do i boil an egg")
    unrelated = ask(router, "key-a", "What is the capital of Peru?")
    other_key = ask(router, "key-b", "how do i boil an egg")
    assert (
        paraphrase.headers["x-largeforge-cache"] == "semantic"
        and paraphrase.json()["id"] == first.json()["id"]
    )
    assert "x-largeforge-cache" not in unrelated.headers and "x-largeforge-cache" not in other_key.headers
