"""The clients against real processes: a fake upstream behind the router, and a real `largeforge serve`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from largeforge.clients import (
    AsyncInferenceClient,
    AsyncRouterClient,
    AuthenticationFailed,
    ConnectionFailed,
    InferenceClient,
    ModelNotFound,
    RouterClient,
    ServerError,
    StreamFailed,
)
from largeforge.errors import LargeForgeError, NotFound
from tests.conftest import _free_port
from tests.routing.conftest import Process, expert, fast_config
from tests.serving.conftest import start_server, stop_server


@pytest.fixture
def routed(fake_upstream: Callable[..., Process], router_process: Callable[..., Process]) -> Process:
    config = fast_config(
        expert("math", fake_upstream("math-up", "--chunks", "3"), keywords=["times"]),
        expert("general", fake_upstream("general-up")),
    )
    return router_process(config, "--api-key", "k")


def test_router_client_chat_route_experts_feedback(routed: Process, largeforge_home: Path) -> None:
    with RouterClient(routed.v1, api_key="k", max_retries=0) as client:
        answer = client.routed_chat("What is 6 times 7?", temperature=0)
        assert (answer.expert, answer.decision, answer.text) == ("math", "auto", "answer from math-up")
        assert "times" in answer.reason and answer.request_id.startswith("route-")
        streamed = "".join(client.stream_chat("6 times 7"))
        assert streamed.startswith("0:") and "2:" in streamed
        assert client.route("hello")["decision"] == "abstained"
        assert [e["name"] for e in client.experts()] == ["math", "general"]
        client.feedback(answer.completion.id, expert="general", rating=-0.5)
        assert client.models()[:3] == ["auto", "math", "general"]
        assert client.health()["status"] == "ok"
        with pytest.raises(ModelNotFound) as missing:
            client.chat("hi", model="nope")
        assert isinstance(missing.value, NotFound) and "auto, math, general" in missing.value.message
    log = (largeforge_home / "router" / "decisions.jsonl").read_text()
    assert '"event": "feedback"' in log and answer.completion.id in log


def test_typed_errors_for_a_wrong_key_and_a_dead_address(routed: Process) -> None:
    with (
        RouterClient(routed.v1, api_key="wrong", max_retries=0) as client,
        pytest.raises(AuthenticationFailed),
    ):
        client.route("hi")
    with InferenceClient(f"http://127.0.0.1:{_free_port()}/v1", model="m", max_retries=0) as dead:
        with pytest.raises(ConnectionFailed) as caught:
            dead.chat_text("hi")
        assert isinstance(caught.value, LargeForgeError) and caught.value.exit_code == 1


def test_a_broken_stream_raises_stream_failed_and_no_upstream_raises_server_error(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    router = router_process(
        fast_config(
            expert("dying", fake_upstream("dying", "--die-mid-stream")),
            expert("general", fake_upstream("x", "--fail-status", "500")),
        )
    )
    with RouterClient(router.v1, max_retries=0) as client:
        pieces: list[str] = []
        with pytest.raises(StreamFailed, match="stream"):
            pieces.extend(client.stream_chat("hi", model="dying"))
        with pytest.raises(ServerError) as caught:
            client.chat("hi", model="general")
        assert caught.value.status == 502


def test_async_clients(routed: Process) -> None:
    async def run() -> tuple[str, str, list[str], str]:
        async with AsyncRouterClient(routed.v1, api_key="k", max_retries=0) as client:
            answer = await client.routed_chat("3 times 3")
            pieces = [piece async for piece in client.stream_chat("3 times 3")]
            decision = await client.route("3 times 3")
            return answer.expert, answer.text, pieces, decision["expert"]

    expert_name, text, pieces, decided = asyncio.run(run())
    assert (expert_name, text, decided) == ("math", "answer from math-up", "math")
    assert len(pieces) == 3 and pieces[0].startswith("0:")


@pytest.mark.slow
def test_inference_clients_against_a_real_server(tiny_model_dir: Path) -> None:
    server = start_server(tiny_model_dir, {})
    try:
        model = tiny_model_dir.name
        with InferenceClient(server.base_url, model=model, max_retries=0) as client:
            text = client.chat_text("Hello", max_tokens=6, temperature=0)
            assert "".join(client.stream_chat("Hello", max_tokens=6, temperature=0)) == text
            assert client.complete("Hello", max_tokens=4, temperature=0).choices[0].text == "".join(
                client.stream_complete("Hello", max_tokens=4, temperature=0)
            )
            assert client.models() == [model]

        async def run() -> str:
            async with AsyncInferenceClient(server.base_url, model=model, max_retries=0) as client:
                assert (await client.health())["status"] == "ok"
                return await client.chat_text("Hello", max_tokens=6, temperature=0)

        assert asyncio.run(run()) == text
    finally:
        stop_server(server)
