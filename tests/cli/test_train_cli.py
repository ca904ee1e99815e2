"""``largeforge train`` through Typer: JSON result, schema, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


@pytest.mark.slow
def test_two_processes_on_cpu_share_one_run_directory(tmp_path: Path, tiny_model_dir: Path) -> None:
    """``--nproc 2`` runs DDP over gloo on CPU; rank 0 alone writes the run and reports."""
    import subprocess
    import sys

    recipe = write_recipe(
        tmp_path,
        tiny_model_dir,
        training={"max_steps": 2, "batch_size": 4, "max_length": 96, "device": "cpu"},
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "largeforge",
            "train",
            str(recipe),
            "--nproc",
            "2",
            "-o",
            str(tmp_path / "run"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["steps"] == 2  # exactly one JSON document: rank 1 stays quiet
    epochs = [
        json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    # 64 rows, batch 4 per process, 2 processes: each step consumes 8 rows = 1/8 of an epoch.
    assert epochs[0] == pytest.approx(0.125)
