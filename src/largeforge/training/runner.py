"""Run a recipe: the job wrapper every method goes through (CLI, API worker and notebook alike).

    run_training(recipe)                 a new run
    resume_training(run_dir)             continue a stopped run exactly where it stopped
    run_training(recipe, continue_from)  a new run initialised from another run's final model

A resumed run restores model, optimizer, scheduler, RNG and data position from the newest complete
checkpoint (transformers' own resume), and drops the metrics logged after that checkpoint so
``metrics.jsonl`` reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound
from largeforge.progress import NullProgress, ProgressReporter
from largeforge.training.callbacks import CheckpointMarkerCallback, MetricsLogCallback, ProgressCallback
from largeforge.training.data_loading import load_training_data
from largeforge.training.launch import is_main_process
from largeforge.training.methods import METHODS
from largeforge.training.preflight import PreflightReport, check_options, check_template, estimate_memory
from largeforge.training.resume import find_resume_checkpoint
from largeforge.training.run_dir import RunDirectory, build_manifest
from largeforge.training.spine import MethodContext, TrainResult, load_tokenizer_for_training, plan_device


def default_run_dir(recipe: Any) -> Path:
    from largeforge.settings import get_settings

    name = recipe.run_name or f"{recipe.method}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    return get_settings().runs_dir / name


def run_training(
    recipe: Any,
    *,
    output_dir: str | Path | None = None,
    continue_from: str | Path | None = None,
    progress: ProgressReporter | None = None,
    on_preflight: Any = None,
) -> TrainResult:
    """Train ``recipe`` in a new run directory.

    Args:
        output_dir: the run directory (default ``<home>/runs/<method>-<time>``); must be new or empty.
        continue_from: a finished run whose final model replaces ``recipe.model`` as the starting point.
        on_preflight: called with the :class:`PreflightReport` before the first step (the CLI prints it).

    Raises:
        InvalidInput / NotFound / Unavailable: the pre-flight refused the recipe; nothing was trained.
    """
    run = RunDirectory(Path(output_dir or default_run_dir(recipe)).expanduser().resolve())
    main_process = is_main_process()
    if main_process and run.root.exists() and any(run.root.iterdir()):
        raise InvalidInput(
            f"{run.root} already holds files; resume it with `largeforge train --resume {run.root}` or choose a new --output-dir"
        )
    if continue_from is not None:
        recipe = recipe.model_copy(update={"model": str(_final_model_of(Path(continue_from)))})
    if main_process:  # the other ranks only read what rank 0 wrote; creating it twice would race the check
        run.create()
        run.write_recipe(recipe.model_dump(mode="json"))
    return _execute(recipe, run, None, progress, on_preflight)


def resume_training(
    run_dir: str | Path, *, progress: ProgressReporter | None = None, on_preflight: Any = None
) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest complete checkpoint, with its own recipe."""
    from largeforge.training.recipe import validate_recipe

    checkpoint = find_resume_checkpoint(run_dir)
    run = RunDirectory(Path(run_dir).expanduser().resolve())
    recipe = validate_recipe(run.read_recipe())
    _truncate_metrics(run, step=int(checkpoint.name.split("-")[-1]) if checkpoint else 0)
    return _execute(recipe, run, checkpoint, progress, on_preflight)


