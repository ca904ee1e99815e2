"""Trainer callbacks shared by every method: live progress, metrics.jsonl, checkpoint markers.

They hook into ``transformers.TrainerCallback`` so TRL's trainers report through them unchanged.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from largeforge.atomic import write_text_atomic
from largeforge.training.run_dir import COMPLETE_MARKER

# Keys TRL/transformers log that we rename to our metric names.
_RENAMES = {"lr": "learning_rate"}


class MetricsLogCallback(TrainerCallback):
    """Appends one JSON object per log event to ``metrics.jsonl`` (flushed, so a crash loses nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last_tokens: tuple[float, float] | None = None

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not logs or not state.is_world_process_zero:
            return
        record: dict[str, Any] = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        for key, value in logs.items():
            if isinstance(value, int | float) and math.isfinite(value):
                record[_RENAMES.get(key, key)] = value
        tokens = getattr(state, "num_input_tokens_seen", 0) or 0
        now = time.monotonic()
        if self._last_tokens is not None and tokens and now > self._last_tokens[0]:
            record["tokens_per_second"] = round(
                (tokens - self._last_tokens[1]) / (now - self._last_tokens[0]), 1
            )
        if tokens:
            self._last_tokens = (now, tokens)
            record["tokens_seen"] = tokens
        record["time"] = round(time.time(), 3)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
        state.largeforge_last_record = record  # type: ignore[attr-defined]  # read by the progress callback


class ProgressCallback(TrainerCallback):
    """Drives a :class:`largeforge.progress.TaskHandle` from the trainer's steps and logs."""

    def __init__(self, task: Any) -> None:
        self._task = task
        self._shown_step = 0
        self._fields: dict[str, Any] = {}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # On resume the trainer starts at the checkpoint's step: move the bar there at once.
        if state.global_step > self._shown_step:
            self._task.advance(state.global_step - self._shown_step, resumed_at=state.global_step)
            self._shown_step = state.global_step

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        record = getattr(state, "largeforge_last_record", {})
        for key in ("loss", "learning_rate", "tokens_per_second", "reward"):
            if key in record:
                self._fields[key] = record[key]

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step > self._shown_step:
            self._task.advance(state.global_step - self._shown_step, **self._fields)
            self._shown_step = state.global_step


class CheckpointMarkerCallback(TrainerCallback):
    """Marks a checkpoint complete once the trainer has finished writing every file of it."""

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        checkpoint = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir():
            write_text_atomic(checkpoint / COMPLETE_MARKER, json.dumps({"step": state.global_step}) + "\n")


__all__ = ["CheckpointMarkerCallback", "MetricsLogCallback", "ProgressCallback"]
