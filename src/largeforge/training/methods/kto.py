"""Kahneman-Tversky Optimization via TRL's KTOTrainer: single answers labelled good or bad."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from largeforge.training.specs import RecipeBase
from largeforge.training.spine import MethodContext

ACCEPTED_KINDS = ("kto",)


class KTORecipe(RecipeBase):
    method: Literal["kto"] = "kto"
    beta: float = Field(0.1, gt=0, description="Strength of the pull towards the reference model.")
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight of desirable (label true) rows.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight of undesirable (label false) rows.")


def to_trl(recipe: KTORecipe, ctx: MethodContext) -> Any:
    from trl import KTOConfig

    return KTOConfig(
        **ctx.args(),
        max_length=recipe.training.max_length,
        beta=recipe.beta,
        desirable_weight=recipe.desirable_weight,
        undesirable_weight=recipe.undesirable_weight,
    )


def build_trainer(ctx: MethodContext) -> Any:
    from trl import KTOTrainer

    return KTOTrainer(args=to_trl(ctx.recipe, ctx), **ctx.trainer_kwargs())


def check(recipe: KTORecipe, data_kind: str) -> list[str]:
    return []
