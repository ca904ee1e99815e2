"""The run directory: everything one training run leaves behind, laid out the same for every method.

<run>/recipe.yaml          the resolved recipe (what actually ran)
<run>/manifest.json        reproducibility: package versions, dataset versions, seed, device, git commit
<run>/metrics.jsonl        one JSON object per logged step (step, loss, learning_rate, …)
<run>/events.jsonl         progress events for the control plane
<run>/checkpoints/checkpoint-N/   with a COMPLETE marker once fully written
<run>/final/               the final model or adapter, tokenizer and chat template
<run>/result.json          final metrics, written last: its presence means the run finished
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from largeforge.atomic import write_text_atomic

COMPLETE_MARKER = "COMPLETE"


@dataclass(frozen=True)
class RunDirectory:
    root: Path

    @property
    def recipe_file(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def manifest_file(self) -> Path:
        return self.root / "manifest.json"

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def events_file(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def final_dir(self) -> Path:
        return self.root / "final"

    @property
    def result_file(self) -> Path:
        return self.root / "result.json"

    def create(self) -> RunDirectory:
        self.root.mkdir(parents=True, exist_ok=True)
        self.checkpoints_dir.mkdir(exist_ok=True)
        return self

    def write_recipe(self, recipe: dict[str, Any]) -> None:
        write_text_atomic(self.recipe_file, yaml.safe_dump(recipe, sort_keys=False))

    def read_recipe(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.recipe_file.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_text_atomic(self.manifest_file, json.dumps(manifest, indent=2, default=str) + "\n")

    def write_result(self, result: dict[str, Any]) -> None:
        write_text_atomic(self.result_file, json.dumps(result, indent=2, default=str) + "\n")


def build_manifest(*, seed: int, device: str, datasets: dict[str, Any], method: str) -> dict[str, Any]:
    """What it takes to reproduce the run."""
    import platform
    import sys

    from largeforge import __version__
    from largeforge.environment import package_versions

    return {
        "largeforge": __version__,
        "method": method,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {k: v for k, v in package_versions().items() if v},
        "datasets": datasets,
        "seed": seed,
        "device": device,
        "git_commit": git_commit(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def git_commit() -> str | None:
    """The commit of the working directory's repository, when there is one and git is installed."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


__all__ = ["COMPLETE_MARKER", "RunDirectory", "build_manifest", "git_commit"]
