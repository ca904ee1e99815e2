"""The built-in engine: transformers models (and PEFT adapters) on CPU or CUDA.

This first version decodes one request at a time (a worker thread, a lock, an incremental KV cache)
and streams tokens as they come; iteration-level continuous batching with per-row adapters is the next
step behind the same interface. Greedy decoding equals ``model.generate`` on the same prompt.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound, Unavailable
from largeforge.serving.engine import GenerationChunk, GenerationRequest

_DONE = object()


class HFEngine:
    """Serves one base model and any number of named LoRA adapters on it."""

    def __init__(
        self, model: str, adapters: dict[str, str] | None = None, *, device: str | None = None
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from largeforge.model_source import resolve_model_source

        source = resolve_model_source(model)
        self.base_id = Path(source).name if Path(source).exists() else source
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            base: Any = AutoModelForCausalLM.from_pretrained(source, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot load model {source}: {exc}") from exc
        self.model: Any = base.to(self.device).eval()
        self.adapters: list[str] = []
        for name, path in (adapters or {}).items():
            self._load_adapter(name, path)
        self.context_length = int(getattr(base.config, "max_position_embeddings", 2048))
        self._lock = threading.Lock()
        stop_ids = {self.tokenizer.eos_token_id, getattr(base.generation_config, "eos_token_id", None)}
        self._eos = {i for i in stop_ids if isinstance(i, int)}

    def _load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel

        if not (Path(path) / "adapter_config.json").exists():
            raise NotFound(f"adapter {name}: {path} holds no adapter_config.json")
        if not self.adapters:
            self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name).eval()
        else:
            self.model.load_adapter(path, adapter_name=name)
        self.adapters.append(name)

    def model_ids(self) -> list[str]:
        return [self.base_id, *self.adapters]

    async def check_health(self) -> None:
        if self.model is None:
            raise Unavailable("the model is not loaded")

    async def aclose(self) -> None:
        self.model = None

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = loop.run_in_executor(None, self._decode, request, emit, cancelled)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()  # a client that went away frees the engine at the next token
            await asyncio.shield(worker)

    def _decode(self, request: GenerationRequest, emit: Any, cancelled: threading.Event) -> None:
        try:
            with self._lock:
                self._decode_locked(request, emit, cancelled)
        except Exception as exc:  # noqa: BLE001 — worker-thread boundary: hand the error to the request
            emit(exc)
        finally:
            emit(_DONE)

    def _decode_locked(self, request: GenerationRequest, emit: Any, cancelled: threading.Event) -> None:
        import contextlib

        import torch

        generator = torch.Generator(device=self.device)
        if request.seed is not None:
            generator.manual_seed(request.seed)
        else:
            generator.seed()
        context = contextlib.nullcontext()
        if self.adapters:
            if request.adapter is None:
                context = self.model.disable_adapter()
            else:
                self.model.set_adapter(request.adapter)
        stream = _TextStream(self.tokenizer, request.stop)
        input_ids = torch.tensor([request.prompt_ids], device=self.device)
        past = None
        with context, torch.inference_mode():
            for _ in range(request.max_tokens):
                if cancelled.is_set():
                    return
                output = self.model(input_ids=input_ids, past_key_values=past, use_cache=True)
                past = output.past_key_values
                token = _sample(output.logits[0, -1].float(), request, generator)
                if token in self._eos:
                    emit(GenerationChunk(stream.flush(), [], "stop"))
                    return
                text, stopped = stream.push(token)
                if stopped:
                    emit(GenerationChunk(text, [token], "stop"))
                    return
                emit(GenerationChunk(text, [token]))
                input_ids = torch.tensor([[token]], device=self.device)
        emit(GenerationChunk(stream.flush(), [], "length"))


def _sample(logits: Any, request: GenerationRequest, generator: Any) -> int:
    """Greedy at temperature 0; otherwise temperature, top-k and top-p sampling."""
    import torch

    if request.temperature <= 0:
        return int(torch.argmax(logits))
    logits = logits / request.temperature
    if request.top_k > 0:
        kth = torch.topk(logits, min(request.top_k, logits.numel())).values[-1]
        logits = torch.where(logits < kth, torch.full_like(logits, float("-inf")), logits)
    probs = torch.softmax(logits, dim=-1)
    if request.top_p < 1.0:
        ordered, index = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < request.top_p
        probs = torch.zeros_like(probs).scatter(0, index[keep], ordered[keep])
        probs = probs / probs.sum()
    return int(torch.multinomial(probs, 1, generator=generator))


class _TextStream:
    """Incremental detokenisation with stop strings.

    Text that could still turn into a stop string is held back, so a stream never shows part of one;
    an incomplete UTF-8 character (decoded as U+FFFD) is held back too.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...]) -> None:
        self._tokenizer, self._stop = tokenizer, stop
        self._ids: list[int] = []
        self._sent = 0

    def _text(self) -> str:
        return str(self._tokenizer.decode(self._ids, skip_special_tokens=True))

    def push(self, token: int) -> tuple[str, bool]:
        self._ids.append(token)
        text = self._text()
        hits = [text.find(s, max(0, self._sent - len(s))) for s in self._stop]
        found = [h for h in hits if h >= 0]
        if found:
            cut = min(found)
            delta = text[self._sent : cut]
            self._sent = cut
            return delta, True
        safe = len(text)
        if text.endswith("\ufffd"):
            safe -= 1
        for s in self._stop:
            for size in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:size]):
                    safe = min(safe, len(text) - size)
                    break
        delta = text[self._sent : max(safe, self._sent)]
        self._sent = max(safe, self._sent)
        return delta, False

    def flush(self) -> str:
        text = self._text()
        delta = text[self._sent :]
        self._sent = len(text)
        return delta


__all__ = ["HFEngine"]