def _execute(
    recipe: Any,
    run: RunDirectory,
    checkpoint: Path | None,
    progress: ProgressReporter | None,
    on_preflight: Any,
) -> TrainResult:
    from largeforge.model_source import resolve_model_source

    method = METHODS[recipe.method]
    plan = plan_device(recipe)
    source = resolve_model_source(recipe.model)
    data = load_training_data(recipe.data, method.accepted_kinds, seed=recipe.seed)
    check_options(recipe, data.kind, method.check(recipe, data.kind))
    tokenizer = load_tokenizer_for_training(source)
    assistant_only = bool(
        getattr(recipe, "assistant_only_loss", None) is not False and data.kind == "conversation"
    )
    check_template(tokenizer, data.kind, data.train[0], assistant_only and recipe.method == "sft")
    if is_main_process():
        run.write_manifest(
            build_manifest(seed=recipe.seed, device=plan.device, datasets=data.sources, method=recipe.method)
        )
    trackers = _trackers(recipe, run)
    reporter = progress or NullProgress()
    started = time.perf_counter()
    with reporter.task(f"Training ({recipe.method})", total=recipe.training.max_steps) as task:
        ctx = MethodContext(
            recipe=recipe,
            model_source=source,
            tokenizer=tokenizer,
            plan=plan,
            data_kind=data.kind,
            train_dataset=data.train,
            eval_dataset=data.eval,
            output_dir=run.checkpoints_dir,
            callbacks=[
                MetricsLogCallback(run.metrics_file),
                ProgressCallback(task),
                CheckpointMarkerCallback(),
                *trackers,
            ],
        )
        trainer = method.build_trainer(ctx)
        _quiet_trainer(trainer)
        model = getattr(trainer, "model", None)
        report = (
            estimate_memory(model, recipe, plan)
            if model is not None
            else PreflightReport(plan.device, plan.dtype_name, 0, 0, 0.0, 0.0)
        )
        if on_preflight is not None:
            on_preflight(report)
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.save_model(str(run.final_dir))  # the trainer saves on the main process only
    if is_main_process():
        tokenizer.save_pretrained(str(run.final_dir))
        # The pickled TrainingArguments are for the trainer's own resume, not for the final artifact.
        (run.final_dir / "training_args.bin").unlink(missing_ok=True)
    return _finish(recipe, run, trainer, output, report, checkpoint, round(time.perf_counter() - started, 2))


def _trackers(recipe: Any, run: RunDirectory) -> list[Any]:
    """Optional reporting callbacks, started now so an unreachable server fails before any step."""
    if not recipe.tracking.mlflow_uri or not is_main_process():
        return []
    from largeforge.training.tracking import MlflowCallback, MlflowClient

    callback = MlflowCallback(
        MlflowClient(recipe.tracking.mlflow_uri),
        recipe.tracking.mlflow_experiment,
        run.root.name,
        recipe.model_dump(mode="json"),
    )
    callback.start()
    return [callback]


def _quiet_trainer(trainer: Any) -> None:
    """Our callbacks report progress; transformers' printer would repeat every log as a dict on stdout."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def _finish(
    recipe: Any,
    run: RunDirectory,
    trainer: Any,
    output: Any,
    report: PreflightReport,
    checkpoint: Path | None,
    runtime: float,
) -> TrainResult:
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    result = TrainResult(
        run_dir=str(run.root),
        method=recipe.method,
        steps=trainer.state.global_step,
        final_loss=losses[-1] if losses else None,
        train_loss=getattr(output, "training_loss", None),
        runtime_seconds=runtime,
        final_dir=str(run.final_dir),
        resumed_from=str(checkpoint) if checkpoint else None,
        metrics={"preflight": report.to_dict(), **{k: v for k, v in (output.metrics or {}).items()}},
    )
    if is_main_process():
        run.write_result(result.to_dict())
    return result


def _truncate_metrics(run: RunDirectory, step: int) -> None:
    """Drop metric records logged after ``step``: the resumed run logs those steps again."""
    if not run.metrics_file.exists():
        return
    kept = [
        line
        for line in run.metrics_file.read_text(encoding="utf-8").splitlines()
        if line.strip() and _record_step(line) <= step
    ]
    from largeforge.atomic import write_text_atomic

    write_text_atomic(run.metrics_file, "".join(line + "\n" for line in kept))


def _record_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, TypeError, ValueError):
        return 1 << 62  # a torn last line from a killed process: drop it


def _final_model_of(run_dir: Path) -> Path:
    run = RunDirectory(run_dir.expanduser().resolve())
    if not (run.final_dir / "config.json").exists():
        if (run.final_dir / "adapter_config.json").exists():
            raise InvalidInput(
                f"{run.root} produced a LoRA adapter; merge it into a full model first, then continue from that"
            )
        raise NotFound(f"{run.root} has no finished model in final/; resume it instead with --resume")
    return run.final_dir


__all__ = ["default_run_dir", "resume_training", "run_training"]
