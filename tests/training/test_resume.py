"""A run killed with SIGKILL and resumed ends exactly where the uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from largeforge.errors import InvalidInput, NotFound
from largeforge.training.resume import find_resume_checkpoint
from largeforge.training.run_dir import RunDirectory
from tests.training.conftest import DATA

STEPS = 24


def write_recipe(tmp_path: Path, model: Path) -> Path:
    recipe = {
        "method": "sft",
        "model": str(model),
        "data": {"train": str(DATA["sft"])},
        "training": {"max_steps": STEPS, "batch_size": 8, "learning_rate": 1e-2, "max_length": 96},
        "lora": {"r": 4},
        "checkpoints": {"save_steps": 4, "keep_last": 2},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def train_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "largeforge", "train", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def final_loss(process: subprocess.Popen[str]) -> float:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return float(json.loads(out)["final_loss"])


@pytest.mark.slow
def test_sigkill_and_resume_matches_the_uninterrupted_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_model_dir)
    expected = final_loss(train_cli(str(recipe), "--output-dir", str(tmp_path / "straight")))

    killed_dir = tmp_path / "killed"
    victim = train_cli(str(recipe), "--output-dir", str(killed_dir))
    marker = killed_dir / "checkpoints" / "checkpoint-8" / "COMPLETE"
    deadline = time.monotonic() + 240
    while not marker.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_dir / "result.json").exists(), "the run finished before it could be killed"

    resumed = final_loss(train_cli("--resume", str(killed_dir)))
    assert resumed == pytest.approx(expected, abs=1e-5)
    steps = [json.loads(line)["step"] for line in (killed_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [s for s in steps if s <= STEPS]
    assert sorted(set(logged)) == list(range(1, STEPS + 1)) and len(logged) == len(set(logged)) + 1
    # (+1: the trainer's closing summary record repeats the last step)
    result = json.loads((killed_dir / "result.json").read_text())
    assert result["resumed_from"].endswith(
        ("checkpoint-8", "checkpoint-12", "checkpoint-16", "checkpoint-20")
    )


def test_incomplete_checkpoints_are_set_aside(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run").create()
    run.write_recipe({"method": "sft"})
    for step, complete in ((2, True), (4, True), (6, False)):
        checkpoint = run.checkpoints_dir / f"checkpoint-{step}"
        checkpoint.mkdir()
        if complete:
            (checkpoint / "COMPLETE").write_text("{}")
    assert find_resume_checkpoint(run.root) == run.checkpoints_dir / "checkpoint-4"
    assert (run.checkpoints_dir / "incomplete-checkpoint-6").is_dir()
    assert not (run.checkpoints_dir / "checkpoint-6").exists()


def test_resume_refuses_finished_and_unknown_runs(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not a run directory"):
        find_resume_checkpoint(tmp_path)
    run = RunDirectory(tmp_path / "done").create()
    run.write_recipe({"method": "sft"})
    run.write_result({"steps": 3})
    with pytest.raises(InvalidInput, match="already finished"):
        find_resume_checkpoint(run.root)
