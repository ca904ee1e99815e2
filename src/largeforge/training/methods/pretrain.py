"""Causal language modelling on raw text, from scratch or continued, with sequence packing.

TRL's SFTTrainer trains plain text as a language model; pretraining is SFT on ``text`` rows with
packing on by default, so this module is only the recipe and its translation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from largeforge.training.specs import RecipeBase
from largeforge.training.spine import MethodContext

ACCEPTED_KINDS = ("text",)


class PretrainRecipe(RecipeBase):
    method: Literal["pretrain"] = "pretrain"
    packing: bool = Field(True, description="Pack documents back to back into max_length sequences.")
    packing_strategy: Literal["bfd", "bfd_split", "wrapped"] = Field(
        "wrapped",
        description="How to pack: wrapped is the classic pretraining stream (documents back to back, cut at max_length).",
    )


def to_trl(recipe: PretrainRecipe, ctx: MethodContext) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        **ctx.args(),
        max_length=recipe.training.max_length,
        packing=recipe.packing,
        packing_strategy=recipe.packing_strategy,
        dataset_text_field="text",
        assistant_only_loss=False,
    )


def build_trainer(ctx: MethodContext) -> Any:
    from trl import SFTTrainer

    return SFTTrainer(args=to_trl(ctx.recipe, ctx), **ctx.trainer_kwargs())


def check(recipe: PretrainRecipe, data_kind: str) -> list[str]:
    return []
