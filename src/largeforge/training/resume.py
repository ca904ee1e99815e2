"""Which checkpoint a resumed run continues from.

transformers writes ``checkpoint-N`` in place, so a crash mid-save leaves a directory that looks like a
checkpoint but is not one. Our callback drops a ``COMPLETE`` marker after the trainer has written
everything; only marked checkpoints count, and unmarked ones are set aside (never deleted: a person may
want to look at them) so the trainer's own rotation never mistakes them for real ones.
"""

from __future__ import annotations

import re
from pathlib import Path

from largeforge.errors import InvalidInput, NotFound
from largeforge.training.run_dir import COMPLETE_MARKER, RunDirectory

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(run: RunDirectory) -> list[Path]:
    """Marked checkpoints, oldest first."""
    if not run.checkpoints_dir.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in run.checkpoints_dir.iterdir()
        if (match := _CHECKPOINT.match(path.name)) and (path / COMPLETE_MARKER).exists()
    ]
    return [path for _, path in sorted(found)]


def set_aside_incomplete(run: RunDirectory) -> list[Path]:
    """Rename unmarked ``checkpoint-N`` directories to ``incomplete-checkpoint-N``; returns the new paths."""
    moved: list[Path] = []
    if not run.checkpoints_dir.is_dir():
        return moved
    for path in run.checkpoints_dir.iterdir():
        if _CHECKPOINT.match(path.name) and not (path / COMPLETE_MARKER).exists():
            target = path.with_name(f"incomplete-{path.name}")
            path.rename(target)
            moved.append(target)
    return moved


def find_resume_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir`` (None: start from step 0 with the same recipe).

    Raises:
        NotFound: ``run_dir`` is not a run directory. InvalidInput: the run already finished.
    """
    run = RunDirectory(Path(run_dir).expanduser().resolve())
    if not run.recipe_file.exists():
        raise NotFound(
            f"{run.root} is not a run directory (no recipe.yaml); give the directory a run created"
        )
    if run.result_file.exists():
        raise InvalidInput(
            f"the run in {run.root} already finished; to train further from it, start a new run with "
            "`largeforge train RECIPE --continue-from RUN_DIR`"
        )
    set_aside_incomplete(run)
    checkpoints = complete_checkpoints(run)
    return checkpoints[-1] if checkpoints else None


__all__ = ["complete_checkpoints", "find_resume_checkpoint", "set_aside_incomplete"]
