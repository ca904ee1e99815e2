"""The built-in engine: continuous batching over transformers models (and PEFT adapters), CPU or CUDA.

One scheduler thread owns the model and the KV cache and runs iterations: each one admits waiting
requests into free cache slots (admission control is by slot: a slot holds a whole context), runs
one chunk of prefill for newly admitted prompts (a token budget, so a long prompt never stalls the
running streams for more than one chunk), then one decode step for every running sequence. Finished
or cancelled sequences leave at once and their slot is reused by the next iteration. Rows of one
forward pass may use different LoRA adapters: PEFT's per-row ``adapter_names`` applies each row's
adapter inside the same matmuls, with no merge/unmerge between requests.

Greedy decoding equals ``model.generate`` on the same prompt (tests check it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from largeforge.errors import Conflict, InvalidInput, LargeForgeError, NotFound, Overloaded, Unavailable
from largeforge.serving.engine import (
    EngineStats,
    GenerationChunk,
    GenerationRequest,
    TokenLogprob,
)
from largeforge.serving.kv_cache import SlotKVCache
from largeforge.serving.sampling import RowState, make_generator, sample_next
from largeforge.serving.text_stream import TextStream

log = logging.getLogger(__name__)

_DONE = object()
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(eq=False)
class _Sequence:
    """One request inside the engine: its cache slot, what to feed next, where its output goes."""

    request: GenerationRequest
    emit: Callable[[Any], object]
    state: RowState
    stream: TextStream
    pending: list[int]  # prompt tokens not yet prefilled, or the one token to decode next
    prefilling: bool = True
    slot: int = -1
    cached: int = 0  # tokens whose keys/values are in the cache
    cancelled: bool = False
    finished: bool = False


@dataclass
class _Command:
    """Work that must run on the scheduler thread between iterations (adapter load/unload)."""

    action: Callable[[], None]
    done: Callable[[BaseException | None], None]


class HFEngine:
    """Serves one base model and any number of named LoRA adapters with continuous batching.

    Args:
        max_num_seqs: sequences decoded together (cache slots), further limited by ``kv_cache_gib``.
        max_model_len: the context length of a slot (default: the model's).
        prefill_tokens: the prompt tokens processed per iteration (the chunk budget).
        max_waiting: queued requests beyond which new ones get ``Overloaded`` (HTTP 429).
    """

    def __init__(
        self,
        model: str,
        adapters: dict[str, str] | None = None,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_num_seqs: int = 32,
        max_model_len: int | None = None,
        prefill_tokens: int = 256,
        max_waiting: int = 256,
        kv_cache_gib: float = 4.0,
        served_name: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from largeforge.model_source import resolve_model_source
        from largeforge.serving.attention import register

        source = resolve_model_source(model)
        self.base_id = served_name or (Path(source).name if Path(source).exists() else source)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = self._pick_dtype(dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            base: Any = AutoModelForCausalLM.from_pretrained(
                source, use_safetensors=True, dtype=self.dtype, attn_implementation=register()
            )
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot load model {source}: {exc}") from exc
        self.model: Any = base.to(self.device).eval()
        self.vocab_size = int(base.get_input_embeddings().num_embeddings)
        self._peft = False
        self._multi: Any = None  # serving.multi_lora.MultiLoRA once adapters are loaded
        self.adapters: list[str] = []
        for name, path in (adapters or {}).items():
            self._load_adapter(name, path)
        config = base.config
        self.context_length = int(getattr(config, "max_position_embeddings", 2048))
        if max_model_len is not None:
            self.context_length = min(self.context_length, max_model_len)
        if prefill_tokens < 1 or max_num_seqs < 1 or max_waiting < 0:
            raise InvalidInput("prefill_tokens and max_num_seqs must be ≥ 1 and max_waiting ≥ 0")
        self.prefill_tokens = prefill_tokens
        self.max_waiting = max_waiting
        # Prefill chunks are padded to the longest row; the tail room keeps padded writes in bounds.
        length = self.context_length + prefill_tokens
        per_slot = SlotKVCache.bytes_per_slot(config, length, self.dtype)
        slots = min(max_num_seqs, int(kv_cache_gib * 2**30) // per_slot)
        if slots < 1:
            raise InvalidInput(
                f"kv_cache_gib={kv_cache_gib} cannot hold one {self.context_length}-token sequence "
                f"({per_slot / 2**30:.2f} GiB); raise it or lower max_model_len"
            )
        heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
        head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
        self._cache = SlotKVCache(
            layers=int(config.num_hidden_layers),
            slots=slots,
            kv_heads=heads,
            head_dim=head_dim,
            length=length,
            dtype=self.dtype,
            device=self.device,
        )
        stop_ids = {self.tokenizer.eos_token_id, getattr(base.generation_config, "eos_token_id", None)}
        flat: set[Any] = set()
        for item in stop_ids:
            flat.update(item if isinstance(item, list) else [item])
        self._eos = {i for i in flat if isinstance(i, int)}
        self._slots: list[_Sequence | None] = [None] * slots
        self._waiting: deque[_Sequence] = deque()
        self._inbox: deque[_Sequence | _Command] = deque()
        self._inbox_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="largeforge-hf-engine", daemon=True)
        self._thread.start()

    def _pick_dtype(self, name: str) -> torch.dtype:
        if name == "auto":
            return torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        if name not in _DTYPES:
            raise InvalidInput(f"unknown dtype {name!r}; choose auto, {', '.join(_DTYPES)}")
        return _DTYPES[name]

    # ----------------------------------------------------------------- public interface

    def model_ids(self) -> list[str]:
        return [self.base_id, *self.adapters]

    @property
    def slots(self) -> int:
        return len(self._slots)

    def stats(self) -> EngineStats:
        running = [s for s in self._slots if s is not None]
        used = sum(s.cached for s in running)
        return EngineStats(
            running=len(running),
            waiting=len(self._waiting) + len(self._inbox),
            kv_cache_usage=used / (len(self._slots) * self.context_length),
        )

    async def check_health(self) -> None:
        if self.model is None or not self._thread.is_alive():
            raise Unavailable("the model is not loaded")

    async def aclose(self) -> None:
        self._closed = True
        self._wake.set()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30)
        self.model = None

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Queue the request now (raising ``Overloaded`` at once when full) and stream its chunks."""
        if request.adapter is not None and request.adapter not in self.adapters:
            raise NotFound(f"adapter {request.adapter!r} is not loaded")
        total = len(request.prompt_ids) + request.max_tokens
        if not request.prompt_ids or total > self.context_length:
            raise InvalidInput(
                f"this engine's context length is {self.context_length} tokens; the request needs {total}"
            )
        if min(request.prompt_ids) < 0 or max(request.prompt_ids) >= self.vocab_size:
            raise InvalidInput(f"prompt: token ids must lie in [0, {self.vocab_size}) for this model")
        constraint = None
        if request.grammar is not None:
            from largeforge.serving.structured import TokenConstraint

            constraint = TokenConstraint(request.grammar, self.tokenizer)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        sequence = _Sequence(
            request=request,
            emit=lambda item: loop.call_soon_threadsafe(queue.put_nowait, item),
            state=RowState(request, make_generator(request.seed, self.device), constraint=constraint),
            stream=TextStream(self.tokenizer, request.stop),
            pending=list(request.prompt_ids),
        )
        with self._inbox_lock:
            if self._closed:
                raise Unavailable("the engine is shutting down")
            # Requests that a free slot will take at the next iteration are not waiting.
            queued = len(self._waiting) + len(self._inbox) - self._slots.count(None)
            if queued >= self.max_waiting:
                raise Overloaded(
                    f"{queued} requests are already waiting for this engine; retry shortly",
                    retry_after=1.0,
                )
            self._inbox.append(sequence)
        self._wake.set()
        return self._follow(sequence, queue)

    async def _follow(self, sequence: _Sequence, queue: asyncio.Queue[Any]) -> AsyncIterator[GenerationChunk]:
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not sequence.finished:
                sequence.cancelled = True  # the client went away: its slot is freed next iteration
                self._wake.set()

    async def load_adapter(self, name: str, path: str) -> None:
        if name in self.model_ids():
            raise Conflict(f"a model or adapter called {name!r} is already being served")
        await self._on_scheduler(lambda: self._load_adapter(name, path))

    async def unload_adapter(self, name: str) -> None:
        if name not in self.adapters:
            raise NotFound(f"adapter {name!r} is not loaded")
        await self._on_scheduler(lambda: self._unload_adapter(name))

    async def _on_scheduler(self, action: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            def settle() -> None:
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

            loop.call_soon_threadsafe(settle)

        with self._inbox_lock:
            self._inbox.append(_Command(action, done))
        self._wake.set()
        await future

    # ----------------------------------------------------------------- adapters (scheduler thread)

    def _load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel

        if not (Path(path) / "adapter_config.json").exists():
            raise NotFound(f"adapter {name}: {path} holds no adapter_config.json")
        try:
            if not self._peft:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name).eval()
                self._peft = True
            else:
                self.model.load_adapter(path, adapter_name=name)
        except (OSError, ValueError, RuntimeError) as exc:
            raise InvalidInput(f"cannot load adapter {name} from {path}: {exc}") from exc
        self.adapters.append(name)
        self._rebuild_multi_lora()

    def _rebuild_multi_lora(self) -> None:
        """Concatenate the loaded adapters for per-row LoRA; PEFT's ``adapter_names`` where it can't."""
        from largeforge.serving.multi_lora import MultiLoRA, supports

        self._multi = MultiLoRA(self.model, self.adapters) if self._peft and supports(self.model) else None

    def _unload_adapter(self, name: str) -> None:
        users = [s for s in (*self._slots, *self._waiting) if s is not None and s.request.adapter == name]
        if users:
            raise Conflict(f"adapter {name!r} has {len(users)} requests in flight; retry when they finish")
        self.adapters.remove(name)
        if self.adapters:
            self.model.delete_adapter(name)
        else:
            self.model = self.model.unload()  # back to the plain base model
            self._peft = False
        self._rebuild_multi_lora()

    # ----------------------------------------------------------------- the scheduler

    def _run(self) -> None:
        while True:
            self._wake.clear()
            if self._closed:
                self._fail_all(Unavailable("the engine was shut down"))
                return
            self._take_inbox()
            self._reap_cancelled()
            self._admit()
            running = [s for s in self._slots if s is not None]
            decoding = [s for s in running if not s.prefilling]
            prefilling = [s for s in running if s.prefilling]
            if not running:
                self._wake.wait()
                continue
            for step, batch in ((self._prefill_step, prefilling), (self._decode_step, decoding)):
                if not batch:
                    continue
                try:
                    step(batch)
                except Exception as exc:
                    log.exception("engine step failed")
                    error = (
                        exc if isinstance(exc, LargeForgeError) else Unavailable(f"generation failed: {exc}")
                    )
                    for sequence in batch:
                        if not sequence.finished:
                            self._finish(sequence, error)

    def _take_inbox(self) -> None:
        with self._inbox_lock:
            items = list(self._inbox)
            self._inbox.clear()
        for item in items:
            if isinstance(item, _Command):
                try:
                    item.action()
                except Exception as exc:  # noqa: BLE001 — handed back to the awaiting coroutine
                    item.done(exc)
                else:
                    item.done(None)
            else:
                self._waiting.append(item)

    def _reap_cancelled(self) -> None:
        for sequence in [s for s in self._waiting if s.cancelled]:
            self._waiting.remove(sequence)
            sequence.finished = True
        for sequence in [s for s in self._slots if s is not None and s.cancelled]:
            sequence.finished = True
            self._release(sequence)

    def _admit(self) -> None:
        while self._waiting and None in self._slots:
            sequence = self._waiting.popleft()
            sequence.slot = self._slots.index(None)
            self._slots[sequence.slot] = sequence

    def _release(self, sequence: _Sequence) -> None:
        """Free a slot and keep the occupied ones consecutive (so batches read the cache as a view)."""
        hole = sequence.slot
        self._slots[hole] = None
        last = max((i for i, s in enumerate(self._slots) if s is not None), default=-1)
        if last > hole:
            moved = self._slots[last]
            assert moved is not None
            self._cache.move(last, hole, moved.cached)
            self._slots[hole], self._slots[last] = moved, None
            moved.slot = hole

    def _forward(
        self, batch: list[_Sequence], input_ids: torch.Tensor, positions: torch.Tensor, keep: Any
    ) -> Any:
        kv_len = int(positions.max()) + 1
        self._cache.bind([s.slot for s in batch], positions, kv_len)
        keys = torch.arange(kv_len, device=self.device)
        mask = (keys[None, None, None, :] <= positions[:, None, :, None]).contiguous()
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "position_ids": positions,
            "attention_mask": mask,
            "past_key_values": self._cache,
            "use_cache": True,
            "logits_to_keep": keep,
        }
        if self._multi is not None:
            self._multi.select([s.request.adapter for s in batch], self.dtype, self.device)
        elif self._peft:
            kwargs["adapter_names"] = [s.request.adapter or "__base__" for s in batch]
        with torch.inference_mode():
            return self.model(**kwargs).logits

    def _prefill_step(self, prefilling: list[_Sequence]) -> None:
        batch, width = _prefill_batch(prefilling, self.prefill_tokens)
        takes = [min(width, len(s.pending)) for s in batch]
        input_ids = torch.zeros(len(batch), width, dtype=torch.long)
        for row, (sequence, take) in enumerate(zip(batch, takes, strict=True)):
            input_ids[row, :take] = torch.tensor(sequence.pending[:take])
        starts = torch.tensor([s.cached for s in batch])
        positions = (starts[:, None] + torch.arange(width)[None, :]).to(self.device)
        last = torch.tensor([[t - 1] for t in takes], device=self.device)
        logits = self._forward(batch, input_ids.to(self.device), positions, last)[:, 0]
        done_rows = []
        for row, (sequence, take) in enumerate(zip(batch, takes, strict=True)):
            sequence.cached += take
            sequence.pending = sequence.pending[take:]
            if not sequence.pending:
                sequence.prefilling = False
                done_rows.append(row)
        if done_rows:
            self._sample([batch[r] for r in done_rows], logits[done_rows])

    def _decode_step(self, decoding: list[_Sequence]) -> None:
        input_ids = torch.tensor([s.pending for s in decoding], device=self.device)
        positions = torch.tensor([[s.cached] for s in decoding], device=self.device)
        logits = self._forward(decoding, input_ids, positions, 1)[:, -1]
        for sequence in decoding:
            sequence.cached += 1
        self._sample(decoding, logits)

    def _token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))

    def _sample(self, batch: list[_Sequence], logits: torch.Tensor) -> None:
        picks = sample_next(logits, [s.state for s in batch], self._token_text)
        for sequence, (token, logprob) in zip(batch, picks, strict=True):
            self._accept(sequence, token, logprob)

    def _accept(self, sequence: _Sequence, token: int, logprob: TokenLogprob | None) -> None:
        state, request = sequence.state, sequence.request
        if token in self._eos and not request.ignore_eos:
            self._finish(sequence, GenerationChunk(sequence.stream.flush(), [], "stop"))
            return
        state.output_ids.append(token)
        if state.constraint is not None:
            state.constraint.advance(token)
        text, stopped = sequence.stream.push(token)
        logprobs = [logprob] if logprob is not None else None
        if stopped:
            self._finish(sequence, GenerationChunk(text, [token], "stop", logprobs))
        elif state.constraint is not None and state.constraint.is_finished():
            self._finish(sequence, GenerationChunk(text + sequence.stream.flush(), [token], "stop", logprobs))
        elif len(state.output_ids) >= request.max_tokens:
            self._finish(
                sequence, GenerationChunk(text + sequence.stream.flush(), [token], "length", logprobs)
            )
        else:
            sequence.emit(GenerationChunk(text, [token], None, logprobs))
            sequence.pending = [token]

    def _finish(self, sequence: _Sequence, last: GenerationChunk | BaseException) -> None:
        sequence.finished = True
        if sequence.slot >= 0 and self._slots[sequence.slot] is sequence:
            self._release(sequence)  # before the client hears of the end, so stats() agree with it
        sequence.emit(last)
        sequence.emit(_DONE)

    def _fail_all(self, error: LargeForgeError) -> None:
        with self._inbox_lock:
            pending = [i for i in self._inbox if isinstance(i, _Sequence)]
            self._inbox.clear()
        for sequence in [*pending, *self._waiting, *(s for s in self._slots if s is not None)]:
            if not sequence.finished:
                self._finish(sequence, error)


def _prefill_batch(prefilling: list[_Sequence], budget: int) -> tuple[list[_Sequence], int]:
    """The first k waiting prompts (FIFO) and one chunk width W for all of them, maximising k·W ≤ budget.

    Every row takes the same W tokens (W ≤ the shortest remaining prompt among them), so the padded
    batch carries no padding: a padded prefill would spend compute on nothing, on a CPU that is
    compute-bound. Longer prompts simply continue in the next iteration.
    """
    best: tuple[int, int] = (0, 0)  # (tokens, k)
    shortest = budget
    for k, sequence in enumerate(prefilling[:budget], start=1):
        shortest = min(shortest, len(sequence.pending))
        width = min(shortest, budget // k)
        if width == 0:
            break
        if k * width >= best[0]:
            best = (k * width, k)
    k = best[1]
    return prefilling[:k], best[0] // k


__all__ = ["HFEngine"]
