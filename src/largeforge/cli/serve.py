"""``largeforge serve``: an OpenAI-compatible server for a model directory, a GGUF file or a registry reference."""

from __future__ import annotations

from typing import Any

import typer

from largeforge.cli.output import fail, quiet_libraries, stderr_console
from largeforge.errors import InvalidInput, LargeForgeError


def serve(
    model: str = typer.Argument(
        ..., help="A model directory, a GGUF file (--engine llamacpp) or a registry reference (NAME@ALIAS)."
    ),
    adapter: list[str] = typer.Option(
        [], help="A LoRA adapter to serve as NAME=PATH or NAME=REGISTRY_REF (repeatable)."
    ),
    engine: str = typer.Option(
        "hf", help="Inference engine: hf (transformers), llamacpp (GGUF), vllm (GPU)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    api_key: str | None = typer.Option(
        None, help="Require `Authorization: Bearer KEY` on /v1 routes (default: LARGEFORGE_SERVE_API_KEY)."
    ),
    admin_key: str | None = typer.Option(
        None, help="Enables POST /v1/load_lora_adapter and /v1/unload_lora_adapter with this key."
    ),
    served_model_name: str | None = typer.Option(None, help="The id clients use for the base model."),
    dtype: str = typer.Option(
        "auto", help="hf engine: auto, float32, bfloat16 (≈1.6× faster on CPU), float16."
    ),
    max_num_seqs: int = typer.Option(32, min=1, help="hf engine: sequences decoded together (KV slots)."),
    max_model_len: int | None = typer.Option(None, min=16, help="hf engine: context per sequence."),
    prefill_tokens: int = typer.Option(256, min=1, help="hf engine: prompt tokens prefilled per step."),
    max_waiting: int = typer.Option(256, min=0, help="Queued requests beyond which clients get 429."),
    kv_cache_gib: float = typer.Option(4.0, min=0.001, help="hf engine: memory for the KV cache."),
) -> None:
    """Serve /v1/models, /v1/chat/completions, /v1/completions, /health and /metrics."""
    import uvicorn

    from largeforge.serving.app import create_app
    from largeforge.serving.engines import create_engine
    from largeforge.serving.model_refs import resolve_serve_target
    from largeforge.settings import get_settings

    quiet_libraries()
    api_key = api_key or get_settings().serve_api_key
    try:
        target = resolve_serve_target(model, dict(_pair(item) for item in adapter))
        options: dict[str, Any] = {"served_name": served_model_name or target.served_name}
        if engine == "llamacpp":
            options["max_waiting"] = max_waiting
        if engine == "hf":
            options |= {
                "dtype": dtype,
                "max_num_seqs": max_num_seqs,
                "max_model_len": max_model_len,
                "prefill_tokens": prefill_tokens,
                "max_waiting": max_waiting,
                "kv_cache_gib": kv_cache_gib,
            }
        app = create_app(
            create_engine(engine, target.model, target.adapters, **options),
            api_key=api_key,
            admin_key=admin_key,
        )
    except LargeForgeError as error:
        raise fail(error, False) from None
    stderr_console().print(f"serving {target.model} on http://{host}:{port}/v1", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _pair(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise InvalidInput(f"--adapter {text!r} must look like NAME=PATH")
    return name, path
