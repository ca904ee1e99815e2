"""``largeforge train`` through Typer: JSON result, schema, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from largeforge.cli.main import app
from tests.training.conftest import DATA

runner = CliRunner()


def write_recipe(tmp_path: Path, model: Path, **extra: object) -> Path:
    document = {
        "method": "sft",
        "model": str(model),
        "data": {"train": str(DATA["sft"])},
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 96},
        "lora": {"r": 4},
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_train_json_result_and_progress_events(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_model_dir)
    result = runner.invoke(
        app, ["train", str(recipe), "-o", str(tmp_path / "run"), "--set", "training.max_steps=3", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["steps"] == 3 and doc["final_dir"] == str(tmp_path / "run" / "final")
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    progress = [e for e in events if e["event"] == "progress" and e["task"] == "Training (sft)"]
    assert [e["completed"] for e in progress] == [1, 2, 3]
    assert "loss" in progress[-1] and "learning_rate" in progress[-1]


def test_train_schema_prints_json_schema() -> None:
    result = runner.invoke(app, ["train", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "LargeForge training recipe"


def test_invalid_recipe_is_exit_1_with_paths(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_model_dir, beta=0.1)
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 1
    assert "beta: is not a recipe field" in result.output and "Traceback" not in result.output


def test_train_needs_a_recipe_or_resume() -> None:
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1 and "--resume" in result.output


def test_continue_from_an_adapter_run_is_explained(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_model_dir)
    first = runner.invoke(app, ["train", str(recipe), "-o", str(tmp_path / "a"), "--json"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(
        app, ["train", str(recipe), "-o", str(tmp_path / "b"), "--continue-from", str(tmp_path / "a")]
    )
    assert second.exit_code == 1 and "merge it" in second.output


def test_continue_from_a_full_run_starts_from_its_final_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_model_dir, lora=None)
    assert runner.invoke(app, ["train", str(recipe), "-o", str(tmp_path / "a")]).exit_code == 0
    second = runner.invoke(
        app,
        ["train", str(recipe), "-o", str(tmp_path / "b"), "--continue-from", str(tmp_path / "a"), "--json"],
    )
    assert second.exit_code == 0, second.output
    resolved = yaml.safe_load((tmp_path / "b" / "recipe.yaml").read_text())
    assert resolved["model"] == str(tmp_path / "a" / "final")
