"""The method registry: one entry per training method, keyed by the recipe's ``method`` literal.

Modules import TRL lazily inside their functions, so importing this registry (for the recipe schema,
the CLI's --help or the API) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from largeforge.training.methods import custom, distill, dpo, grpo, kto, orpo, pretrain, sft


@dataclass(frozen=True)
class MethodSpec:
    recipe: type[Any]
    accepted_kinds: tuple[str, ...]
    build_trainer: Callable[[Any], Any]
    check: Callable[[Any, str], list[str]]


def _spec(module: Any, recipe: type[Any]) -> MethodSpec:
    return MethodSpec(recipe, module.ACCEPTED_KINDS, module.build_trainer, module.check)


METHODS: dict[str, MethodSpec] = {
    "pretrain": _spec(pretrain, pretrain.PretrainRecipe),
    "sft": _spec(sft, sft.SFTRecipe),
    "dpo": _spec(dpo, dpo.DPORecipe),
    "orpo": _spec(orpo, orpo.ORPORecipe),
    "kto": _spec(kto, kto.KTORecipe),
    "grpo": _spec(grpo, grpo.GRPORecipe),
    "distill": _spec(distill, distill.DistillRecipe),
    "custom": _spec(custom, custom.CustomRecipe),
}

__all__ = ["METHODS", "MethodSpec"]
