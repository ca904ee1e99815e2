"""Two real `largeforge serve` processes (tiny model, different LoRA adapters) behind a real router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import make_sharp_copy
from tests.routing.conftest import Process
from tests.serving.conftest import Server, make_adapter, start_server, stop_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_servers(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    root = tmp_path_factory.mktemp("router-servers")
    model = make_sharp_copy(tiny_model_dir, root / "model")
    first = start_server(model, {"alpha": make_adapter(model, root / "alpha", 1)})
    try:
        second = start_server(model, {"beta": make_adapter(model, root / "beta", 2)})
    except RuntimeError:
        stop_server(first)
        raise
    yield first, second
    stop_server(first)
    stop_server(second)


def greedy(base_url: str, model: str, content: str, stream: bool = False) -> str:
    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)
    messages = [{"role": "user", "content": content}]
    if stream:
        chunks = client.chat.completions.create(
            model=model, messages=messages, max_tokens=8, temperature=0, stream=True
        )  # type: ignore[arg-type]
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    answer = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)  # type: ignore[arg-type]
    return answer.choices[0].message.content or ""


def test_auto_reaches_the_right_adapter_abstains_to_the_default_and_streams(
    two_servers: tuple[Server, Server], router_process: Callable[..., Process]
) -> None:
    first, second = two_servers
    config = {
        "default": "general",
        "classifier": {"type": "keyword"},
        "experts": [
            {
                "name": "math",
                "keywords": ["sum", "multiply"],
                "upstreams": [{"url": first.base_url, "model": "alpha"}],
            },
            {
                "name": "writing",
                "keywords": ["poem", "story"],
                "upstreams": [{"url": second.base_url, "model": "beta"}],
            },
            {"name": "general", "upstreams": [{"url": first.base_url, "model": first.model_dir.name}]},
        ],
    }
    router = router_process(config)
    client = openai.OpenAI(base_url=router.v1, api_key="none", max_retries=0)
    cases = [
        ("What is the sum of 4 and 5?", "math", first.base_url, "alpha"),
        ("Write a poem about rain", "writing", second.base_url, "beta"),
        ("Hello there", "general", first.base_url, first.model_dir.name),
    ]
    for prompt, expected, url, model in cases:
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=8,
            temperature=0,  # type: ignore[arg-type]
        )
        assert raw.headers["x-largeforge-expert"] == expected
        assert raw.headers["x-largeforge-decision"] == ("abstained" if expected == "general" else "auto")
        routed = raw.parse().choices[0].message.content
        assert routed == greedy(url, model, prompt) and routed
    # The adapters really change the model: the same kind of prompt answers differently per upstream.
    assert greedy(first.base_url, "alpha", "Hi") != greedy(second.base_url, "beta", "Hi")
    streamed = greedy(router.v1, "auto", "What is the sum of 4 and 5?", stream=True)
    assert streamed == greedy(first.base_url, "alpha", "What is the sum of 4 and 5?")
