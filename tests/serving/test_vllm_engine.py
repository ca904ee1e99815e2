"""The vllm engine against ``fake_vllm.py``, a real child process speaking vLLM's HTTP subset.

vLLM needs a GPU, so it cannot run here; everything on our side of its HTTP API does run: starting
the child with LoRA enabled, waiting for /health, the request field mapping, streaming, adapter
load/unload, /metrics parsing, a child that dies, a child that never becomes healthy.
"""

from __future__ import annotations

import asyncio
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from largeforge.errors import Conflict, InvalidInput, NotFound, Unavailable
from largeforge.serving.engine import GenerationChunk, GenerationRequest, Grammar
from largeforge.serving.engines.vllm import VllmEngine, parse_metrics

FAKE = Path(__file__).with_name("fake_vllm.py")


def write_launcher(directory: Path, **env: str) -> Path:
    """An executable named ``vllm`` that runs the fake with ``env`` (what ``executable=`` points at)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "vllm"
    exports = "".join(f"export {key}={value}\n" for key, value in env.items())
    script.write_text(f'#!/bin/sh\n{exports}exec "{sys.executable}" "{FAKE}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture(scope="module")
def engine(
    sharp_model: Path, adapters: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmEngine]:
    launcher = write_launcher(tmp_path_factory.mktemp("vllm-bin"), FAKE_VLLM_TOKEN_DELAY="0.02")
    built = VllmEngine(
        str(sharp_model), {"alpha": str(adapters["alpha"])}, executable=str(launcher), metrics_interval=0.05
    )
    yield built
    asyncio.run(built.aclose())


def fake_state(engine: VllmEngine) -> dict[str, Any]:
    return dict(httpx.get(f"{engine.base_url}/fake/state").json())


def run(engine: VllmEngine, request: GenerationRequest) -> list[GenerationChunk]:
    async def collect() -> list[GenerationChunk]:
        return [chunk async for chunk in engine.generate(request)]

    return asyncio.run(collect())


def test_child_runs_vllm_serve_with_lora_enabled(
    engine: VllmEngine, sharp_model: Path, adapters: dict[str, Path]
) -> None:
    state = fake_state(engine)
    argv = state["argv"]
    assert argv[:2] == ["serve", str(sharp_model)]
    assert argv[argv.index("--served-model-name") + 1] == sharp_model.name
    assert "--enable-lora" in argv
    assert argv[argv.index("--max-lora-rank") + 1] == "16"  # r=4 adapters; 16 is vLLM's smallest default
    assert argv[argv.index("--lora-modules") + 1] == f"alpha={adapters['alpha']}"
    assert argv[argv.index("--structured-outputs-config.backend") + 1] == "guidance"
    assert state["runtime_lora"] is True  # VLLM_ALLOW_RUNTIME_LORA_UPDATING reached the child
    assert engine.model_ids() == [sharp_model.name, "alpha"]
    assert engine.context_length == 256  # read from the child's /v1/models


def test_every_request_field_is_sent(engine: VllmEngine) -> None:
    request = GenerationRequest(
        prompt_ids=[5, 6, 7],
        max_tokens=3,
        temperature=0.7,
        top_p=0.9,
        top_k=20,
        min_p=0.05,
        seed=11,
        stop=("zz", "yy"),
        adapter="alpha",
        presence_penalty=0.5,
        frequency_penalty=0.25,
        logprobs=2,
        grammar=Grammar('start: "a"+'),
        ignore_eos=True,
    )
    run(engine, request)
    assert fake_state(engine)["requests"][-1] == {
        "model": "alpha",
        "prompt": [5, 6, 7],
        "max_tokens": 3,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "seed": 11,
        "stop": ["zz", "yy"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "logprobs": 2,
        "structured_outputs": {"grammar": 'start: "a"+'},
        "ignore_eos": True,
        "stream": True,
        "return_token_ids": True,
        "repetition_penalty": 1.0,
        "skip_special_tokens": True,
    }
    run(engine, GenerationRequest(prompt_ids=[5], max_tokens=1))
    plain = fake_state(engine)["requests"][-1]
    assert plain["top_k"] == -1 and plain["model"] == engine.base_id
    assert not {"seed", "logprobs", "structured_outputs", "ignore_eos"} & set(plain)


def test_stream_becomes_chunks(engine: VllmEngine) -> None:
    chunks = run(engine, GenerationRequest(prompt_ids=[10], max_tokens=4, logprobs=1))
    assert "".join(c.text for c in chunks) == "t11 t12 t13 t14 "
    assert [c.token_ids for c in chunks] == [[11], [12], [13], [14]]
    assert [c.finish_reason for c in chunks] == [None, None, None, "length"]
    first = chunks[0].logprobs
    assert first is not None and first[0].token == "t11 " and first[0].logprob == -0.5
    assert first[0].top == [("t11 ", -0.5)]  # the fake sends two; the request asked for one


def test_stop_and_adapter_answers(engine: VllmEngine) -> None:
    chunks = run(engine, GenerationRequest(prompt_ids=[10], max_tokens=10, stop=("t13",)))
    assert "".join(c.text for c in chunks) == "t11 t12 "
    assert chunks[-1].finish_reason == "stop"
    tuned = run(engine, GenerationRequest(prompt_ids=[10], max_tokens=2, adapter="alpha"))
    assert [c.token_ids for c in tuned] == [[111], [112]]


def test_errors_are_translated(engine: VllmEngine) -> None:
    with pytest.raises(NotFound, match="gamma"):
        run(engine, GenerationRequest(prompt_ids=[1], max_tokens=2, adapter="gamma"))
    with pytest.raises(InvalidInput, match="maximum context length is 256"):
        run(engine, GenerationRequest(prompt_ids=[1] * 250, max_tokens=20))


def test_adapters_load_and_unload_at_run_time(engine: VllmEngine, adapters: dict[str, Path]) -> None:
    asyncio.run(engine.load_adapter("beta", str(adapters["beta"])))
    assert fake_state(engine)["adapters"]["beta"] == str(adapters["beta"])
    assert engine.model_ids()[-1] == "beta"
    assert [
        c.token_ids for c in run(engine, GenerationRequest(prompt_ids=[1], max_tokens=1, adapter="beta"))
    ] == [[102]]
    with pytest.raises(Conflict):
        asyncio.run(engine.load_adapter("beta", str(adapters["beta"])))
    asyncio.run(engine.unload_adapter("beta"))
    assert "beta" not in fake_state(engine)["adapters"] and "beta" not in engine.model_ids()
    with pytest.raises(NotFound):
        asyncio.run(engine.unload_adapter("beta"))
    with pytest.raises(NotFound, match=r"adapter_config\.json"):
        asyncio.run(engine.load_adapter("gamma", str(adapters["beta"].parent)))


def test_stats_come_from_metrics(engine: VllmEngine) -> None:
    async def scenario() -> tuple[int, int, float]:
        stream = engine.generate(GenerationRequest(prompt_ids=[1], max_tokens=200))
        await stream.__anext__()
        deadline = time.monotonic() + 5
        while engine.stats().running != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        seen = engine.stats()
        await stream.aclose()
        return seen.running, seen.waiting, seen.kv_cache_usage

    assert asyncio.run(scenario()) == (1, 2, 0.25)


def test_closing_the_stream_aborts_the_request(engine: VllmEngine) -> None:
    before = fake_state(engine)["cancelled"]

    async def two_then_close() -> list[GenerationChunk]:
        stream = engine.generate(GenerationRequest(prompt_ids=[1], max_tokens=200))
        chunks = [await stream.__anext__(), await stream.__anext__()]
        await stream.aclose()
        return chunks

    assert len(asyncio.run(two_then_close())) == 2
    deadline = time.monotonic() + 5
    while fake_state(engine)["running"] and time.monotonic() < deadline:
        time.sleep(0.02)
    state = fake_state(engine)
    assert state["running"] == 0 and state["cancelled"] == before + 1


def test_parse_metrics_sums_label_sets_and_reads_the_old_kv_name() -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="my model"} 2.0\n'
        'vllm:num_requests_running{engine="1",model_name="my model"} 1.0\n'
        "vllm:num_requests_waiting 4\n"
        'vllm:gpu_cache_usage_perc{model_name="m"} 0.5\n'
    )
    assert parse_metrics(text).running == 3
    assert parse_metrics(text).waiting == 4
    assert parse_metrics(text).kv_cache_usage == 0.5


def test_a_dead_child_makes_the_engine_unavailable(sharp_model: Path, tmp_path: Path) -> None:
    engine = VllmEngine(str(sharp_model), executable=str(write_launcher(tmp_path)), served_name="base")
    try:
        asyncio.run(engine.check_health())
        assert engine.model_ids() == ["base"] and engine.context_length == 256
        httpx.post(f"{engine.base_url}/fake/die")
        deadline = time.monotonic() + 10
        while engine._process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(Unavailable, match="exited with code 3"):
            asyncio.run(engine.check_health())
    finally:
        asyncio.run(engine.aclose())


def test_startup_timeout_is_a_clear_error_and_stops_the_child(sharp_model: Path, tmp_path: Path) -> None:
    from tests.conftest import _free_port

    launcher, port = write_launcher(tmp_path, FAKE_VLLM_NEVER_HEALTHY="1"), _free_port()
    with pytest.raises(Unavailable, match=r"did not become healthy within 1.5 s \(startup_timeout\)"):
        VllmEngine(str(sharp_model), executable=str(launcher), port=port, startup_timeout=1.5)
    with pytest.raises(httpx.ConnectError):  # the child was listening (answering 503) and is gone now
        httpx.get(f"http://127.0.0.1:{port}/health")


def test_a_child_that_crashes_at_start_reports_its_log(sharp_model: Path, tmp_path: Path) -> None:
    launcher = write_launcher(tmp_path, FAKE_VLLM_CRASH="1")
    with pytest.raises(Unavailable, match="CUDA out of memory"):
        VllmEngine(str(sharp_model), executable=str(launcher), startup_timeout=30)


def test_missing_executable_says_how_to_install(sharp_model: Path, tmp_path: Path) -> None:
    from largeforge.serving.engines import create_engine

    with pytest.raises(InvalidInput, match="pip install vllm"):
        create_engine("vllm", str(sharp_model), {}, executable=str(tmp_path / "no-vllm"))
