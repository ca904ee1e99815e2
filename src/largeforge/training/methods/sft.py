"""Supervised fine-tuning via TRL's SFTTrainer: full, LoRA or QLoRA, assistant-only loss, packing.

Owns the SFT options and their translation to TRL. Model loading, PEFT, checkpoints and progress
belong to ``training/spine.py`` and ``training/runner.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from largeforge.training.specs import RecipeBase
from largeforge.training.spine import MethodContext

ACCEPTED_KINDS = ("conversation", "text")


class SFTRecipe(RecipeBase):
    method: Literal["sft"] = "sft"
    assistant_only_loss: bool | None = Field(
        None, description="Train only on assistant tokens (default: on for conversations, off for text)."
    )
    packing: bool = Field(False, description="Pack several short samples into each max_length sequence.")
    packing_strategy: Literal["bfd", "bfd_split", "wrapped"] = Field(
        "bfd",
        description="How to pack: bfd keeps conversations whole (attention never crosses them); wrapped cuts them but is faster on CPU.",
    )


def to_trl(recipe: SFTRecipe, ctx: MethodContext) -> Any:
    """The only place where our SFT field names meet TRL's."""
    from trl import SFTConfig

    assistant_only = recipe.assistant_only_loss
    if assistant_only is None:
        assistant_only = ctx.data_kind == "conversation"
    return SFTConfig(
        **ctx.args(),
        max_length=recipe.training.max_length,
        packing=recipe.packing,
        packing_strategy=recipe.packing_strategy,
        assistant_only_loss=assistant_only,
        dataset_text_field="text",
    )


def build_trainer(ctx: MethodContext) -> Any:
    from trl import SFTTrainer

    recipe: SFTRecipe = ctx.recipe
    return SFTTrainer(args=to_trl(recipe, ctx), **ctx.trainer_kwargs())


def check(recipe: SFTRecipe, data_kind: str) -> list[str]:
    """Option combinations this method refuses (pre-flight)."""
    if recipe.assistant_only_loss and data_kind == "text":
        return [
            "assistant_only_loss needs conversation data; plain text has no assistant turns (set it to false)"
        ]
    return []
