"""Odds Ratio Preference Optimization: SFT and preference alignment in one loss, no reference model.

TRL keeps ORPO in ``trl.experimental``; this module is the only place that imports it, so a TRL change
breaks one module and its test, not the recipe format users write.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import Field

from largeforge.training.specs import RecipeBase
from largeforge.training.spine import MethodContext

ACCEPTED_KINDS = ("preference",)


class ORPORecipe(RecipeBase):
    method: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, description="Weight of the odds-ratio term (lambda in the paper).")


def _trl_orpo() -> tuple[Any, Any]:
    from largeforge.errors import Unavailable

    with warnings.catch_warnings():
        # TRL warns on every import from trl.experimental; we pin TRL and test this path.
        warnings.simplefilter("ignore")
        try:
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer
        except ImportError as exc:
            raise Unavailable(
                f"this TRL version has no ORPO trainer ({exc}); install the pinned trl"
            ) from exc
    return ORPOConfig, ORPOTrainer


def to_trl(recipe: ORPORecipe, ctx: MethodContext) -> Any:
    config_class, _ = _trl_orpo()
    # ORPO's collator needs the raw prompt/chosen/rejected columns.
    return config_class(
        **ctx.args(), max_length=recipe.training.max_length, beta=recipe.beta, remove_unused_columns=False
    )


def build_trainer(ctx: MethodContext) -> Any:
    _, trainer_class = _trl_orpo()
    return trainer_class(args=to_trl(ctx.recipe, ctx), **ctx.trainer_kwargs())


def check(recipe: ORPORecipe, data_kind: str) -> list[str]:
    return []
