"""The engine's attention function: SDPA over the slot cache, grouped-query heads without copies.

transformers' SDPA path repeats every key/value head for its query heads whenever a mask is given
(``repeat_kv``): on a 32-row batch that copies the whole cached context of every layer on every decode
step. Here the query heads that share a key/value head are folded into the query-length dimension
instead, so attention reads the cache in place and the mask is repeated (it is tiny) rather than the
keys. Registered with transformers' ``AttentionInterface`` under :data:`ATTENTION`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

ATTENTION = "largeforge_slots"


def slot_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``query`` [B, Hq, q, D], ``key``/``value`` [B, Hkv, L, D], mask [B, 1, q, L] → [B, q, Hq, D]."""
    batch, query_heads, length, dim = query.shape
    kv_heads = key.shape[1]
    groups = query_heads // kv_heads
    # Query head i uses key/value head i // groups (transformers' repeat_kv order): fold the groups
    # into the rows, row r·q + t of a key/value head being (group r, position t).
    folded = query.reshape(batch, kv_heads, groups * length, dim)
    mask = attention_mask
    if mask is not None and groups > 1:
        mask = mask.repeat(1, 1, groups, 1)
    output = F.scaled_dot_product_attention(folded, key, value, attn_mask=mask, scale=scaling)
    return output.reshape(batch, query_heads, length, dim).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make :func:`slot_attention` loadable as ``attn_implementation=ATTENTION`` (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, slot_attention)
    return ATTENTION


__all__ = ["ATTENTION", "register", "slot_attention"]
