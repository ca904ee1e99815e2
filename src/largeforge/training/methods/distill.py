"""Knowledge distillation: a teacher model (a directory) teaches the student.

Two algorithms behind one recipe:
- ``on_policy`` (default): TRL's ``DistillationTrainer``; the student writes completions for prompt-only
  rows and learns the teacher's token distribution on them.
- ``gkd``: TRL's experimental ``GKDTrainer`` (generalized knowledge distillation) on conversations,
  mixing the dataset's answers with the student's own (``lmbda``).

Teacher and student must share a tokenizer (the distributions are compared token by token).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import Field

from largeforge.training.specs import RecipeBase
from largeforge.training.spine import MethodContext, load_model

ACCEPTED_KINDS = ("prompt", "conversation")
_KIND_OF = {"on_policy": "prompt", "gkd": "conversation"}


class DistillRecipe(RecipeBase):
    method: Literal["distill"] = "distill"
    teacher: str = Field(description="Teacher model directory (same tokenizer as the student).")
    algorithm: Literal["on_policy", "gkd"] = Field(
        "on_policy",
        description="on_policy: prompt-only data, student generates; gkd: conversation data (TRL GKD).",
    )
    temperature: float = Field(1.0, gt=0, description="Softens both distributions in the distillation loss.")
    beta: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Divergence mix: 0 = forward KL, 1 = reverse KL, between = generalized JSD.",
    )
    max_completion_length: int = Field(64, gt=0, description="Tokens the student generates per prompt.")
    lmbda: float = Field(
        0.5, ge=0, le=1, description="gkd only: share of on-policy (student-written) samples."
    )


def _gkd_classes() -> tuple[Any, Any]:
    from largeforge.errors import Unavailable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TRL warns on every import from trl.experimental
        try:
            from trl.experimental.gkd import GKDConfig, GKDTrainer
        except ImportError as exc:
            raise Unavailable(f"this TRL version has no GKD trainer ({exc}); install the pinned trl") from exc
    return GKDConfig, GKDTrainer


def to_trl(recipe: DistillRecipe, ctx: MethodContext) -> Any:
    """The only place where our distillation field names meet TRL's."""
    if recipe.algorithm == "gkd":
        config_class, _ = _gkd_classes()
        return config_class(
            **ctx.args(),
            max_length=recipe.training.max_length,
            temperature=recipe.temperature,
            beta=recipe.beta,
            lmbda=recipe.lmbda,
            max_new_tokens=recipe.max_completion_length,
        )
    from trl import DistillationConfig

    return DistillationConfig(
        **ctx.args(),
        temperature=recipe.temperature,
        beta=recipe.beta,
        max_completion_length=recipe.max_completion_length,
    )


def build_trainer(ctx: MethodContext) -> Any:
    from largeforge.model_source import resolve_model_source

    recipe: DistillRecipe = ctx.recipe
    teacher = load_model(resolve_model_source(recipe.teacher), recipe, ctx.plan)
    teacher.eval()
    if teacher.config.vocab_size != len(ctx.tokenizer):
        from largeforge.errors import InvalidInput

        raise InvalidInput(
            f"teacher {recipe.teacher} has a vocabulary of {teacher.config.vocab_size} tokens but the student's "
            f"tokenizer has {len(ctx.tokenizer)}; distillation needs both to share one tokenizer"
        )
    if recipe.algorithm == "gkd":
        _, trainer_class = _gkd_classes()
    else:
        from trl import DistillationTrainer as trainer_class
    return trainer_class(teacher_model=teacher, args=to_trl(recipe, ctx), **ctx.trainer_kwargs())


def check(recipe: DistillRecipe, data_kind: str) -> list[str]:
    wanted = _KIND_OF[recipe.algorithm]
    if data_kind != wanted:
        return [f"algorithm {recipe.algorithm} trains on {wanted} data, but data.train is {data_kind} data"]
    return []
