"""Serving benchmark: our continuous-batching server against transformers, all in one run.

Figures (ratios of runs measured in this one process; absolute speeds on a shared machine drift):

1. **Throughput** — 32 concurrent requests with mixed prompt (16–256) and output (32–256) lengths,
   sent through HTTP with the async ``openai`` client to ``largeforge serve`` (a child process). Tokens
   per second against (a) transformers' continuous batching, ``generate_batch``'s manager given the
   same prompts and the same per-request ``max_new_tokens``, and (b) one ``model.generate`` call per
   request in turn (timed on the first ``--sequential`` requests: a sequential rate does not depend on
   how many run). Targets: ≥ 2× (a), ≥ 6× (b).
2. **Time to first token** — p50/p99 with 1 stream (requests one after another) and with 16 streams
   (16 closed-loop clients, each sending its next request when the last one ends; each client's
   first request is the warm-up wave and is not counted). Target: p50 at 16 ≤ 3× p50 at 1.
3. **Multi-LoRA** — the same 32 requests spread over 4 LoRA adapters (r 8, all linear layers) versus
   all on the base model, on one server. Target: ≥ 0.7×.

Every request sets ``ignore_eos`` (and the baselines generate without an EOS) so each system makes
exactly the tokens asked for; the model is the ``mid`` preset (≈60 M parameters) with random
weights, greedy decoding, in ``--dtype`` (float32 by default) for all three systems alike.

    python bench/serve_throughput.py [--preset mid] [--requests 32] [--sequential 6] [--dtype bfloat16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGETS = {"vs_generate_batch": 2.0, "vs_one_by_one": 6.0, "ttft_16_over_1": 3.0, "lora4_over_base": 0.7}


@dataclass(frozen=True)
class Job:
    prompt: list[int]
    max_tokens: int


def build_model(preset: str, root: Path) -> Path:
    from largeforge.scratch import build_base_model

    path = root / f"{preset}-model"
    if not (path / "config.json").exists():
        build_base_model(path, preset=preset)  # type: ignore[arg-type]
    return path


def make_adapters(model: Path, root: Path, count: int) -> dict[str, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapters = {}
    for index in range(count):
        target = root / f"adapter-{index}"
        if not (target / "adapter_config.json").exists():
            torch.manual_seed(index)
            config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
            get_peft_model(AutoModelForCausalLM.from_pretrained(model), config).save_pretrained(target)
        adapters[f"lora{index}"] = target
    return adapters


def make_jobs(vocab: int, count: int, seed: int) -> list[Job]:
    rng = random.Random(seed)
    return [
        Job([rng.randrange(10, vocab) for _ in range(rng.randint(16, 256))], rng.randint(32, 256))
        for _ in range(count)
    ]


# ------------------------------------------------------------------------------------ baselines


def one_by_one(model_dir: Path, jobs: list[Job], dtype: str) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    tokens, start = 0, time.perf_counter()
    with torch.inference_mode():
        for job in jobs:
            out = model.generate(
                torch.tensor([job.prompt]),
                max_new_tokens=job.max_tokens,
                min_new_tokens=job.max_tokens,
                do_sample=False,
                pad_token_id=0,
            )
            tokens += out.shape[1] - len(job.prompt)
    return tokens / (time.perf_counter() - start)


def transformers_batch(model_dir: Path, jobs: list[Job], dtype: str) -> float:
    """transformers' continuous batching (what ``generate_batch`` runs), per-request lengths."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    config = GenerationConfig(
        max_new_tokens=max(j.max_tokens for j in jobs), do_sample=False, eos_token_id=-1, pad_token_id=0
    )
    start = time.perf_counter()
    tokens = 0
    with model.continuous_batching_context_manager(
        generation_config=config, block=True, timeout=5
    ) as manager:
        for index, job in enumerate(jobs):
            manager.add_request(job.prompt, request_id=f"r{index}", max_new_tokens=job.max_tokens)
        finished = 0
        while finished < len(jobs):
            result = manager.get_result(timeout=5)
            if result is not None and result.is_finished():
                finished += 1
                tokens += len(result.generated_tokens)
    return tokens / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------ our server


