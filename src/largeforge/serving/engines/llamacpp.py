"""The ``llamacpp`` engine: GGUF files on llama.cpp (llama-cpp-python), the fast batch-1 CPU path.

Owns loading a GGUF file (and GGUF LoRA adapters), the tokenizer that goes with it, and token-by-token
decoding. llama.cpp computes the logits; sampling is ``serving/sampling.py``'s, the hf engine's own, so
seeds, penalties, ``min_p`` and log-probabilities mean the same thing in both engines. Grammars are
enforced with llguidance over llama.cpp's own vocabulary (``llguidance.llamacpp``).

It does not batch. llama.cpp's ``Llama`` object is not thread-safe, so a single worker thread decodes
one request at a time and the others wait in its queue (``stats().waiting``). At batch 1 on a CPU this
is still our fastest path (``bench/llamacpp_vs_hf.py``). The KV cache of the previous request is kept,
so a prompt that shares a prefix with it (a system prompt, a chat turn) is only partly evaluated again.
Greedy decoding equals llama.cpp's own ``create_completion(temperature=0)`` on the same prompt ids.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import warnings
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from largeforge.errors import InvalidInput, NotFound, Overloaded, Unavailable
from largeforge.serving.engine import (
    EngineStats,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    Grammar,
    TokenLogprob,
)
from largeforge.serving.sampling import RowState, make_generator, sample_next
from largeforge.serving.text_stream import TextStream

_DONE = object()
# A context longer than this is not allocated unless asked for (n_ctx=...): the KV cache of a 32k-token
# context costs gigabytes that a batch-1 CPU server rarely uses.
DEFAULT_MAX_CONTEXT = 8192


class LlamaCppEngine:
    """Serves one GGUF model, and GGUF LoRA adapters given at construction, one request at a time.

    Args:
        model: a ``.gguf`` file, or a directory holding exactly one.
        adapters: name → GGUF LoRA file (llama.cpp cannot read PEFT directories).
        n_ctx: context length to allocate; default the model's, at most ``DEFAULT_MAX_CONTEXT``.
        n_threads: CPU threads for llama.cpp; default llama-cpp-python's (half the cores).
        tokenizer: a Hugging Face tokenizer directory; default the tokenizer stored in the GGUF file.
        max_waiting: requests allowed to queue behind the running one before ``Overloaded``.
        served_name: the base model's id in /v1/models; default the file name without ``.gguf``.

    Raises:
        Unavailable: llama-cpp-python is not installed.
        NotFound / InvalidInput: no such file, not a GGUF model, an adapter that is not a GGUF LoRA,
            or a tokenizer that does not tokenise as llama.cpp does.
    """

    def __init__(
        self,
        model: str,
        adapters: dict[str, str] | None = None,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        tokenizer: str | None = None,
        max_waiting: int = 64,
        served_name: str | None = None,
    ) -> None:
        if max_waiting < 1:
            raise InvalidInput(f"max_waiting must be at least 1, got {max_waiting}")
        llama_cpp = _import_llama_cpp()
        path = resolve_gguf(model)
        fields = read_gguf_fields(path)
        if fields.get("general.type", "model") != "model":
            raise InvalidInput(f"{path} is a GGUF {fields['general.type']}, not a model")
        self.base_id = served_name or path.stem
        self.adapters: dict[str, Any] = {}
        adapter_files = {name: _require_gguf_lora(name, file) for name, file in (adapters or {}).items()}
        architecture = fields.get("general.architecture")
        trained = int(fields.get(f"{architecture}.context_length", DEFAULT_MAX_CONTEXT))
        self.context_length = n_ctx or min(trained, DEFAULT_MAX_CONTEXT)
        try:
            self._llm: Any = llama_cpp.Llama(
                str(path), n_ctx=self.context_length, n_threads=n_threads, verbose=False
            )
        except (ValueError, RuntimeError) as exc:
            raise InvalidInput(f"llama.cpp cannot load {path}: {exc}") from exc
        try:
            self._setup_vocabulary(path, tokenizer)
            for name, file in adapter_files.items():
                self._load_gguf_lora(name, file)
        except BaseException:
            self._llm.close()
            raise
        self._active_adapter: str | None = None
        self._lltokenizer: Any = None
        self._lock = threading.Lock()  # llama.cpp's context is not thread-safe
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")
        self._counter_lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._max_waiting = max_waiting
        self._closing = False

    def _setup_vocabulary(self, path: Path, tokenizer: str | None) -> None:
        llama_cpp = _llama_cpp()
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._n_vocab = int(self._llm.n_vocab())
        # Every end-of-generation token (EOS, EOT, <|im_end|> …), as llama.cpp's own loop stops on.
        self._eog = {t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)}
        self.tokenizer = load_tokenizer(path, tokenizer)
        check_tokenizer(self.tokenizer, self._llm)

    def _load_gguf_lora(self, name: str, file: Path) -> None:
        adapter = _llama_cpp().llama_adapter_lora_init(self._llm.model, str(file).encode())
        if adapter is None:
            raise InvalidInput(
                f"--adapter {name}: llama.cpp rejected {file} (a LoRA for another architecture or shape?)"
            )
        self.adapters[name] = adapter  # freed with the model by Llama.close

    def model_ids(self) -> list[str]:
        return [self.base_id, *self.adapters]

    def stats(self) -> EngineStats:
        llm = self._llm
        usage = llm.n_tokens / self.context_length if llm is not None else 0.0
        return EngineStats(running=self._running, waiting=self._waiting, kv_cache_usage=usage)

    async def load_adapter(self, name: str, path: str) -> None:
        raise InvalidInput(
            "the llamacpp engine cannot load adapters at run time (llama.cpp binds GGUF LoRA files when "
            "the model loads): restart with --adapter NAME=FILE.gguf, or use the hf engine"
        )

    async def unload_adapter(self, name: str) -> None:
        raise InvalidInput(
            "the llamacpp engine cannot unload adapters at run time: restart without that --adapter, "
            "or use the hf engine"
        )

    async def check_health(self) -> None:
        if self._closing or self._llm is None:
            raise Unavailable("the llamacpp engine is closed")

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        # Queued requests run first (and fail with Unavailable); the close runs on the worker thread,
        # after them, so no decode ever sees a freed context.
        await asyncio.wrap_future(self._executor.submit(self._close))
        self._executor.shutdown(wait=False)

    def _close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()  # frees the adapters too: they belong to the model
                self._llm = None

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        await self.check_health()
        self._validate(request)
        with self._counter_lock:
            if self._waiting >= self._max_waiting:
                raise Overloaded(f"{self._waiting} requests are already waiting for the llamacpp engine")
            self._waiting += 1
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        future = self._executor.submit(self._decode, request, emit, cancelled)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()  # a client that went away frees the engine at the next token
            if future.cancel():  # still queued: it never starts
                with self._counter_lock:
                    self._waiting -= 1
            else:
                await asyncio.shield(asyncio.wrap_future(future))

    def _validate(self, request: GenerationRequest) -> None:
        if not request.prompt_ids:
            raise InvalidInput("the prompt is empty; llama.cpp needs at least one token")
        if request.adapter is not None and request.adapter not in self.adapters:
            raise NotFound(f"adapter {request.adapter!r} is not loaded; loaded: {sorted(self.adapters)}")
        if len(request.prompt_ids) >= self.context_length:
            raise InvalidInput(
                f"the prompt has {len(request.prompt_ids)} tokens; this llamacpp engine's context holds "
                f"{self.context_length} (start it with a larger n_ctx)"
            )
        if any(not 0 <= t < self._n_vocab for t in request.prompt_ids):
            raise InvalidInput(f"prompt token ids must be in [0, {self._n_vocab})")

    def _decode(
        self, request: GenerationRequest, emit: Callable[[Any], None], cancelled: threading.Event
    ) -> None:
        with self._counter_lock:
            self._waiting -= 1
        try:
            with self._lock:
                self._running = 1
                try:
                    self._decode_locked(request, emit, cancelled)
                finally:
                    self._running = 0
        except Exception as exc:  # noqa: BLE001 — worker-thread boundary: hand the error to the request
            emit(exc)
        finally:
            emit(_DONE)

    def _decode_locked(
        self, request: GenerationRequest, emit: Callable[[Any], None], cancelled: threading.Event
    ) -> None:
        import torch

        llm = self._llm
        if llm is None:
            raise Unavailable("the llamacpp engine is closed")
        if cancelled.is_set():
            return
        matcher = self._matcher(request.grammar) if request.grammar is not None else None
        self._select_adapter(request.adapter)
        self._prefill(request.prompt_ids)
        # With a grammar the mask is applied here, so sampling sees the constrained scores and the
        # log-probabilities are still the model's raw ones (the order serving/sampling.py documents).
        pick = RowState(
            replace(request, logprobs=None) if matcher is not None else request,
            make_generator(request.seed, "cpu"),
        )
        stream = TextStream(self.tokenizer, request.stop)
        budget = min(request.max_tokens, self.context_length - len(request.prompt_ids))
        for step in range(budget):
            if cancelled.is_set():
                return
            if step:
                llm.eval(pick.output_ids[-1:])
            raw = torch.from_numpy(
                np.ctypeslib.as_array(
                    _llama_cpp().llama_get_logits_ith(llm.ctx, -1), shape=(self._n_vocab,)
                ).copy()
            )
            scores = (
                raw if matcher is None else raw.masked_fill(~_allowed(matcher, self._n_vocab), float("-inf"))
            )
            token, logprob = sample_next(scores[None], [pick], self._token_text)[0]
            if matcher is not None and request.logprobs is not None:
                logprob = _raw_logprob(raw, token, request.logprobs, self._token_text)
            if token in self._eog and not request.ignore_eos:
                emit(GenerationChunk(stream.flush(), [], "stop"))
                return
            pick.output_ids.append(token)
            text, stopped = stream.push(token)
            logprobs = [logprob] if logprob is not None else None
            finish: FinishReason | None = "stop" if stopped else None
            if matcher is not None and not stopped:
                matcher.consume_token(token)
                if matcher.is_stopped():  # the grammar is complete: nothing but EOS could follow
                    finish = "stop"
            if finish is None and step == budget - 1:
                finish = "length"
            if finish is not None and not stopped:
                text += stream.flush()
            emit(GenerationChunk(text, [token], finish, logprobs))
            if finish is not None:
                return

    def _select_adapter(self, name: str | None) -> None:
        """Bind ``name``'s LoRA (or none) to the context; the cached KV of another adapter is stale."""
        if name == self._active_adapter:
            return
        llama_cpp = _llama_cpp()
        if name is None:
            code = llama_cpp.llama_set_adapters_lora(self._llm.ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.adapters[name])
            code = llama_cpp.llama_set_adapters_lora(self._llm.ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        if code:
            raise Unavailable(f"llama.cpp could not switch to adapter {name!r} (code {code})")
        self._active_adapter = name
        self._llm.n_tokens = 0

    def _prefill(self, prompt: list[int]) -> None:
        """Evaluate the prompt, reusing the KV cache for the prefix it shares with the last request."""
        llm = self._llm
        cached = llm.input_ids[: llm.n_tokens]
        keep = 0
        limit = min(len(cached), len(prompt) - 1)  # at least one token is evaluated: its logits are needed
        while keep < limit and cached[keep] == prompt[keep]:
            keep += 1
        llm.n_tokens = keep  # Llama.eval drops the KV cache from n_tokens on
        llm.eval(prompt[keep:])

    def _matcher(self, grammar: Grammar) -> Any:
        import llguidance
        import llguidance.llamacpp

        if self._lltokenizer is None:  # ~1 s for a large vocabulary, so built once, on first use
            with warnings.catch_warnings():
                # llguidance 1.9 still calls llama_token_get_attr, which llama-cpp-python 0.3.36
                # deprecates in favour of llama_vocab_get_attr; same result, not ours to fix.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._lltokenizer = llguidance.llamacpp.lltokenizer_from_vocab(self._vocab)
        compiled = llguidance.LLMatcher.grammar_from_lark(grammar.lark)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(compiled, self._lltokenizer)
        if is_error:
            raise InvalidInput(f"the grammar does not compile: {messages[0]}")
        return llguidance.LLMatcher(self._lltokenizer, compiled, log_level=0)

    def _token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))


