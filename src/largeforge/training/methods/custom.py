"""Bring your own training loop, run under the same job wrapper as every other method.

Either a Python file with a ``train(ctx)`` function (``script: path/to/train.py`` or
``path/to/train.py:function``), or a command line (``command: [...]``) whose JSON lines on stdout that
carry a ``step`` become metrics. Both get the same data (validated, normalised), progress,
``metrics.jsonl``, atomic checkpoints and final-artifact handling as the built-in methods.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from largeforge.atomic import write_text_atomic
from largeforge.errors import InvalidInput, JobFailed, NotFound
from largeforge.training.run_dir import COMPLETE_MARKER
from largeforge.training.specs import RecipeBase
from largeforge.training.spine import MethodContext

ACCEPTED_KINDS = ("text", "conversation", "preference", "kto", "prompt")


class CustomRecipe(RecipeBase):
    method: Literal["custom"] = "custom"
    script: str | None = Field(
        None, description="Python file with train(ctx), as path.py or path.py:function."
    )
    command: list[str] | None = Field(
        None,
        description="Command line to run instead; {model} {data} {final_dir} {checkpoints} {max_steps} {resume} are filled in.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Free-form options handed to the script."
    )

    @model_validator(mode="after")
    def _one_entry_point(self) -> CustomRecipe:
        if (self.script is None) == (self.command is None):
            raise ValueError("give exactly one of script or command")
        return self


@dataclass
class _State:
    """The part of transformers' TrainerState our callbacks and runner read."""

    global_step: int = 0
    epoch: float = 0.0
    num_input_tokens_seen: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    is_world_process_zero: bool = True


@dataclass
class CustomContext:
    """What a user's ``train(ctx)`` receives."""

    model: str
    tokenizer: Any
    train_dataset: Any
    eval_dataset: Any | None
    data_kind: str
    checkpoints_dir: Path
    final_dir: Path
    max_steps: int
    seed: int
    options: dict[str, Any]
    resume_from: Path | None
    keep_last: int
    _callbacks: list[Any]
    _state: _State

    def log(self, step: int, **metrics: float) -> None:
        """Record metrics for ``step`` (loss, learning_rate, …): metrics.jsonl, progress bar, result."""
        self._state.global_step = step
        record = {"step": step, **metrics}
        self._state.log_history.append(record)
        for callback in self._callbacks:
            if hasattr(callback, "on_log"):
                callback.on_log(None, self._state, None, logs=dict(metrics))
            if hasattr(callback, "on_step_end"):
                callback.on_step_end(None, self._state, None)

    def save_checkpoint(self, step: int, save: Callable[[Path], None]) -> Path:
        """Call ``save(directory)`` to write a checkpoint; it counts only once complete (atomic rename)."""
        target = self.checkpoints_dir / f"checkpoint-{step}"
        staging = self.checkpoints_dir / f".staging-checkpoint-{step}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        save(staging)
        write_text_atomic(staging / COMPLETE_MARKER, json.dumps({"step": step}) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        self._apply_retention()
        return target

    def _apply_retention(self) -> None:
        marked = sorted(
            (int(p.name.split("-")[-1]), p)
            for p in self.checkpoints_dir.glob("checkpoint-*")
            if (p / COMPLETE_MARKER).exists()
        )
        for _, old in marked[: -self.keep_last]:
            shutil.rmtree(old)


class CustomTrainer:
    """Adapts a user's script or command to the trainer interface the runner drives."""

    model = None  # nothing loaded here: the script owns its model

    def __init__(self, recipe: CustomRecipe, ctx: MethodContext) -> None:
        self.recipe, self.ctx = recipe, ctx
        self.state = _State()

    def remove_callback(self, callback: Any) -> None:
        return None

    def train(self, resume_from_checkpoint: str | None = None) -> Any:
        user = CustomContext(
            model=self.ctx.model_source,
            tokenizer=self.ctx.tokenizer,
            train_dataset=self.ctx.train_dataset,
            eval_dataset=self.ctx.eval_dataset,
            data_kind=self.ctx.data_kind,
            checkpoints_dir=self.ctx.output_dir,
            final_dir=self.ctx.output_dir.parent / "final",
            max_steps=self.recipe.training.max_steps,
            seed=self.recipe.seed,
            options=self.recipe.options,
            resume_from=Path(resume_from_checkpoint) if resume_from_checkpoint else None,
            keep_last=self.recipe.checkpoints.keep_last,
            _callbacks=self.ctx.callbacks,
            _state=self.state,
        )
        if self.recipe.script is not None:
            load_train_function(self.recipe.script)(user)
        else:
            self._run_command(user)
        losses = [r["loss"] for r in self.state.log_history if "loss" in r]
        return _Output(training_loss=sum(losses) / len(losses) if losses else None)

    def _run_command(self, user: CustomContext) -> None:
        assert self.recipe.command is not None
        data_file = self.ctx.output_dir.parent / "data" / "train.jsonl"
        data_file.parent.mkdir(exist_ok=True)
        data_file.write_text("".join(json.dumps(r) + "\n" for r in self.ctx.train_dataset), encoding="utf-8")
        values = {
            "model": user.model,
            "data": str(data_file),
            "final_dir": str(user.final_dir),
            "checkpoints": str(user.checkpoints_dir),
            "max_steps": str(user.max_steps),
            "resume": str(user.resume_from or ""),
        }
        try:
            argv = [part.format(**values) for part in self.recipe.command]
        except KeyError as exc:
            raise InvalidInput(
                f"command uses unknown placeholder {exc}; known: {', '.join(values)}"
            ) from None
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        except OSError as exc:
            raise InvalidInput(f"cannot start {argv[0]!r}: {exc}") from exc
        with process:  # closes the pipe even when a metric line breaks the loop
            assert process.stdout is not None
            for line in process.stdout:
                record = _json_record(line)
                if record is not None and isinstance(record.get("step"), int):
                    step = record.pop("step")
                    user.log(step, **{k: v for k, v in record.items() if isinstance(v, int | float)})
        if process.returncode != 0:
            raise JobFailed(f"the training command exited with code {process.returncode}: {' '.join(argv)}")

    def save_model(self, directory: str) -> None:
        if not any(Path(directory).glob("*")):
            raise JobFailed(
                f"the custom script wrote nothing to {directory}; save the model to ctx.final_dir"
            )


@dataclass
class _Output:
    training_loss: float | None
    metrics: dict[str, Any] = field(default_factory=dict)


def _json_record(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def load_train_function(reference: str) -> Callable[[CustomContext], Any]:
    """``path.py`` or ``path.py:function`` → the function (default name ``train``).

    Raises:
        NotFound: no such file. InvalidInput: the file has no such callable.
    """
    path_text, _, name = reference.partition(":")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise NotFound(f"custom training script {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"largeforge_custom_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path} is not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, name or "train", None)
    if not callable(function):
        raise InvalidInput(
            f"{path} has no function {name or 'train'}(ctx); define it or name another with :function"
        )
    return function


def build_trainer(ctx: MethodContext) -> CustomTrainer:
    return CustomTrainer(ctx.recipe, ctx)


def check(recipe: CustomRecipe, data_kind: str) -> list[str]:
    return []