def start_server(model: Path, adapters: dict[str, Path], port: int, dtype: str) -> subprocess.Popen[bytes]:
    import httpx

    command = [sys.executable, "-m", "largeforge", "serve", str(model), "--port", str(port), "--dtype", dtype]
    command += ["--max-num-seqs", "32", "--served-model-name", "base"]
    for name, path in adapters.items():
        command += ["--adapter", f"{name}={path}"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited while starting")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not start")


async def one_request(client: Any, model: str, job: Job) -> tuple[int, float, float]:
    """Stream one completion; returns (tokens, time to first token, total time)."""
    start = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = await client.completions.create(
        model=model,
        prompt=job.prompt,
        max_tokens=job.max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].text and first is None:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return tokens, first if first is not None else float("nan"), time.perf_counter() - start


async def concurrent_throughput(base_url: str, jobs: list[Job], models: list[str]) -> float:
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600) as client:
        start = time.perf_counter()
        results = await asyncio.gather(
            *(one_request(client, models[i % len(models)], job) for i, job in enumerate(jobs))
        )
        return sum(r[0] for r in results) / (time.perf_counter() - start)


async def ttft(base_url: str, jobs: list[Job], streams: int, per_stream: int) -> list[float]:
    """Closed-loop clients; each client's first request (the arrival wave) is not counted."""
    from openai import AsyncOpenAI

    rng = random.Random(7)
    async with AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600) as client:

        async def client_loop(index: int) -> list[float]:
            seen = []
            for turn in range(per_stream):
                job = jobs[rng.randrange(len(jobs))]
                _, first, _ = await one_request(client, "base", job)
                if turn > 0 or streams == 1:
                    seen.append(first)
            return seen

        results = await asyncio.gather(*(client_loop(i) for i in range(streams)))
    return [t for r in results for t in r]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mid")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=6, help="requests timed for one-by-one generate")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "largeforge-bench-serve")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="for all three")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.cache.mkdir(parents=True, exist_ok=True)

    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model = build_model(args.preset, args.cache)
    adapters = make_adapters(model, args.cache, 4)
    jobs = make_jobs(AutoConfig.from_pretrained(model).vocab_size, args.requests, seed=0)
    figures: dict[str, float] = {}

    port = free_port()
    server = start_server(model, adapters, port, args.dtype)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        asyncio.run(concurrent_throughput(base_url, jobs[:4], ["base"]))  # warm-up
        figures["server_tok_s"] = asyncio.run(concurrent_throughput(base_url, jobs, ["base"]))
        figures["server_lora4_tok_s"] = asyncio.run(concurrent_throughput(base_url, jobs, list(adapters)))
        short = [Job(j.prompt, 32) for j in jobs]
        single = asyncio.run(ttft(base_url, short[:8], streams=1, per_stream=8))
        sixteen = asyncio.run(ttft(base_url, jobs, streams=16, per_stream=4))
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures["ttft_1_p50_s"], figures["ttft_1_p99_s"] = percentile(single, 0.5), percentile(single, 0.99)
    figures["ttft_16_p50_s"], figures["ttft_16_p99_s"] = percentile(sixteen, 0.5), percentile(sixteen, 0.99)
    figures["generate_batch_tok_s"] = transformers_batch(model, jobs, args.dtype)
    figures["one_by_one_tok_s"] = one_by_one(model, jobs[: args.sequential], args.dtype)

    ratios = {
        "vs_generate_batch": figures["server_tok_s"] / figures["generate_batch_tok_s"],
        "vs_one_by_one": figures["server_tok_s"] / figures["one_by_one_tok_s"],
        "ttft_16_over_1": figures["ttft_16_p50_s"] / figures["ttft_1_p50_s"],
        "lora4_over_base": figures["server_lora4_tok_s"] / figures["server_tok_s"],
    }
    if args.json:
        print(json.dumps({"figures": figures, "ratios": ratios, "targets": TARGETS}, indent=2))
        return
    print(
        f"model: {args.preset} preset, {args.requests} concurrent requests, {args.dtype}, greedy, CPU threads: "
        f"{os.cpu_count()}"
    )
    for name, value in figures.items():
        print(f"  {name:24s} {value:10.3f}")
    for name, value in ratios.items():
        better = value <= TARGETS[name] if name == "ttft_16_over_1" else value >= TARGETS[name]
        print(
            f"  {name:24s} {value:10.2f}   target {'≤' if name == 'ttft_16_over_1' else '≥'} "
            f"{TARGETS[name]}  {'ok' if better else 'MISSED'}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