def _allowed(matcher: Any, n_vocab: int) -> Any:
    """The grammar's token mask as a bool tensor over the vocabulary."""
    import torch

    bits = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
    return torch.from_numpy(np.unpackbits(bits, bitorder="little")[:n_vocab].astype(bool))


def _raw_logprob(raw: Any, token: int, top: int, text: Callable[[int], str]) -> TokenLogprob:
    """The model's own log-probability of ``token`` and its ``top`` alternatives, before the grammar."""
    import torch

    log_probs = torch.log_softmax(raw.float(), dim=-1)
    alternatives: list[tuple[str, float]] = []
    if top > 0:
        values, ids = torch.topk(log_probs, min(top, log_probs.numel()))
        alternatives = [(text(int(i)), float(v)) for v, i in zip(values.tolist(), ids.tolist(), strict=True)]
    return TokenLogprob(text(token), float(log_probs[token]), alternatives)


def resolve_gguf(model: str) -> Path:
    """A ``.gguf`` file, or the only one in a directory.

    Raises:
        NotFound: nothing at ``model``. InvalidInput: not a GGUF file, or a directory without exactly one.
    """
    path = Path(model).expanduser()
    if not path.exists():
        raise NotFound(f"model {model!r} not found; the llamacpp engine serves a .gguf file")
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) != 1:
            raise InvalidInput(
                f"{path} holds {len(found)} .gguf files; the llamacpp engine needs one GGUF file — "
                f"convert a model directory with `largeforge export gguf {path} OUT.gguf`"
            )
        path = found[0]
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise InvalidInput(f"{path} is not a GGUF file; convert it with `largeforge export gguf`")
    return path.resolve()


