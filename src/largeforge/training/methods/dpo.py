"""Direct Preference Optimization via TRL's DPOTrainer (the reference model is the frozen start)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from largeforge.training.specs import RecipeBase
from largeforge.training.spine import MethodContext

ACCEPTED_KINDS = ("preference",)


class DPORecipe(RecipeBase):
    method: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0, description="Strength of the pull towards the reference model.")
    loss_type: Literal["sigmoid", "hinge", "ipo", "robust"] = Field(
        "sigmoid", description="DPO loss variant."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="Assumed label noise (robust/cDPO).")


def to_trl(recipe: DPORecipe, ctx: MethodContext) -> Any:
    from trl import DPOConfig

    return DPOConfig(
        **ctx.args(),
        max_length=recipe.training.max_length,
        beta=recipe.beta,
        loss_type=[recipe.loss_type],
        label_smoothing=recipe.label_smoothing,
    )


def build_trainer(ctx: MethodContext) -> Any:
    from trl import DPOTrainer

    return DPOTrainer(args=to_trl(ctx.recipe, ctx), **ctx.trainer_kwargs())


def check(recipe: DPORecipe, data_kind: str) -> list[str]:
    return []
