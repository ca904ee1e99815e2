"""Many LoRA adapters in one forward pass, each row with its own adapter, at about the cost of one.

PEFT's per-row ``adapter_names`` loops over the adapters in every LoRA layer (gather the rows, two
small matmuls, scatter back): with four adapters a decode step on CPU costs twice the base model's.
Here every LoRA layer concatenates its adapters along the rank: ``A = [A_1; …; A_n]`` (n·r × in) and
``B = [s_1 B_1, …, s_n B_n]`` (out × n·r, scalings folded in). A step multiplies ``x @ Aᵀ`` once, zeroes
each row's columns that belong to other adapters, and adds ``(· ) @ Bᵀ`` — two thin matmuls per layer
whatever the number of adapters, no merge/unmerge, and rows on the base model get exactly zero.
When no row of a step uses an adapter the LoRA work is skipped altogether.

Only plain LoRA on ``nn.Linear`` qualifies (no DoRA or other variants); :func:`supports` says so and
the engine falls back to PEFT's ``adapter_names`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _lora_layers(model: Any) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def supports(model: Any) -> bool:
    """True when every LoRA layer is a plain LoRA ``Linear`` (what the concatenated form computes)."""
    from peft.tuners.lora import Linear

    for layer in _lora_layers(model):
        if type(layer) is not Linear or any(layer.use_dora.values()) or getattr(layer, "lora_variant", {}):
            return False
        if not isinstance(layer.base_layer, torch.nn.Linear):
            return False
    return True


class MultiLoRA:
    """The concatenated adapters of a PEFT model, and which adapter each row of the next step uses."""

    def __init__(self, model: Any, adapters: Sequence[str]) -> None:
        self.adapters = list(adapters)
        self._index = {name: i for i, name in enumerate(self.adapters)}
        self._rows: torch.Tensor | None = None  # [B, n] one-hot of each row's adapter, None = all base
        self._masks: dict[int, torch.Tensor] = {}  # per column layout: [B, 1, n·r], built once a step
        self._layouts: dict[tuple[int, ...], int] = {}
        self._owners: dict[int, torch.Tensor] = {}
        for layer in _lora_layers(model):
            self._install(layer)

    def _mask(self, layout: int) -> torch.Tensor:
        mask = self._masks.get(layout)
        if mask is None:
            assert self._rows is not None
            mask = self._masks[layout] = self._rows[:, self._owners[layout]].unsqueeze(1)
        return mask

    def _install(self, layer: Any) -> None:
        names = [name for name in self.adapters if name in layer.lora_A]
        if not names:
            layer.forward = layer.base_layer.forward
            return
        a = torch.cat([layer.lora_A[name].weight for name in names], dim=0)
        b = torch.cat([layer.lora_B[name].weight * layer.scaling[name] for name in names], dim=1)
        owner = torch.cat(
            [torch.full((layer.lora_A[name].weight.shape[0],), self._index[name]) for name in names]
        ).to(a.device)
        layout = self._layouts.setdefault(tuple(owner.tolist()), len(self._layouts))
        self._owners[layout] = owner
        # The thin LoRA matmuls run in float32 even for a bf16 model: CPU bf16 kernels are slow at rank 8.
        a_t, b_t = a.T.float().contiguous(), b.T.float().contiguous()
        base = layer.base_layer

        def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            result = base(x, *args, **kwargs)
            if self._rows is None:
                return result
            hidden = torch.matmul(x.to(a_t.dtype), a_t).mul_(
                self._mask(layout)
            )  # other adapters' columns → 0
            return result.add_(torch.matmul(hidden, b_t).to(result.dtype))

        layer.forward = forward

    def select(self, adapters: Sequence[str | None], dtype: torch.dtype, device: str | torch.device) -> None:
        """Set each row's adapter (None = the base model) for the next forward pass."""
        self._masks.clear()
        if all(name is None for name in adapters):
            self._rows = None
            return
        rows = torch.zeros(len(adapters), len(self.adapters), dtype=dtype)
        for row, name in enumerate(adapters):
            if name is not None:
                rows[row, self._index[name]] = 1
        self._rows = rows.to(device)


__all__ = ["MultiLoRA", "supports"]
