"""Group Relative Policy Optimization via TRL's GRPOTrainer, rewarded by ``largeforge.checks``.

The model writes ``num_generations`` completions per prompt; each reward scores them with a check
(the same functions evaluation uses, so "what we train for" and "what we measure" cannot drift apart),
and completions better than their group's average are reinforced. Owns the GRPO options, their
translation to TRL and the adapter from checks to TRL's reward-function calling convention.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from largeforge.checks import CheckConfig, CheckFn, build_check
from largeforge.errors import InvalidInput, LargeForgeError
from largeforge.training.specs import RecipeBase, Spec
from largeforge.training.spine import MethodContext

ACCEPTED_KINDS = ("prompt",)


class RewardSpec(Spec):
    check: CheckConfig = Field(description="The check that scores each completion (1 = pass).")
    weight: float = Field(
        1.0, allow_inf_nan=False, description="Multiplier of this reward in the sum GRPO optimizes."
    )


class GRPORecipe(RecipeBase):
    method: Literal["grpo"] = "grpo"
    rewards: list[RewardSpec] = Field(
        min_length=1, description="Checks whose weighted sum is the reward of a completion."
    )
    num_generations: int = Field(
        4, ge=2, description="Completions sampled per prompt; advantages compare them within the group."
    )
    max_completion_length: int = Field(64, gt=0, description="Tokens generated per completion at most.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the generations.")
    beta: float = Field(
        0.0, ge=0, description="KL penalty towards the starting model; 0 skips loading a reference copy."
    )


def completion_text(completion: Any) -> str:
    """The text a check scores: a plain string, or the last assistant message of a conversation.

    TRL passes strings for text prompts and a list of messages for conversational ones (several
    assistant messages when tools were called; the last one holds the final answer).
    """
    if isinstance(completion, str):
        return completion
    for message in reversed(completion):
        if message.get("role") == "assistant" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


# TRL's reward contract; None would mean "does not apply to this completion" (checks always score).
RewardFunction = Callable[..., list[float | None]]


def reward_function(check: CheckFn, name: str) -> RewardFunction:
    """Wrap a check in TRL's reward signature ``(prompts, completions, **columns) -> list[float]``.

    TRL passes each dataset column as a list aligned with ``completions`` (already repeated per
    generation) plus its own keywords (``trainer_state``, ``log_metric``...); the row a check sees is
    the aligned columns of one completion, with its prompt.
    """

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        count = len(completions)
        aligned = {k: v for k, v in columns.items() if isinstance(v, list) and len(v) == count}
        scores: list[float | None] = []
        for index, completion in enumerate(completions):
            row: Mapping[str, Any] = {"prompt": prompts[index], **{k: v[index] for k, v in aligned.items()}}
            scores.append(check(completion_text(completion), row))
        return scores

    # TRL logs each reward as rewards/<__name__>/mean.
    reward.__name__ = reward.__qualname__ = name
    return reward


def reward_functions(rewards: Sequence[RewardSpec]) -> list[RewardFunction]:
    """One TRL reward function per reward, named ``reward_<type>`` (``reward_<function>`` for python
    checks), numbered when a name repeats so each gets its own logged metric.

    Raises:
        NotFound / InvalidInput: a python check's function cannot be loaded.
    """
    functions: list[RewardFunction] = []
    seen: set[str] = set()
    for spec in rewards:
        base = f"reward_{_short_name(spec.check)}"
        name, number = base, 1
        while name in seen:
            number += 1
            name = f"{base}_{number}"
        seen.add(name)
        functions.append(reward_function(build_check(spec.check), name))
    return functions


def _short_name(config: Any) -> str:
    if config.type == "python":
        return str(config.function.rpartition(":")[2])
    return str(config.type)


def to_trl(recipe: GRPORecipe, ctx: MethodContext) -> Any:
    """The only place where our GRPO field names meet TRL's."""
    from trl import GRPOConfig

    return GRPOConfig(
        **ctx.args(),
        num_generations=recipe.num_generations,
        max_completion_length=recipe.max_completion_length,
        temperature=recipe.temperature,
        beta=recipe.beta,
        reward_weights=[reward.weight for reward in recipe.rewards],
    )


def build_trainer(ctx: MethodContext) -> Any:
    from trl import GRPOTrainer

    recipe: GRPORecipe = ctx.recipe
    _require_columns(recipe, ctx.train_dataset.column_names, "data.train")
    if ctx.eval_dataset is not None:
        _require_columns(recipe, ctx.eval_dataset.column_names, "data.eval")
    # Built before the model loads, so a user function that fails to import costs no model load.
    # (Typed list[Any]: TRL's list type also admits model ids and models, and lists are invariant.)
    rewards: list[Any] = reward_functions(recipe.rewards)
    return GRPOTrainer(args=to_trl(recipe, ctx), reward_funcs=rewards, **ctx.trainer_kwargs())


def _require_columns(recipe: GRPORecipe, columns: list[str], where: str) -> None:
    """Refuse data that lacks a column a reward reads, before the model loads rather than at step 1."""
    for index, reward in enumerate(recipe.rewards):
        missing = [c for c in reward.check.columns() if c not in columns]
        if missing:
            raise InvalidInput(
                f"rewards.{index}.check reads column {missing[0]!r}, but {where} has only {columns}; "
                "set the check's column or add it to the data"
            )


def check(recipe: GRPORecipe, data_kind: str) -> list[str]:
    """Pre-flight: the batch must hold whole groups, and every user reward function must load."""
    problems = _batch_problems(recipe, _process_count())
    for index, reward in enumerate(recipe.rewards):
        if reward.check.type == "python":
            try:
                build_check(reward.check)
            except LargeForgeError as exc:
                problems.append(f"rewards.{index}.check.function: {exc.message}")
    return problems


def _batch_problems(recipe: GRPORecipe, processes: int) -> list[str]:
    """TRL samples ``num_generations`` completions per prompt inside one generation batch of
    batch_size x gradient_accumulation_steps x processes completions (and evaluates in batches of
    batch_size x processes), so both must be multiples of num_generations."""
    training, groups = recipe.training, recipe.num_generations
    generation_batch = training.batch_size * training.gradient_accumulation_steps * processes
    problems = []
    if generation_batch % groups:
        problems.append(
            f"training.batch_size ({training.batch_size}) x training.gradient_accumulation_steps "
            f"({training.gradient_accumulation_steps}) x {processes} process(es) = {generation_batch} "
            f"completions per generation, which is not a multiple of num_generations ({groups}); "
            "make training.batch_size a multiple of num_generations"
        )
    has_eval = recipe.data.eval is not None or recipe.data.eval_fraction > 0
    if has_eval and not problems and (training.batch_size * processes) % groups:
        problems.append(
            f"evaluation runs in batches of training.batch_size ({training.batch_size}) x {processes} "
            f"process(es), which is not a multiple of num_generations ({groups}); make training.batch_size "
            "a multiple of num_generations"
        )
    return problems


def _process_count() -> int:
    from accelerate import PartialState

    return int(PartialState().num_processes)


__all__ = [
    "ACCEPTED_KINDS",
    "GRPORecipe",
    "RewardFunction",
    "RewardSpec",
    "build_trainer",
    "check",
    "completion_text",
    "reward_function",
    "reward_functions",
    "to_trl",
]
