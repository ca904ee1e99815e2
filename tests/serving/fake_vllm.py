"""A stand-in for ``vllm serve`` that speaks the subset the vllm engine uses, for machines without a GPU.

Run as ``python fake_vllm.py serve MODEL --port P [vllm's flags …]``, the way the engine runs ``vllm``.
It serves /health, /v1/models, streamed /v1/completions with token-id prompts (deterministic tokens
``t<id> ``), /v1/load_lora_adapter and /v1/unload_lora_adapter (only with
VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, as vLLM), and Prometheus /metrics. ``GET /fake/state`` returns
what it was started with and every completion body it received, so tests can check the mapping;
``POST /fake/die`` makes it exit as a crashed vLLM would.

Behaviour switches (environment): FAKE_VLLM_CRASH=1 exits at start with a CUDA error, FAKE_VLLM_NEVER_HEALTHY=1
answers 503 on /health forever, FAKE_VLLM_TOKEN_DELAY=seconds between streamed tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

# At module level: FastAPI resolves the handlers' annotations (``Request``) in this module's globals.
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

CONTEXT = 256
VOCAB = 300


def build_app(args: argparse.Namespace, argv: list[str]) -> Any:
    app = FastAPI()
    adapters = dict(item.split("=", 1) for item in args.lora_modules or [])
    state: dict[str, Any] = {"argv": argv, "requests": [], "running": 0, "cancelled": 0, "finished": 0}
    runtime_lora = os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING") == "True"
    delay = float(os.environ.get("FAKE_VLLM_TOKEN_DELAY", "0"))

    def error(status: int, message: str, kind: str) -> JSONResponse:
        body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
        return JSONResponse(body, status_code=status)

    @app.get("/health")
    async def health() -> Any:
        if os.environ.get("FAKE_VLLM_NEVER_HEALTHY") == "1":
            return PlainTextResponse("loading", status_code=503)
        return PlainTextResponse("")

    @app.get("/v1/models")
    async def models() -> Any:
        names = [args.served_model_name, *adapters]
        return {
            "object": "list",
            "data": [{"id": n, "object": "model", "max_model_len": CONTEXT} for n in names],
        }

    @app.get("/fake/state")
    async def fake_state() -> Any:
        return {**state, "adapters": adapters, "runtime_lora": runtime_lora}

    @app.post("/fake/die")
    async def die() -> Any:
        threading.Timer(0.1, os._exit, args=(3,)).start()
        return {"dying": True}

    @app.get("/metrics")
    async def metrics() -> Any:
        labels = f'engine="0",model_name="{args.served_model_name} (fake)"'
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{labels}}} {float(state['running'])}",
            f"vllm:num_requests_waiting{{{labels}}} 2.0",
            f"vllm:kv_cache_usage_perc{{{labels}}} 0.25",
            f'vllm:time_to_first_token_seconds_bucket{{le="0.001",{labels}}} 0.0',
        ]
        return PlainTextResponse("\n".join(lines) + "\n")

    @app.post("/v1/load_lora_adapter")
    async def load(request: Request) -> Any:
        if not runtime_lora:
            return error(404, "Not Found", "NotFoundError")
        body = await request.json()
        if body["lora_name"] in adapters:
            return error(
                400, f"The lora adapter '{body['lora_name']}' has already been loaded.", "InvalidUserInput"
            )
        adapters[body["lora_name"]] = body["lora_path"]
        return PlainTextResponse(f"Success: LoRA adapter '{body['lora_name']}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    async def unload(request: Request) -> Any:
        body = await request.json()
        if adapters.pop(body["lora_name"], None) is None:
            return error(404, f"The lora adapter '{body['lora_name']}' cannot be found.", "NotFoundError")
        return PlainTextResponse(f"Success: LoRA adapter '{body['lora_name']}' removed successfully.")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        state["requests"].append(body)
        if body["model"] != args.served_model_name and body["model"] not in adapters:
            return error(404, f"The model `{body['model']}` does not exist.", "NotFoundError")
        prompt = body["prompt"]
        if not isinstance(prompt, list) or not all(isinstance(t, int) for t in prompt):
            return error(400, "this fake only takes token id prompts", "BadRequestError")
        if len(prompt) + body["max_tokens"] > CONTEXT:
            message = f"This model's maximum context length is {CONTEXT} tokens."
            return error(400, message, "BadRequestError")
        return StreamingResponse(stream(body), media_type="text/event-stream")

    async def stream(body: dict[str, Any]) -> AsyncIterator[str]:
        # Tokens count up from the last prompt token; an adapter shifts them, so its answers differ.
        shift = 0 if body["model"] == args.served_model_name else 100
        state["running"] += 1
        text, finish = "", None
        try:
            for step in range(body["max_tokens"]):
                token = (body["prompt"][-1] + step + 1 + shift) % VOCAB
                piece = f"t{token} "
                text += piece
                hit = [s for s in body.get("stop") or [] if s in text]
                if hit:
                    piece = piece[: len(piece) - (len(text) - text.index(hit[0]))]
                    finish = "stop"
                elif step == body["max_tokens"] - 1:
                    finish = "length"
                choice: dict[str, Any] = {"index": 0, "text": piece, "finish_reason": finish}
                if body.get("return_token_ids"):
                    choice["token_ids"] = [token]
                if body.get("logprobs") is not None:
                    top = {f"t{token} ": -0.5, **{f"alt{i} ": -1.0 - i for i in range(body["logprobs"])}}
                    choice["logprobs"] = {
                        "text_offset": [0],
                        "tokens": [f"t{token} "],
                        "token_logprobs": [-0.5],
                        "top_logprobs": [top],
                    }
                event = {
                    "id": "cmpl-fake",
                    "object": "text_completion",
                    "model": body["model"],
                    "choices": [choice],
                }
                yield f"data: {json.dumps(event)}\n\n"
                if finish:
                    break
                await asyncio.sleep(delay)
            yield "data: [DONE]\n\n"
            state["finished"] += 1
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        finally:
            state["running"] -= 1

    return app


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="vllm")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name")
    parser.add_argument("--lora-modules", nargs="*")
    args, _ = parser.parse_known_args(argv)
    args.served_model_name = args.served_model_name or args.model
    if os.environ.get("FAKE_VLLM_CRASH") == "1":
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB", flush=True)
        sys.exit(1)
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP_DELAY", "0")))  # "loading the model"
    import uvicorn

    uvicorn.run(build_app(args, argv), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
