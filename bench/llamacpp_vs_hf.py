"""Batch-1 decoding speed: the llamacpp engine (GGUF f32, f16, q8_0) against transformers ``generate``.

One process, one prompt at a time: each run is a fresh random prompt of ``--prompt`` token ids (so no
system reuses a cached prefix) followed by exactly ``--tokens`` greedy tokens (``ignore_eos`` /
``min_new_tokens``). Tokens per second = generated tokens / wall time of the whole call, prefill
included; each figure is the median over ``--repeats`` runs after one warm-up, the systems taking
turns prompt by prompt. The llama.cpp figures are through ``LlamaCppEngine`` (what ``largeforge serve
--engine llamacpp`` runs: our sampling, detokenisation and stop handling per token) for f32, f16 and
q8_0, plus llama-cpp-python's bare ``Llama.generate`` loop on f16, which shows what our layer costs.

The model is the ``mid`` preset (≈60 M parameters) with random weights; the transformers side runs
fp32 on the same CPU threads.

    python bench/llamacpp_vs_hf.py [--preset mid] [--tokens 128] [--prompt 64] [--repeats 3]
                                   [--threads T] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def build(preset: str, root: Path) -> tuple[Path, dict[str, Path]]:
    from largeforge.export import write_gguf
    from largeforge.scratch import build_base_model

    model = root / f"{preset}-model"
    if not (model / "config.json").exists():
        build_base_model(model, preset=preset)  # type: ignore[arg-type]
    files = {}
    for kind in ("f32", "f16", "q8_0"):
        files[kind] = root / f"{preset}-{kind}.gguf"
        if not files[kind].exists():
            write_gguf(model, files[kind], type=kind)
    return model, files


Runner = Callable[[list[int]], int]


def measure(runners: dict[str, Runner], prompts: list[list[int]]) -> dict[str, float]:
    """Median tokens/s of each runner over ``prompts[1:]`` (``prompts[0]`` warms up).

    Round-robin, prompt by prompt: load from other processes on a shared machine drifts, and it then
    drifts for every system alike instead of skewing whichever ran during the busy minute.
    """
    for run in runners.values():
        run(prompts[0])
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for prompt in prompts[1:]:
        for name, run in runners.items():
            start = time.perf_counter()
            made = run(prompt)
            rates[name].append(made / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def transformers_runner(model_dir: Path, tokens: int) -> Runner:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def run(prompt: list[int]) -> int:
        with torch.inference_mode():
            out = model.generate(
                torch.tensor([prompt]),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                pad_token_id=0,
            )
        return int(out.shape[1] - len(prompt))

    return run


def engine_runner(engine: Any, tokens: int) -> Runner:
    from largeforge.serving.engine import GenerationRequest

    async def generate(prompt: list[int]) -> int:
        request = GenerationRequest(prompt_ids=prompt, max_tokens=tokens, temperature=0.0, ignore_eos=True)
        return sum([len(chunk.token_ids) async for chunk in engine.generate(request)])

    return lambda prompt: asyncio.run(generate(prompt))


def bare_runner(llm: Any, tokens: int) -> Runner:
    def run(prompt: list[int]) -> int:
        made = 0
        for _ in llm.generate(prompt, temp=0.0, repeat_penalty=1.0):
            made += 1
            if made == tokens:
                break
        return made

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mid")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "largeforge-bench")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    model, files = build(args.preset, args.workdir)
    vocab = int(json.loads((model / "config.json").read_text())["vocab_size"])
    rng = random.Random(0)
    # Ids from 10 up: the low ids are the special tokens of our presets.
    prompts = [[rng.randrange(10, vocab) for _ in range(args.prompt)] for _ in range(args.repeats + 1)]
    import llama_cpp

    from largeforge.serving.engines.llamacpp import LlamaCppEngine

    engines = {
        kind: LlamaCppEngine(str(files[kind]), n_threads=args.threads) for kind in ("f32", "f16", "q8_0")
    }
    bare = llama_cpp.Llama(str(files["f16"]), n_ctx=2048, n_threads=args.threads, verbose=False)
    try:
        figures = measure(
            {
                "transformers_fp32": transformers_runner(model, args.tokens),
                "llamacpp_engine_f32": engine_runner(engines["f32"], args.tokens),
                "llamacpp_engine_f16": engine_runner(engines["f16"], args.tokens),
                "llamacpp_engine_q8_0": engine_runner(engines["q8_0"], args.tokens),
                "llama_cpp_bare_f16": bare_runner(bare, args.tokens),
            },
            prompts,
        )
    finally:
        for engine in engines.values():
            asyncio.run(engine.aclose())
        bare.close()
    ratios = {
        f"{name}_over_transformers": rate / figures["transformers_fp32"]
        for name, rate in figures.items()
        if name != "transformers_fp32"
    }
    if args.json:
        print(json.dumps({"tokens_per_second": figures, "ratios": ratios, "threads": args.threads}, indent=2))
        return
    print(f"batch 1, {args.prompt}-token prompt, {args.tokens} greedy tokens, {args.threads} threads")
    for name, rate in figures.items():
        ratio = rate / figures["transformers_fp32"]
        print(f"{name:24s} {rate:8.1f} tokens/s   {ratio:5.2f}x transformers")


if __name__ == "__main__":
    main()
