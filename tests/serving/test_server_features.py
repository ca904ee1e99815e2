"""Sampling parameters, logprobs, structured output, tools, metrics, overload and adapter management,
through the official ``openai`` client against a real server process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.serving.conftest import Server, start_server, stop_server

MESSAGES = [{"role": "user", "content": "Maria Lopez, 34, lives in Lisbon."}]
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 10}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
            "required": ["zone"],
        },
    },
}


def api(server: Server, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def chat(server: Server, **kwargs: Any) -> Any:
    kwargs.setdefault("model", server.model_dir.name)
    kwargs.setdefault("messages", MESSAGES)
    return api(server).chat.completions.create(**kwargs)


def metric(server: Server, name: str, **labels: str) -> float:
    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


def test_logprobs_are_the_models_log_softmax(server: Server) -> None:
    answer = chat(server, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    entries = answer.choices[0].logprobs.content
    assert len(entries) == answer.usage.completion_tokens == 6 or answer.choices[0].finish_reason == "stop"
    tokenizer = AutoTokenizer.from_pretrained(server.model_dir)
    model = AutoModelForCausalLM.from_pretrained(server.model_dir).eval()
    ids = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)["input_ids"]
    with torch.inference_mode():
        for entry in entries:
            log_probs = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], dim=-1)
            best = int(torch.argmax(log_probs))
            assert entry.logprob == pytest.approx(float(log_probs[best]), abs=1e-4)
            assert len(entry.top_logprobs) == 3 and entry.top_logprobs[0].logprob == pytest.approx(
                entry.logprob
            )
            assert entry.top_logprobs[0].logprob >= entry.top_logprobs[2].logprob
            assert entry.bytes == list(entry.token.encode())
            ids.append(best)
    legacy = api(server).completions.create(
        model=server.model_dir.name, prompt="Maria", max_tokens=4, temperature=0, logprobs=2
    )
    logprobs = legacy.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == 4
    assert all(len(top) == 2 for top in logprobs.top_logprobs) and logprobs.text_offset[0] == 0


def test_min_p_one_and_top_k_one_are_greedy_and_penalties_change_the_output(server: Server) -> None:
    greedy = chat(server, max_tokens=30, temperature=0).choices[0].message.content
    for extra in ({"min_p": 1.0}, {"top_k": 1}):
        sampled = chat(server, max_tokens=30, temperature=1.0, seed=3, extra_body=extra)
        assert sampled.choices[0].message.content == greedy, extra
    # The penalties reach the engine (what they do to token counts is checked in test_hf_engine).
    penalised = chat(server, max_tokens=30, temperature=0, frequency_penalty=2.0).choices[0].message.content
    present = chat(server, max_tokens=30, temperature=0, presence_penalty=2.0).choices[0].message.content
    assert penalised != greedy and present != greedy


def test_json_schema_output_always_parses_and_validates(server: Server) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON, "strict": True},
    }
    for seed in range(4):
        answer = chat(server, max_tokens=100, temperature=1.0, seed=seed, response_format=response_format)
        assert answer.choices[0].finish_reason == "stop", answer.choices[0].message.content
        jsonschema.validate(json.loads(answer.choices[0].message.content), PERSON)
    stream = chat(
        server, max_tokens=60, temperature=1.0, seed=9, response_format=response_format, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    jsonschema.validate(json.loads(text), PERSON)
    anything = chat(server, max_tokens=60, temperature=1.0, seed=1, response_format={"type": "json_object"})
    assert isinstance(json.loads(anything.choices[0].message.content), dict)


def test_bad_structured_requests_are_400_naming_the_parameter(server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as bad_format:
        chat(server, max_tokens=5, response_format={"type": "yaml"})
    assert "response_format" in bad_format.value.message
    with pytest.raises(openai.BadRequestError) as bad_choice:
        chat(
            server,
            max_tokens=5,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "x"}},
        )
    assert "tool_choice" in bad_choice.value.message


@pytest.fixture(scope="module")
def long_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nano model with a 2k context: the tools block of the chat template alone is ~750 of its tokens,
    and a 2,000-token completion keeps a slot busy long enough to test overload without racing."""
    from largeforge.scratch import build_base_model
    from tests.conftest import NANO_CORPUS, NANO_OVERRIDES, make_sharp_copy

    root = tmp_path_factory.mktemp("long-context")
    overrides = {**NANO_OVERRIDES, "max_position_embeddings": 2048}
    build_base_model(root / "model", preset="tiny", corpus=NANO_CORPUS, vocab_size=300, overrides=overrides)
    return make_sharp_copy(root / "model", root / "sharp")


