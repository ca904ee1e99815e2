"""GRPO trains the tiny model on rewards built from checks, including a user's own function."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from largeforge.errors import InvalidInput
from largeforge.training import run_training
from largeforge.training.methods.grpo import completion_text, reward_functions
from tests.training.test_methods import assert_lora_trained


def write_length_reward(folder: Path) -> tuple[Path, Path]:
    """A user reward that logs every call and prefers longer completions (so scores differ in a group)."""
    calls = folder / "calls.txt"
    path = folder / "my_rewards.py"
    path.write_text(
        "def longer_is_better(completion, row):\n"
        f"    with open({str(calls)!r}, 'a') as log:\n"
        "        log.write(repr((completion, row['answer'])) + '\\n')\n"
        "    return min(len(completion), 40) / 40\n"
    )
    return path, calls


def test_grpo_lora_learns_from_check_rewards(make_recipe: Any, tmp_path: Path) -> None:
    reward_file, calls = write_length_reward(tmp_path)
    recipe = make_recipe(
        "grpo",
        rewards=[
            {"check": {"type": "json"}, "weight": 0.5},
            {"check": {"type": "exact"}},
            {"check": {"type": "python", "function": f"{reward_file}:longer_is_better"}},
        ],
        num_generations=2,
        max_completion_length=8,
        lora={"r": 4},
        training={"batch_size": 2},
    )
    result = run_training(recipe, output_dir=tmp_path / "run")

    assert result.steps == 3
    assert result.final_loss is not None and math.isfinite(result.final_loss)
    assert_lora_trained(Path(result.final_dir))
    # 3 steps x batch 2 completions, each scored once by the user's function, with its row's answer.
    logged = calls.read_text().splitlines()
    assert len(logged) == 6
    assert all('"name":' in line for line in logged)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in records if "loss" in r)
    for name in ("reward_json", "reward_exact", "reward_longer_is_better"):
        assert f"rewards/{name}/mean" in first, sorted(first)


def test_batch_not_divisible_by_num_generations_is_refused_before_training(
    make_recipe: Any, tmp_path: Path
) -> None:
    recipe = make_recipe(
        "grpo", rewards=[{"check": {"type": "json"}}], num_generations=4, training={"batch_size": 6}
    )
    with pytest.raises(InvalidInput, match=r"training\.batch_size \(6\).*num_generations \(4\)"):
        run_training(recipe, output_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_missing_user_reward_function_is_refused_before_training(make_recipe: Any, tmp_path: Path) -> None:
    reward_file, _ = write_length_reward(tmp_path)
    recipe = make_recipe(
        "grpo",
        rewards=[{"check": {"type": "python", "function": f"{reward_file}:no_such_reward"}}],
        num_generations=2,
    )
    with pytest.raises(
        InvalidInput, match=r"rewards\.0\.check\.function: .*has no function 'no_such_reward'"
    ):
        run_training(recipe, output_dir=tmp_path / "run")


def test_a_bad_regex_in_a_reward_is_a_recipe_error_with_its_path(make_recipe: Any) -> None:
    with pytest.raises(InvalidInput, match=r"rewards\.0\.check\.regex\.pattern: '\[' is not a valid"):
        make_recipe("grpo", rewards=[{"check": {"type": "regex", "pattern": "["}}])


def test_reward_functions_score_text_and_conversational_completions() -> None:
    from largeforge.training.methods.grpo import RewardSpec

    rewards = [RewardSpec.model_validate({"check": {"type": "exact"}})] * 2
    first, second = reward_functions(rewards)
    assert (first.__name__, second.__name__) == ("reward_exact", "reward_exact_2")
    completions = [[{"role": "assistant", "content": "42"}], "41"]
    scores = first(
        prompts=["q", "q"], completions=completions, answer=["42", "42"], trainer_state=None, log_metric=print
    )
    assert scores == [1.0, 0.0]
    assert completion_text([{"role": "user", "content": "hi"}]) == ""


def test_a_reward_reading_a_missing_column_is_refused_before_the_model_loads(
    make_recipe: Any, tmp_path: Path
) -> None:
    recipe = make_recipe(
        "grpo", rewards=[{"check": {"type": "exact", "column": "expected"}}], num_generations=2
    )
    with pytest.raises(
        InvalidInput, match=r"rewards\.0\.check reads column 'expected', but data\.train has only"
    ):
        run_training(recipe, output_dir=tmp_path / "run")
