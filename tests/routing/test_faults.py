"""Replicas and faults through a real router process in front of fake upstream processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.routing.conftest import Process, expert, fast_config

CHAT = [{"role": "user", "content": "hello"}]


def client(router: Process, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=router.v1, api_key=str(kwargs.pop("api_key", "none")), max_retries=0)


def test_killing_one_of_two_replicas_under_32_concurrent_requests_fails_no_request(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    first, second = fake_upstream("one", "--delay", "0.3"), fake_upstream("two", "--delay", "0.3")
    router = router_process(fast_config(expert("general", first, second)))

    async def run() -> list[str]:
        async with httpx.AsyncClient(timeout=30) as http:

            async def one(index: int) -> str:
                response = await http.post(
                    f"{router.v1}/chat/completions", json={"model": "general", "messages": CHAT}
                )
                assert response.status_code == 200, response.text
                return str(response.json()["choices"][0]["message"]["content"])

            tasks = [asyncio.create_task(one(i)) for i in range(32)]
            await asyncio.sleep(0.15)  # every request is in flight, half of them inside `one`
            first.kill()
            return await asyncio.gather(*tasks)

    answers = asyncio.run(run())
    assert len(answers) == 32
    # Requests caught on the killed replica were retried on the other one.
    assert answers.count("answer from two") > 16
    experts = httpx.get(f"{router.url}/experts").json()["experts"][0]
    assert experts["replicas"][0]["failures"] >= 1


def test_500_is_retried_on_another_replica_then_the_fallback_answers(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    broken_a, broken_b = (
        fake_upstream("broken-a", "--fail-status", "500"),
        fake_upstream("broken-b", "--fail-status", "503"),
    )
    backup = fake_upstream("backup")
    config = fast_config(
        expert("code", broken_a, broken_b, keywords=["python"], fallbacks=["general"]),
        expert("general", backup),
    )
    router = router_process(config)
    raw = client(router).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "fix my python script"}]
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "answer from backup"
    assert raw.headers["x-largeforge-expert"] == "code"
    assert raw.headers["x-largeforge-fallback-from"] == "code"
    assert raw.headers["x-largeforge-answered-by"] == "general"
    # Both code replicas were tried (a retry goes to the other replica first) before the fallback.
    replicas = httpx.get(f"{router.url}/experts").json()["experts"][0]["replicas"]
    assert [r["failures"] >= 1 for r in replicas] == [True, True]
    metrics = httpx.get(f"{router.url}/metrics").text
    assert 'largeforge_router_upstream_failures_total{expert="code"} 3' in metrics  # retry.attempts
    assert 'largeforge_router_fallbacks_total{expert="general"} 1' in metrics


def test_a_replica_failing_its_first_request_is_retried_without_a_fallback(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    flaky = fake_upstream("flaky", "--fail-first", "1")
    router = router_process(fast_config(expert("general", flaky)))
    response = httpx.post(
        f"{router.v1}/chat/completions", json={"model": "general", "messages": CHAT}, timeout=20
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "answer from flaky"
    assert "x-largeforge-fallback-from" not in response.headers


def test_when_everything_fails_the_client_gets_an_openai_error_naming_each_try(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    broken = fake_upstream("broken", "--fail-status", "429")
    router = router_process(fast_config(expert("general", broken)))
    with pytest.raises(openai.APIStatusError) as caught:
        client(router).chat.completions.create(model="general", messages=CHAT)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert "HTTP 429" in caught.value.message and "no upstream of expert 'general'" in caught.value.message


def test_a_stream_whose_upstream_dies_ends_with_an_error_event_not_a_truncation(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    dying = fake_upstream("dying", "--die-mid-stream")
    router = router_process(fast_config(expert("general", dying)))
    received = []
    with pytest.raises(openai.APIError, match=r"failed after the stream started|before it was complete"):
        for chunk in client(router).chat.completions.create(model="general", messages=CHAT, stream=True):  # type: ignore[arg-type]
            received.append(chunk.choices[0].delta.content)
    assert received and received[0].startswith("0:")  # the first chunk did arrive before the failure


def test_streaming_passes_chunks_through_unchanged(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    upstream = fake_upstream("streamer", "--chunks", "4")
    router = router_process(fast_config(expert("general", upstream)))
    body = {"model": "m", "messages": CHAT, "stream": True}
    direct = httpx.post(f"{upstream.v1}/chat/completions", json=body).text
    routed = httpx.post(f"{router.v1}/chat/completions", json={**body, "model": "general"})
    assert routed.headers["content-type"].startswith("text/event-stream")
    assert routed.headers["x-largeforge-expert"] == "general"

    def contents(text: str) -> list[str]:
        events = [line[6:] for line in text.splitlines() if line.startswith("data: {")]
        return [json.loads(e)["choices"][0]["delta"]["content"] for e in events]

    assert contents(routed.text) == contents(direct) and len(contents(direct)) == 4
    assert routed.text.rstrip().endswith("data: [DONE]")
