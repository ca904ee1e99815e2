"""Multi-process training: re-run ``largeforge train`` under ``accelerate launch``.

The same recipe runs single-process or under DDP / FSDP / DeepSpeed; only this module knows how to
start several processes. Every process gets the same ``--output-dir`` (decided by the parent), and
only the main process writes the run's files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def launch_command(
    recipe: Any, recipe_path: Path, output_dir: Path, nproc: int, overrides: list[str]
) -> list[str]:
    """The ``accelerate launch`` command line for ``nproc`` processes on this machine."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(nproc)]
    strategy = recipe.distributed.strategy
    if recipe.training.device == "cpu":
        command += ["--cpu"]
    else:
        command += ["--multi_gpu"]
    if strategy == "fsdp":
        command += ["--use_fsdp"]
    elif strategy == "deepspeed":
        command += ["--use_deepspeed", "--deepspeed_config_file", str(recipe.distributed.deepspeed_config)]
    command += ["-m", "largeforge", "train", str(recipe_path), "--output-dir", str(output_dir)]
    for override in overrides:
        command += ["--set", override]
    return command


def launch(recipe: Any, recipe_path: Path, output_dir: Path, nproc: int, overrides: list[str]) -> int:
    """Run the launcher in the foreground; returns its exit code."""
    return subprocess.call(launch_command(recipe, recipe_path, output_dir, nproc, overrides))


def is_main_process() -> bool:
    """True in a single-process run and on rank 0 of a multi-process one."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


__all__ = ["is_main_process", "launch", "launch_command"]
