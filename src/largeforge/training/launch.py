"""Multi-process training: re-run ``largeforge train`` under ``torchrun`` (torch.distributed.run).

The same recipe runs single-process or as N processes; the recipe's ``distributed.strategy`` (DDP,
FSDP or DeepSpeed) is translated into trainer arguments by the spine, so this module only starts the
processes (gloo on CPU, NCCL on GPUs). Every process gets the same ``--output-dir`` (decided by the
parent), and only the main process writes the run's files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def launch_command(
    recipe: Any,
    recipe_path: Path,
    output_dir: Path,
    nproc: int,
    overrides: list[str],
    *,
    json_output: bool = False,
) -> list[str]:
    """The ``torchrun`` command line for ``nproc`` processes on this machine."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    command += ["-m", "largeforge", "train", str(recipe_path), "--output-dir", str(output_dir)]
    for override in overrides:
        command += ["--set", override]
    return [*command, "--json"] if json_output else command


def launch(
    recipe: Any,
    recipe_path: Path,
    output_dir: Path,
    nproc: int,
    overrides: list[str],
    *,
    json_output: bool = False,
) -> int:
    """Run the launcher in the foreground; returns its exit code."""
    return subprocess.call(
        launch_command(recipe, recipe_path, output_dir, nproc, overrides, json_output=json_output)
    )


def is_main_process() -> bool:
    """True in a single-process run and on rank 0 of a multi-process one.

    Read from the launcher's environment, because it must be known before the trainer has set up
    torch.distributed (the run directory is created first).
    """
    from largeforge.settings import process_rank

    return process_rank() == 0


__all__ = ["is_main_process", "launch", "launch_command"]
