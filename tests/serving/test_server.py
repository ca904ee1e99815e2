"""The server through the official ``openai`` client, against a real process on a free port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.serving.conftest import Server, start_server, stop_server

MESSAGES = [{"role": "user", "content": "Maria Lopez, 34, lives in Lisbon."}]


def client(server: Server, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url, api_key=kwargs.pop("api_key", "none"), max_retries=0, **kwargs
    )


def reference(model_dir: Path, max_new_tokens: int, adapter: Path | None = None) -> tuple[str, int, int]:
    """transformers' own greedy answer: (text, prompt tokens, completion tokens)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    inputs = tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = output[0, inputs["input_ids"].shape[1] :].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id)]
    return tokenizer.decode(new, skip_special_tokens=True), inputs["input_ids"].shape[1], len(new)


def test_models_lists_base_and_adapters(server: Server) -> None:
    ids = [m.id for m in client(server).models.list().data]
    assert ids == [server.model_dir.name, "alpha", "beta"]


def test_greedy_chat_equals_transformers_generate_and_usage_counts(server: Server) -> None:
    answer = client(server).chat.completions.create(
        model=server.model_dir.name,
        messages=MESSAGES,
        max_tokens=12,
        temperature=0,  # type: ignore[arg-type]
    )
    text, prompt_tokens, completion_tokens = reference(server.model_dir, 12)
    assert answer.choices[0].message.content == text and text
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt_tokens, completion_tokens)
    assert answer.object == "chat.completion" and answer.choices[0].finish_reason in {"length", "stop"}


def test_streaming_with_usage_matches_the_plain_answer(server: Server) -> None:
    api = client(server)
    plain = api.chat.completions.create(
        model=server.model_dir.name, messages=MESSAGES, max_tokens=10, temperature=0
    )  # type: ignore[arg-type]
    chunks = list(
        api.chat.completions.create(
            model=server.model_dir.name,
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=10,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage


def test_stop_strings_cut_the_text(server: Server) -> None:
    api = client(server)
    full = api.chat.completions.create(
        model=server.model_dir.name, messages=MESSAGES, max_tokens=20, temperature=0
    )  # type: ignore[arg-type]
    text = full.choices[0].message.content or ""
    assert len(text) >= 6, f"the sharp model should say something: {text!r}"
    stop = text[3:5]
    cut = api.chat.completions.create(
        model=server.model_dir.name,
        messages=MESSAGES,
        max_tokens=20,
        temperature=0,
        stop=[stop, "\x00never"],  # type: ignore[arg-type]
    )
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_seed_makes_sampling_reproducible_and_n_gives_choices(server: Server) -> None:
    api = client(server)

    def sample(seed: int) -> list[str]:
        answer = api.chat.completions.create(
            model=server.model_dir.name,
            messages=MESSAGES,
            max_tokens=8,
            temperature=1.0,
            seed=seed,
            n=2,  # type: ignore[arg-type]
        )
        assert [c.index for c in answer.choices] == [0, 1]
        return [c.message.content or "" for c in answer.choices]

    assert sample(7) == sample(7)


def test_each_adapter_answers_like_it_does_alone(server: Server) -> None:
    api = client(server)
    answers = {}
    for name in ("alpha", "beta"):
        answer = api.chat.completions.create(model=name, messages=MESSAGES, max_tokens=10, temperature=0)  # type: ignore[arg-type]
        answers[name] = answer.choices[0].message.content
        assert answers[name] == reference(server.model_dir, 10, server.adapters[name])[0]
    assert answers["alpha"] != answers["beta"]


def test_completions_endpoint(server: Server) -> None:
    answer = client(server).completions.create(
        model=server.model_dir.name, prompt="Maria Lopez", max_tokens=5, temperature=0
    )
    assert answer.object == "text_completion" and answer.usage is not None
    assert answer.usage.prompt_tokens == len(
        AutoTokenizer.from_pretrained(server.model_dir)("Maria Lopez")["input_ids"]
    )


def test_errors_have_openai_shape_and_status(server: Server) -> None:
    api = client(server)
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="gamma", messages=MESSAGES, max_tokens=4)  # type: ignore[arg-type]
    assert "gamma" in missing.value.message and missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as too_long:
        api.chat.completions.create(model="alpha", messages=MESSAGES, max_tokens=100_000)  # type: ignore[arg-type]
    assert "maximum context length is 256 tokens" in too_long.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(model="alpha", messages=MESSAGES, temperature=5)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"


def test_async_client_streams(server: Server) -> None:
    async def run() -> str:
        api = openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0)
        stream = await api.chat.completions.create(
            model="beta",
            messages=MESSAGES,
            max_tokens=6,
            temperature=0,
            stream=True,  # type: ignore[arg-type]
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        await api.close()
        return "".join(parts)

    assert asyncio.run(run()) == reference(server.model_dir, 6, server.adapters["beta"])[0]


def test_api_key_covers_every_inference_route(sharp_model: Path) -> None:
    from largeforge.serving.openai.routes import routes

    guarded = start_server(sharp_model, {}, "--api-key", "sekret")
    try:
        base = guarded.base_url.removesuffix("/v1")
        with httpx.Client(timeout=10) as http:
            for route in routes.routes:
                path = getattr(route, "path", "")
                for method in getattr(route, "methods", set()):
                    response = http.request(method, f"{base}{path}", json={})
                    assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
                    assert response.json()["error"]["code"] == "invalid_api_key"
            assert http.get(f"{base}/health").status_code == 200  # health stays open
        with pytest.raises(openai.AuthenticationError):
            client(guarded, api_key="wrong").models.list()
        assert [m.id for m in client(guarded, api_key="sekret").models.list().data] == [sharp_model.name]
    finally:
        stop_server(guarded)
