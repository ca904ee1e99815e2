"""A KV cache the engine owns: one fixed-size slot per running sequence, pre-allocated once.

Static slots (rather than pages) keep the attention call a plain SDPA over a strided view: when
the batch's sequences sit in consecutive slots — the engine keeps them compact — reading the cache
copies nothing. The object quacks like a transformers ``Cache`` for the one method attention layers
call (``update``); the engine binds the rows and positions of each forward pass before running it.
"""

from __future__ import annotations

from typing import Any

import torch


class SlotKVCache:
    """Keys and values for ``slots`` sequences of up to ``length`` tokens each, per layer."""

    def __init__(
        self,
        *,
        layers: int,
        slots: int,
        kv_heads: int,
        head_dim: int,
        length: int,
        dtype: torch.dtype,
        device: str | torch.device,
    ) -> None:
        shape = (slots, kv_heads, length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.slots, self.length = slots, length
        self._rows = torch.zeros(0, dtype=torch.long)
        self._positions = torch.zeros(0, 0, dtype=torch.long)
        self._span: slice | None = None
        self._kv_len = 0

    @staticmethod
    def bytes_per_slot(config: Any, length: int, dtype: torch.dtype) -> int:
        """Memory one slot takes for a transformers config (used to size the cache to a budget)."""
        heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
        head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
        element = torch.empty(0, dtype=dtype).element_size()
        return 2 * int(config.num_hidden_layers) * heads * head_dim * length * element

    def bind(self, rows: list[int], positions: torch.Tensor, kv_len: int) -> None:
        """Set the slots (one per batch row) and absolute positions the next forward pass writes."""
        self._rows = torch.tensor(rows, dtype=torch.long, device=positions.device)
        self._positions = positions
        consecutive = rows == list(range(rows[0], rows[0] + len(rows)))
        self._span = slice(rows[0], rows[0] + len(rows)) if consecutive else None
        self._kv_len = kv_len

    def update(
        self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: Any
    ) -> tuple[torch.Tensor, ...]:
        """Store this step's keys/values ([B, H, q, D]) and return every cached one for the batch's rows."""
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        index = (self._rows[:, None], slice(None), self._positions)
        keys[index] = key.transpose(1, 2).to(keys.dtype)
        values[index] = value.transpose(1, 2).to(values.dtype)
        if self._span is not None:
            return keys[self._span, :, : self._kv_len], values[self._span, :, : self._kv_len]
        return keys[self._rows, :, : self._kv_len], values[self._rows, :, : self._kv_len]

    def move(self, source: int, target: int, used: int) -> None:
        """Copy the first ``used`` positions of one slot into another (keeping slots compact)."""
        for tensor in (*self.keys, *self.values):
            tensor[target, :, :used] = tensor[source, :, :used]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self._kv_len


__all__ = ["SlotKVCache"]