@pytest.fixture(scope="module")
def long_server(long_model: Path) -> Iterator[Server]:
    running = start_server(long_model, {})
    yield running
    stop_server(running)


def test_forced_tool_calls_parse_into_tool_calls(long_server: Server) -> None:
    server = long_server
    tools = [WEATHER_TOOL, TIME_TOOL]
    answer = chat(server, max_tokens=200, temperature=1.0, seed=2, tools=tools, tool_choice="required")
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    schema = {t["function"]["name"]: t["function"]["parameters"] for t in tools}[call.function.name]
    jsonschema.validate(json.loads(call.function.arguments), schema)
    assert call.id and call.type == "function"

    named = chat(
        server,
        max_tokens=200,
        temperature=1.0,
        seed=5,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in named:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            entry["name"] += delta.function.name or ""
            entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls" and calls[0]["name"] == "get_time"
    assert json.loads(calls[0]["arguments"])["zone"] in {"UTC", "CET"}

    # A conversation that carries the call and its result renders and is answered.
    follow = chat(
        server,
        max_tokens=5,
        temperature=0,
        tools=tools,
        messages=[
            *MESSAGES,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
    )
    assert follow.choices[0].message.role == "assistant"


def test_metrics_count_requests_and_tokens(server: Server) -> None:
    before = metric(server, "largeforge_generation_tokens_total")
    requests = metric(server, "largeforge_requests_total", endpoint="/v1/chat/completions", status="200")
    answer = chat(server, max_tokens=7, temperature=0, extra_body={"ignore_eos": True})
    assert answer.usage.completion_tokens == 7
    assert metric(server, "largeforge_generation_tokens_total") - before == 7
    assert (
        metric(server, "largeforge_requests_total", endpoint="/v1/chat/completions", status="200")
        == requests + 1
    )
    assert metric(server, "largeforge_time_to_first_token_seconds_count") >= 1
    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    for name in (
        "largeforge_requests_running",
        "largeforge_requests_waiting",
        "largeforge_kv_cache_usage_ratio",
        "largeforge_inter_token_latency_seconds_bucket",
        "largeforge_prompt_tokens_total",
    ):
        assert name in text


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One slot, no waiting place, adapter management on: for overload and run-time adapters.

    The model is a 12-layer nano (several times slower per token) with a 2k context: a 2,000-token request then holds the
    slot for seconds, so the overload tests never race a finished request; the nano model would be done
    before the test's next request arrives."""
    from largeforge.scratch import build_base_model
    from tests.conftest import NANO_CORPUS, make_sharp_copy

    root = tmp_path_factory.mktemp("slow")
    overrides = {
        "max_position_embeddings": 2048,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "num_hidden_layers": 12,
    }
    build_base_model(root / "model", preset="tiny", corpus=NANO_CORPUS, vocab_size=300, overrides=overrides)
    running = start_server(
        make_sharp_copy(root / "model", root / "sharp"),
        {},
        "--max-num-seqs",
        "1",
        "--max-waiting",
        "0",
        "--admin-key",
        "adm",
    )
    yield running
    stop_server(running)


def idle(server: Server) -> None:
    """Wait until the server has nothing running or queued (closed streams are reaped asynchronously)."""
    deadline = time.monotonic() + 30
    while metric(server, "largeforge_requests_running") + metric(server, "largeforge_requests_waiting"):
        assert time.monotonic() < deadline, "the server never became idle"
        time.sleep(0.05)


def test_overload_is_429_with_retry_after(small_server: Server) -> None:
    busy = {
        "model": small_server.model_dir.name,
        "prompt": "Maria",
        "max_tokens": 2000,  # holds the only slot for seconds
        "stream": True,
        "ignore_eos": True,
    }
    url = small_server.base_url + "/completions"
    client = api(small_server)
    client.models.list()  # connect before the busy window opens
    with httpx.Client(timeout=60) as http:
        idle(small_server)
        with http.stream("POST", url, json=busy) as running:
            assert running.status_code == 200
            lines = running.iter_lines()  # keep it: a dropped iterator closes the response (a cancel)
            next(lines)
            assert metric(small_server, "largeforge_requests_running") == 1
            with pytest.raises(openai.RateLimitError):
                client.completions.create(model=small_server.model_dir.name, prompt="x", max_tokens=2)
        idle(small_server)
        with http.stream("POST", url, json=busy) as running:
            assert running.status_code == 200
            lines = running.iter_lines()
            next(lines)
            refused = http.post(
                url, json={"model": small_server.model_dir.name, "prompt": "x", "max_tokens": 2}
            )
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limit_error"


def test_closing_a_stream_cancels_generation(small_server: Server) -> None:
    before = metric(small_server, "largeforge_requests_cancelled_total")
    body = {
        "model": small_server.model_dir.name,
        "prompt": "Maria",
        "max_tokens": 1500,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", small_server.base_url + "/completions", json=body) as stream:
            lines = stream.iter_lines()
            next(lines)
            next(lines)
        deadline = time.monotonic() + 20
        while metric(small_server, "largeforge_requests_cancelled_total") == before:
            assert time.monotonic() < deadline, "the server never noticed the closed stream"
            time.sleep(0.1)
        # The slot is free again: the one-slot server answers a new request.
        answer = api(small_server).completions.create(
            model=small_server.model_dir.name, prompt="x", max_tokens=3
        )
        assert answer.usage.completion_tokens <= 3


def test_adapters_load_and_unload_over_http(small_server: Server, adapters: dict[str, Path]) -> None:
    base = small_server.base_url
    load = {"lora_name": "alpha", "lora_path": str(adapters["alpha"])}
    with httpx.Client(timeout=60) as http:
        assert http.post(f"{base}/load_lora_adapter", json=load).status_code == 401
        wrong = http.post(f"{base}/load_lora_adapter", json=load, headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        admin = {"Authorization": "Bearer adm"}
        missing = http.post(f"{base}/load_lora_adapter", json={**load, "lora_path": "/nope"}, headers=admin)
        assert missing.status_code == 404 and "lora_path" in missing.json()["error"]["message"]
        assert http.post(f"{base}/load_lora_adapter", json=load, headers=admin).status_code == 200
        assert http.post(f"{base}/load_lora_adapter", json=load, headers=admin).status_code == 409
        assert [m.id for m in api(small_server).models.list().data][1:] == ["alpha"]
        answer = api(small_server).completions.create(
            model="alpha", prompt="Maria", max_tokens=3, temperature=0
        )
        assert answer.model == "alpha"
        assert (
            http.post(f"{base}/unload_lora_adapter", json={"lora_name": "alpha"}, headers=admin).status_code
            == 200
        )
        gone = http.post(f"{base}/unload_lora_adapter", json={"lora_name": "alpha"}, headers=admin)
        assert gone.status_code == 404
    with pytest.raises(openai.NotFoundError):
        api(small_server).completions.create(model="alpha", prompt="Maria", max_tokens=3)


def test_adapter_management_is_off_without_an_admin_key(server: Server, adapters: dict[str, Path]) -> None:
    response = httpx.post(
        server.base_url + "/load_lora_adapter",
        json={"lora_name": "x", "lora_path": str(adapters["alpha"])},
        timeout=10,
    )
    assert response.status_code == 403 and "--admin-key" in response.json()["error"]["message"]


def test_every_route_but_health_metrics_and_docs_needs_a_key(sharp_model: Path) -> None:
    from largeforge.serving.app import create_app

    open_routes = {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    app = create_app(object())
    # FastAPI ≥0.160 includes routers lazily, so the OpenAPI paths are the flat route table.
    table = [(path, m.upper()) for path, ops in app.openapi()["paths"].items() for m in ops]
    table += [(r.path, m) for r in app.routes for m in getattr(r, "methods", ()) or ()]
    guarded = [(path, method) for path, method in table if path not in open_routes]
    assert {p for p, _ in guarded} >= {
        "/v1/models",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/load_lora_adapter",
        "/v1/unload_lora_adapter",
    }
    running = start_server(sharp_model, {}, "--api-key", "sekret", "--admin-key", "adm")
    try:
        root = running.base_url.removesuffix("/v1")
        with httpx.Client(timeout=10) as http:
            for path, method in guarded:
                response = http.request(method, root + path, json={})
                assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
            for path in ("/health", "/metrics"):
                assert http.get(root + path).status_code == 200
    finally:
        stop_server(running)


def test_concurrent_requests_are_batched_and_each_equals_its_own_answer(server: Server) -> None:
    """Different adapters in flight together each get the answer they get alone."""
    alone = {
        m: chat(server, model=m, max_tokens=10, temperature=0).choices[0].message.content
        for m in (server.model_dir.name, "alpha", "beta")
    }
    results: dict[int, tuple[str, str]] = {}

    def ask(index: int, model: str) -> None:
        results[index] = (
            model,
            chat(server, model=model, max_tokens=10, temperature=0).choices[0].message.content,
        )

    threads = [threading.Thread(target=ask, args=(i, m)) for i, m in enumerate(list(alone) * 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 9 and all(text == alone[model] for model, text in results.values())
    assert len(set(alone.values())) == 3