def read_gguf_fields(path: Path) -> dict[str, Any]:
    """The scalar metadata of a GGUF file (``general.*``, ``<arch>.context_length``, ``adapter.*``)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    scalars = {}
    for key, field in reader.fields.items():
        if key.startswith(("general.", "adapter.")) or key.endswith(".context_length"):
            value = field.contents()
            if isinstance(value, str | int | float):
                scalars[key] = value
    return scalars


def _require_gguf_lora(name: str, file: str) -> Path:
    path = Path(file).expanduser()
    is_lora = False
    if path.is_file():
        with path.open("rb") as handle:
            is_gguf = handle.read(4) == b"GGUF"
        fields = read_gguf_fields(path) if is_gguf else {}
        is_lora = fields.get("general.type") == "adapter" and fields.get("adapter.type") == "lora"
    if not is_lora:
        raise InvalidInput(
            f"--adapter {name}={file}: the llamacpp engine needs a GGUF LoRA file (llama.cpp's "
            "convert_lora_to_gguf.py writes one from a PEFT adapter); serve PEFT adapters with the hf engine"
        )
    return path.resolve()


def load_tokenizer(path: Path, tokenizer: str | None) -> Any:
    """A Hugging Face tokenizer for the API layer: from ``tokenizer`` if given, else from the GGUF file.

    transformers rebuilds a fast tokenizer (and the chat template) from the GGUF's ``tokenizer.*`` keys,
    so a GGUF file alone is servable; :func:`check_tokenizer` then proves it splits text as llama.cpp.
    """
    from transformers import AutoTokenizer

    try:
        if tokenizer is not None:
            return AutoTokenizer.from_pretrained(tokenizer)
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise InvalidInput(
            f"cannot build a tokenizer for {path}: {exc}; pass tokenizer=DIR with the model's tokenizer"
        ) from exc


# Specials, digits, whitespace runs, accents and an emoji: where pre-tokenizers disagree.
_PROBE = "Hello world!\n\n  12345 café, naïve 🙂 — x=1;\tend"


def check_tokenizer(tokenizer: Any, llm: Any) -> None:
    """Raise InvalidInput unless ``tokenizer`` gives llama.cpp's own token ids on a chat prompt.

    The API tokenises prompts with ``tokenizer``; different ids would silently feed the model another text.
    """
    messages = [{"role": "user", "content": _PROBE}]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except ValueError:  # no chat template: check plain text only
        text = _PROBE
    ours = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    theirs = llm.tokenize(text.encode(), add_bos=False, special=True)
    if ours != theirs:
        raise InvalidInput(
            f"the tokenizer splits {text!r} into {ours}, llama.cpp into {theirs}; pass tokenizer=DIR "
            "with the model's own tokenizer"
        )


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise Unavailable(
            "the llamacpp engine needs llama-cpp-python: pip install 'largeforge[llamacpp]'"
        ) from exc
    return llama_cpp


def _llama_cpp() -> Any:
    import llama_cpp

    return llama_cpp


__all__ = ["DEFAULT_MAX_CONTEXT", "LlamaCppEngine", "check_tokenizer", "load_tokenizer", "resolve_gguf"]
