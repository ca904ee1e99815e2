"""The recipe format: every error at once with its YAML path, overrides, schema, pre-flight refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from largeforge.errors import InvalidInput, NotFound, Unavailable
from largeforge.training import load_recipe, recipe_json_schema, run_training, validate_recipe
from largeforge.training.methods import METHODS


def test_all_errors_are_reported_with_their_yaml_paths() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_recipe(
            {
                "method": "dpo",
                "model": "m",
                "data": {},
                "training": {"learning_rate": -1, "max_stepz": 3},
                "lora": {"r": 0},
                "beta": "high",
            }
        )
    message = info.value.message
    assert "4 problem(s)" not in message and "5 problem(s)" in message
    for path in ("data.train", "training.learning_rate", "training.max_stepz", "lora.r", "beta"):
        assert f"  {path}: " in message
    assert "is not a recipe field" in message


def test_unknown_method_lists_the_methods() -> None:
    with pytest.raises(InvalidInput, match="sft, dpo"):
        validate_recipe({"method": "rlhf", "model": "m", "data": {"train": "x"}})


def test_cross_field_rules() -> None:
    with pytest.raises(InvalidInput, match="add a lora section"):
        validate_recipe({"method": "sft", "model": "m", "data": {"train": "x"}, "quantization": {"bits": 4}})
    with pytest.raises(InvalidInput, match="exactly one of script or command"):
        validate_recipe({"method": "custom", "model": "m", "data": {"train": "x"}})


def test_file_overrides_and_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"method": "sft", "model": "m", "data": {"train": "x"}}))
    recipe = load_recipe(path, ["training.max_steps=7", "lora.r=4", "packing=true"])
    assert recipe.training.max_steps == 7 and recipe.lora.r == 4 and recipe.packing is True
    with pytest.raises(InvalidInput, match="PATH=VALUE"):
        load_recipe(path, ["training.max_steps"])
    path.write_text("method: [sft\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_recipe(path)
    with pytest.raises(NotFound):
        load_recipe(tmp_path / "missing.yaml")


def test_schema_covers_every_method() -> None:
    schema = recipe_json_schema()
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == set(METHODS)
    sft = schema["$defs"]["SFTRecipe"]["properties"]
    assert sft["assistant_only_loss"]["description"]


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"training": {"precision": "fp16"}}, InvalidInput, "fp16 needs a CUDA GPU"),
        ({"training": {"device": "cuda"}}, Unavailable, "no CUDA GPU"),
        ({"lora": {"r": 4}, "quantization": {"bits": 4}}, Unavailable, "QLoRA"),
        (
            {"assistant_only_loss": True, "data": {"train": "PRETRAIN"}},
            InvalidInput,
            "assistant_only_loss needs",
        ),
        ({"data": {"train": "PREFERENCE"}}, InvalidInput, "trains on conversation or text data"),
    ],
)
def test_preflight_refuses_before_any_step(
    fields: dict[str, Any], error: type[Exception], match: str, make_recipe: Any, tmp_path: Path
) -> None:
    from tests.training.conftest import DATA

    train = fields.get("data", {}).get("train")
    if train:
        fields["data"] = {"train": str(DATA["pretrain" if train == "PRETRAIN" else "dpo"])}
    with pytest.raises(error, match=match):
        run_training(make_recipe("sft", **fields), output_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "checkpoint-2").exists()


def test_a_new_run_refuses_a_used_directory(make_recipe: Any, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep")
    with pytest.raises(InvalidInput, match="--resume"):
        run_training(make_recipe("sft"), output_dir=tmp_path / "run")
    assert (tmp_path / "run" / "notes.txt").read_text() == "keep"
